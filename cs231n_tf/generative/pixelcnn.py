"""PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", section 3.5) as an engine task.

``p(x) = prod_i p(x_i | x_<i)`` over pixels in raster order (and, within a pixel, channels in
order R, G, B). Causality comes from masked convolutions (:func:`causal_mask`): the first layer is
type **A** (a pixel does not see itself), every later one type **B** (a feature at a pixel may use
the features of the same pixel, which only carry its past). Each conditional is a softmax over
``levels`` discrete intensities (256 for 8-bit data; the task's ``levels`` flag sets fewer, e.g. 2
for binarised images), so the model's ``-log2 p(x) / (H W C)`` is the **exact** bits per
dimension (:func:`bits_per_dim_per_image`), not a bound.

Sampling is sequential, one pixel and channel at a time, in a compiled loop
(:func:`sampler`: a ``tf.function`` with ``tf.range`` over positions, i.e. a ``tf.while_loop``).
:func:`independent_pixel_bits_per_dim` is the baseline without any dependency: one categorical
per pixel, fitted on the training images.
"""

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.engine.context import precision
from cs231n_tf.engine.loop import Engine
from cs231n_tf.engine.state import restore_checkpoint
from cs231n_tf.engine.task import Task
from cs231n_tf.errors import ConfigError, ShapeError
from cs231n_tf.generative.common import MODEL, LikelihoodRunConfig, SampleGridHook, bits_per_dim
from cs231n_tf.generative.data import load_images, quantize
from cs231n_tf.generative.neighbours import write_neighbour_grid
from cs231n_tf.generative.task import write_grid
from cs231n_tf.train.config import _flag

NAME = "pixelcnn"


def _groups(channels, colors):
    """The colour each of ``channels`` feature maps belongs to: contiguous blocks of ``channels / colors``."""
    return np.arange(channels) * colors // channels


def causal_mask(kernel_size, in_channels, out_channels, mask_type, colors=1):
    """The ``[k, k, in, out]`` 0/1 mask of a masked convolution (``k`` odd).

    Rows above the centre and the centre row left of the centre are kept; the rest of the centre
    row and everything below are cut. At the centre tap, input feature maps of colour ``ci`` feed
    output maps of colour ``co`` iff ``ci < co`` (type ``"A"``) or ``ci <= co`` (type ``"B"``);
    with one colour, A cuts the centre and B keeps it.
    """
    k = int(kernel_size)
    if k % 2 == 0 or mask_type not in ("A", "B"):
        raise ConfigError(f"masked convolutions need an odd kernel and type 'A' or 'B', got {k}, {mask_type!r}")
    if in_channels % colors or out_channels % colors:
        raise ConfigError(f"feature maps ({in_channels}, {out_channels}) must split evenly into {colors} colours")
    c = k // 2
    mask = np.zeros((k, k, in_channels, out_channels), np.float32)
    mask[:c] = 1.0
    mask[c, :c] = 1.0
    gi, go = _groups(in_channels, colors)[:, None], _groups(out_channels, colors)[None, :]
    mask[c, c] = (gi < go) if mask_type == "A" else (gi <= go)
    return mask


class MaskedConv2D(tf.keras.layers.Conv2D):
    """A stride-1 "same" :class:`~tf.keras.layers.Conv2D` whose kernel is multiplied by :func:`causal_mask`."""

    def __init__(self, filters, kernel_size, mask_type, colors=1, **kwargs):
        kwargs.update(padding="same", strides=1)
        super().__init__(filters, kernel_size, **kwargs)
        self.mask_type, self.colors = mask_type, int(colors)

    def build(self, input_shape):
        super().build(input_shape)
        self.mask = tf.constant(causal_mask(self.kernel_size[0], int(input_shape[-1]), self.filters,
                                            self.mask_type, self.colors))

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * tf.cast(self.mask, kernel.dtype))

    def get_config(self):
        config = super().get_config()
        for key in ("padding", "strides"):
            config.pop(key)
        return {**config, "mask_type": self.mask_type, "colors": self.colors}


def pixelcnn(image_shape, levels=256, filters=64, layers=5, first_kernel=7, name="pixelcnn"):
    """``[b, H, W, C]`` levels (as floats) -> ``[b, H, W, C, levels]`` logits.

    A 7x7 type-A masked conv, ``layers`` residual 3x3 type-B masked convs (ReLU), two 1x1 type-B
    convs; inputs are rescaled to [-1, 1] first.
    """
    h, w, colors = (int(d) for d in image_shape)
    levels = int(levels)
    x = inputs = tf.keras.Input((h, w, colors), name="levels")
    x = tf.keras.layers.Rescaling(2.0 / (levels - 1), offset=-1.0, name="scale")(x)
    x = MaskedConv2D(filters, first_kernel, "A", colors, activation="relu", name="masked_a")(x)
    for i in range(int(layers)):
        y = MaskedConv2D(filters, 3, "B", colors, activation="relu", name=f"masked_b{i + 1}")(x)
        x = tf.keras.layers.Add(name=f"residual{i + 1}")([x, y])
    x = MaskedConv2D(filters, 1, "B", colors, activation="relu", name="head")(x)
    x = MaskedConv2D(colors * levels, 1, "B", colors, name="logits", dtype="float32")(x)
    out = tf.keras.layers.Reshape((h, w, colors, levels), name="per_channel")(x)
    return tf.keras.Model(inputs, out, name=name)


def nll_nats(logits, images):
    """``-log p(images)`` per image in nats: the summed softmax cross-entropy of every pixel and channel."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(images, tf.int32),
                                                        logits=tf.cast(logits, tf.float32))
    return tf.reduce_sum(tf.reshape(ce, [tf.shape(ce)[0], -1]), axis=-1)


def bits_per_dim_per_image(model, images, batch_size=128):
    """Exact ``-log2 p(x) / (H W C)`` of each image (``[n, H, W, C]`` integer levels) under ``model``."""
    images = np.asarray(images)
    nats = np.concatenate([
        nll_nats(model(images[i:i + batch_size].astype(np.float32), training=False), images[i:i + batch_size]).numpy()
        for i in range(0, len(images), batch_size)])
    return nats / (np.prod(images.shape[1:]) * math.log(2.0))


def sampler(model):
    """A compiled ``sample(count, seed [2]) -> [count, H, W, C]`` int32 levels for ``model``.

    One forward pass per pixel and channel, in raster/channel order, inside ``tf.range`` loops (a
    ``tf.while_loop`` in the graph); the draw at position ``i`` uses the stateless seed
    ``fold_in(seed, i)``, so the same seed gives the same images.
    """
    h, w, colors = (int(d) for d in model.input_shape[1:])

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int64)])
    def sample(count, seed):
        x = tf.zeros([count, h, w, colors], tf.int32)
        for i in tf.range(h * w * colors):
            logits = tf.cast(model(tf.cast(x, tf.float32), training=False), tf.float32)
            pixel, c = i // colors, i % colors
            row, col = pixel // w, pixel % w
            drawn = tf.random.stateless_categorical(logits[:, row, col, c], 1, tf.random.experimental.stateless_fold_in(
                seed, tf.cast(i, tf.int64)), dtype=tf.int32)[:, 0]
            where = tf.one_hot(pixel * colors + c, h * w * colors, dtype=tf.int32)
            x = x + tf.reshape(where, [1, h, w, colors]) * drawn[:, None, None, None]
        return x

    return sample


def independent_pixel_bits_per_dim(train_levels, test_levels, levels, alpha=1.0):
    """Bits/dim of ``test_levels`` under one categorical per pixel and channel, fitted on ``train_levels``
    with add-``alpha`` (Laplace) smoothing: the model without any dependency between pixels."""
    train_levels, test_levels = np.asarray(train_levels), np.asarray(test_levels)
    if train_levels.shape[1:] != test_levels.shape[1:]:
        raise ShapeError(f"train images {train_levels.shape[1:]} and test images {test_levels.shape[1:]} differ")
    flat_train = train_levels.reshape(len(train_levels), -1)
    counts = np.stack([(flat_train == v).sum(0) for v in range(int(levels))], axis=1) + float(alpha)
    log_p = np.log2(counts / counts.sum(1, keepdims=True))
    flat_test = test_levels.reshape(len(test_levels), -1)
    return float(-np.mean(log_p[np.arange(flat_test.shape[1])[None], flat_test]))


# ---- the task -------------------------------------------------------------------------------------


@dataclasses.dataclass
class PixelCNNConfig(LikelihoodRunConfig):
    """Everything that determines a PixelCNN run (saved in the run's ``config.json``)."""

    levels: int = _flag(256, "intensity levels of the softmax (2: binarised images)", kind="positive_int", group=MODEL)
    filters: int = _flag(64, "feature maps of every masked conv", kind="positive_int", group=MODEL)
    layers: int = _flag(5, "residual 3x3 type-B masked convs", kind="non_negative_int", group=MODEL)
    first_kernel: int = _flag(7, "kernel of the type-A first layer (odd)", kind="positive_int", group=MODEL)

    def validate(self):
        LikelihoodRunConfig.validate(self)
        validation.int_in("levels", self.levels, 2, 256)
        validation.positive_int("filters", self.filters)
        validation.non_negative_int("layers", self.layers)
        if validation.positive_int("first_kernel", self.first_kernel) % 2 == 0:
            raise ConfigError(f"first_kernel must be odd, got {self.first_kernel}")
        return self


def build_model(config, image_shape):
    if config.filters % image_shape[-1]:
        raise ConfigError(f"filters ({config.filters}) must be a multiple of the {image_shape[-1]} colour channels")
    return pixelcnn(image_shape, config.levels, config.filters, config.layers, config.first_kernel)


class PixelCNNTask(Task):
    """A PixelCNN on ``config.data`` quantised to ``config.levels``; ``images``: a :class:`GANImages` instead."""

    name = NAME
    final_splits = (("test", "test_"),)
    epoch_split = None

    def __init__(self, config, images=None):
        super().__init__(config.validate())
        self._images = images
        self.model = None
        self._sample = None

    def prepare(self):
        if self._images is None:
            self._images = load_images(self.config.data)
        self.images = self._images
        self.image_shape = self.images.image_shape
        self.x_train = quantize(self.images.x_train, self.config.levels)
        self.x_test = quantize(self.images.x_test, self.config.levels)

    def steps_per_epoch(self):
        return len(self.x_train) // self.config.batch_size

    def train_dataset(self, epoch, skip_batches=0):
        b = self.config.batch_size
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.x_train))
        order = order[skip_batches * b:self.steps_per_epoch() * b]
        return tf.data.Dataset.from_tensor_slices(self.x_train[order]).batch(b, drop_remainder=True)

    def eval_dataset(self, split):
        if split != "test":
            return None
        return tf.data.Dataset.from_tensor_slices(self.x_test).batch(self.config.batch_size)

    def build(self, ctx):
        with precision(self.config.mixed_precision):
            self.model = build_model(self.config, self.image_shape)
        self.optimizer = ctx.optimizer(tf.keras.optimizers.Adam(self.config.lr))
        self.optimizer.build(self.model.trainable_variables)
        self.loss_metric = tf.keras.metrics.Mean("loss")

    def models(self):
        return {"model": self.model}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def metrics(self):
        return [self.loss_metric]

    def train_step(self, batch, ctx):
        with tf.GradientTape() as tape:
            nats = nll_nats(self.model(tf.cast(batch, tf.float32), training=True), batch)
            loss = ctx.mean(nats)
        ctx.minimize(tape, loss, self.model.trainable_variables, self.optimizer)
        self.loss_metric.update_state(nats)
        return {"loss": loss}

    def eval_step(self, batch, ctx):
        return {"nats": nll_nats(self.model(tf.cast(batch, tf.float32), training=False), batch)}

    def evaluate_end(self, outputs, split):
        nats = float(np.mean(outputs["nats"]))
        return {"nll_nats": nats, "bits_per_dim": bits_per_dim(nats, np.prod(self.image_shape))}

    def describe(self):
        c = self.config
        return (f"training a PixelCNN ({c.levels} levels, {c.layers} residual layers of {c.filters}) on "
                f"{self.images.source} ({len(self.x_train)} images {'x'.join(map(str, self.image_shape))})")

    def run_config(self):
        return {"config": self.config.to_json(), "image_shape": list(self.image_shape)}

    def sample_images(self, count, seed=0):
        """``count`` samples in [-1, 1] (the compiled sampler, seed ``[seed, 0]``)."""
        if self._sample is None:
            self._sample = sampler(self.model)
        return levels_to_signed(self._sample(int(count), tf.constant([seed, 0], tf.int64)).numpy(), self.config.levels)

    def serving_module(self):
        """``serve(levels [b, H, W, C] float32) -> {"log_probs": [b, H, W, C, levels]}``: every conditional at once."""
        return ConditionalsModule(self.model)


def levels_to_signed(levels_array, levels):
    """Integer levels -> images in [-1, 1]."""
    return (np.asarray(levels_array, np.float32) / (int(levels) - 1) * 2.0 - 1.0).astype(np.float32)


class ConditionalsModule(tf.Module):
    """``serve(levels float32 [b, H, W, C]) -> {"log_probs": [b, H, W, C, L]}``: one pass scores an image."""

    def __init__(self, model):
        super().__init__(name="pixelcnn")
        self.model = model
        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="levels")
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, levels):
        return {"log_probs": tf.nn.log_softmax(tf.cast(self.model(levels, training=False), tf.float32))}


# ---- run directories ------------------------------------------------------------------------------


def load_run_config(run_dir):
    """``(PixelCNNConfig, image_shape)`` of a run; a run of another task raises :class:`RunDirError`."""
    return rundir.read_task_config(
        run_dir, NAME, lambda obj: (PixelCNNConfig.from_json(obj["config"]), tuple(obj["image_shape"])))


def load_model(run_dir, checkpoint=None):
    """``(config, model)`` of a run at ``checkpoint`` (default: the latest)."""
    config, image_shape = load_run_config(run_dir)
    model = build_model(config, image_shape)
    restore_checkpoint(tf.train.Checkpoint(model=model), rundir.latest_checkpoint(run_dir, checkpoint), partial=True)
    return config, model


def sample(run_dir, num, out, seed=0, checkpoint=None, neighbours=0):
    """Draw ``num`` images from a PixelCNN run and write their grid to ``out/samples.png``; returns the path.

    ``neighbours=k``: also ``out/neighbours.png``, each sample beside its ``k`` nearest training images.
    """
    num = validation.positive_int("num", num)
    config, model = load_model(run_dir, checkpoint)
    images = levels_to_signed(sampler(model)(num, tf.constant([seed, 0], tf.int64)).numpy(), config.levels)
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    if neighbours:
        train_images = levels_to_signed(quantize(load_images(config.data).x_train, config.levels), config.levels)
        write_neighbour_grid(images, train_images, os.path.join(out, "neighbours.png"), neighbours)
    return write_grid(images, os.path.join(out, "samples.png"))


def train(config, run_dir=None, resume=False, images=None, log=print, hooks=(), progress=None):
    """Train a PixelCNN on the engine; returns its :class:`~cs231n_tf.engine.EngineResult`."""
    if resume and run_dir is not None:
        load_run_config(run_dir)
    task = PixelCNNTask(config, images=images)
    extra = [SampleGridHook(config.sample_every, config.sample_count, config.seed)] if config.sample_every else []
    return Engine(task, run_dir, resume=resume, log=log, hooks=[*extra, *hooks], progress=progress).run()
