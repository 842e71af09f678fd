"""Recurrent attention model (Mnih, Heess, Graves & Kavukcuoglu, "Recurrent Models of Visual Attention", 2014).

Lecture 14's example of REINFORCE on a choice that has no gradient: *where to look*. The model sees
an image only through ``glimpses`` small multi-resolution patches. At each step the glimpse network
encodes the patches and their location, an LSTM core integrates them, and a location policy
``l_{t+1} ~ N(tanh(W h_t), sigma^2)`` picks the next place to look; after the last glimpse a
classifier reads the core's state. The classifier, core and glimpse network learn by backprop of the
cross-entropy; the location policy cannot (the sampled location is not a differentiable function of
the weights), so it learns by REINFORCE with the reward ``R = 1[prediction correct]``:

    loss = CE(logits, y) + reinforce_weight * mean_t[-(R - b_t) log pi(l_t | h_{t-1})] + mean_t[(R - b_t)^2]

with a learned baseline ``b_t`` on the (gradient-stopped) core state reducing the estimator's variance.
Evaluation looks at the policy's mean locations (no sampling).

The task runs on the package's engine (exact resume, NaN guard, strategies); its noise is stateless,
drawn from ``(seed, step, replica)``. Data: :func:`cluttered_digits`, the embedded 8x8 digits scaled up
and placed at random on a larger canvas with clutter cut from other digits (the paper's cluttered
translated MNIST, from the data that ships offline).
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.engine.context import precision
from cs231n_tf.engine.loop import Engine, EngineConfig, EngineFlags
from cs231n_tf.engine.task import Task
from cs231n_tf.errors import ConfigError
from cs231n_tf.train.config import _flag

NAME = "ram"
_DATA, _MODEL = "model and data", "model"


def cluttered_digits(images, labels, num, canvas=32, digit_size=16, clutter=4, seed=0):
    """``num`` canvases ``(num, canvas, canvas, 1)`` in [0, 1], each one digit plus clutter, and their labels.

    ``images``: digits ``(N, 8, 8, 1)`` in [0, 1], scaled up by an integer factor to ``digit_size``
    (nearest neighbour); the digit goes at a uniform random position, and ``clutter`` pieces of
    ``digit_size // 2`` pixels cut at random from other digits at other random positions
    (overlaps take the maximum). Deterministic for ``seed``.
    """
    images, labels = np.asarray(images, np.float32), np.asarray(labels)
    if images.ndim != 4 or images.shape[1:] != (8, 8, 1):
        raise ConfigError(f"cluttered_digits needs (N, 8, 8, 1) digits, got {images.shape}")
    validation.positive_int("num", num)
    if digit_size % 8 or not 8 <= digit_size <= canvas:
        raise ConfigError(f"digit_size must be a multiple of 8 between 8 and canvas={canvas}, got {digit_size}")
    validation.non_negative_int("clutter", clutter)
    factor = digit_size // 8
    big = np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)
    piece = digit_size // 2
    rng = np.random.default_rng(seed)
    out = np.zeros((num, canvas, canvas, 1), np.float32)
    chosen = rng.integers(0, len(images), num)
    for i, k in enumerate(chosen):
        for _ in range(clutter):
            src = big[rng.integers(0, len(images))]
            sy, sx = rng.integers(0, digit_size - piece + 1, 2)
            y, x = rng.integers(0, canvas - piece + 1, 2)
            out[i, y:y + piece, x:x + piece] = np.maximum(out[i, y:y + piece, x:x + piece],
                                                          src[sy:sy + piece, sx:sx + piece])
        y, x = rng.integers(0, canvas - digit_size + 1, 2)
        out[i, y:y + digit_size, x:x + digit_size] = np.maximum(out[i, y:y + digit_size, x:x + digit_size], big[k])
    return out, labels[chosen]


def glimpse_boxes(locations, image_size, glimpse_size, scales):
    """``tf.image.crop_and_resize`` boxes of the ``scales`` patches around ``locations`` ``(B, 2)`` in [-1, 1].

    Location ``(-1, -1)`` is the image's top-left corner and ``(1, 1)`` its bottom-right one; patch ``k``
    spans ``glimpse_size * 2**k`` pixels, sampled at ``glimpse_size`` points. Returns ``(scales * B, 4)``
    normalised boxes, scale-major (patches outside the image read zeros).
    """
    # Pixel i covers [i, i + 1]; a patch of side s around c covers pixels c - s/2 .. c + s/2 - 1, and
    # crop_and_resize's normalised coordinate of pixel i is i / (size - 1).
    centre = (tf.cast(locations, tf.float32) + 1.0) * (image_size / 2.0)
    boxes = []
    for k in range(scales):
        half = glimpse_size * 2 ** k / 2.0
        low, high = centre - half, centre + half - 1.0
        boxes.append(tf.concat([low, high], axis=1) / (image_size - 1))
    return tf.concat(boxes, axis=0)


def gaussian_log_prob(x, mean, std):
    """``sum_d log N(x_d; mean_d, std^2)`` over the last axis."""
    z = (x - mean) / std
    return tf.reduce_sum(-0.5 * tf.square(z) - tf.math.log(std) - 0.5 * math.log(2.0 * math.pi), axis=-1)


class RecurrentAttention(tf.keras.Model):
    """The RAM: glimpse network, LSTM core, location policy, baseline and classifier (Mnih et al. 2014)."""

    def __init__(self, num_classes, image_size, glimpses=6, glimpse_size=8, scales=2, hidden=256,
                 location_std=0.15, name="recurrent_attention"):
        super().__init__(name=name)
        self.num_classes, self.image_size = validation.positive_int("num_classes", num_classes), int(image_size)
        self.glimpses = validation.positive_int("glimpses", glimpses)
        self.glimpse_size = validation.positive_int("glimpse_size", glimpse_size)
        self.scales = validation.positive_int("scales", scales)
        self.location_std = validation.positive_number("location_std", location_std)
        dense = tf.keras.layers.Dense
        self.what = dense(128, activation="relu", name="glimpse_what")
        self.where = dense(128, activation="relu", name="glimpse_where")
        self.glimpse = dense(hidden, activation="relu", name="glimpse")
        self.core = tf.keras.layers.LSTMCell(hidden, name="core")
        self.locator = dense(2, name="location")
        self.baseline = dense(1, name="baseline")
        self.classifier = dense(num_classes, name="logits")

    def sense(self, images, locations):
        """The glimpse sensor: ``(B, scales * glimpse_size**2 * C)`` patches around ``locations``."""
        b = tf.shape(images)[0]
        boxes = glimpse_boxes(locations, self.image_size, self.glimpse_size, self.scales)
        index = tf.tile(tf.range(b), [self.scales])
        patches = tf.image.crop_and_resize(images, boxes, index, [self.glimpse_size] * 2)
        patches = tf.reshape(patches, [self.scales, b, -1])
        return tf.reshape(tf.transpose(patches, [1, 0, 2]), [b, -1])

    def unroll(self, images, seed=None):
        """Run the glimpses. ``seed`` (a stateless seed): sample the start and the policy; ``None``: look at the means.

        Returns ``(logits (B, K), log_probs (T-1, B), baselines (T, B), locations (T, B, 2))``.
        """
        images = tf.cast(images, tf.float32)
        b = tf.shape(images)[0]
        if seed is None:
            loc = tf.zeros([b, 2])
        else:
            loc = tf.random.stateless_uniform([b, 2], seed, -1.0, 1.0)
        state = [tf.zeros([b, self.core.units]), tf.zeros([b, self.core.units])]
        log_probs, baselines, locations = [], [], []
        for t in range(self.glimpses):
            locations.append(loc)
            g = self.glimpse(tf.concat([self.what(self.sense(images, loc)), self.where(loc)], axis=1))
            h, state = self.core(g, state)
            # The policy and the baseline learn from REINFORCE and regression only, not through the core.
            baselines.append(tf.squeeze(self.baseline(tf.stop_gradient(h)), -1))
            if t + 1 < self.glimpses:
                mean = tf.tanh(self.locator(tf.stop_gradient(h)))
                if seed is None:
                    loc = mean
                else:
                    noise = tf.random.stateless_normal([b, 2], tf.random.experimental.stateless_fold_in(seed, t + 1))
                    loc = tf.stop_gradient(tf.clip_by_value(mean + self.location_std * noise, -1.0, 1.0))
                    log_probs.append(gaussian_log_prob(loc, mean, self.location_std))
        logits = self.classifier(h)
        log_probs = tf.stack(log_probs) if log_probs else tf.zeros([0, b])
        return logits, log_probs, tf.stack(baselines), tf.stack(locations)

    def call(self, images, training=False):
        return self.unroll(images)[0]


def ram_losses(logits, log_probs, baselines, labels, reinforce_weight=1.0):
    """Per-example ``(total, cross_entropy, reinforce, baseline_mse, reward)`` of the hybrid objective (module doc)."""
    labels = tf.cast(labels, tf.int32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    reward = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
    advantage = tf.stop_gradient(reward[None] - baselines)
    reinforce = -tf.reduce_mean(advantage[1:] * log_probs, axis=0) if log_probs.shape[0] else tf.zeros_like(ce)
    baseline_mse = tf.reduce_mean(tf.square(reward[None] - baselines), axis=0)
    return ce + reinforce_weight * reinforce + baseline_mse, ce, reinforce, baseline_mse, reward


@dataclasses.dataclass
class RAMConfig(EngineFlags):
    """Everything that determines a recurrent-attention run (saved in the run's ``config.json``)."""

    epochs: int = _flag(30, "passes over the training canvases", kind="positive_int")
    batch_size: int = _flag(64, "canvases per step", kind="positive_int", group=_DATA)
    seed: int = _flag(0, "seed of the weights, the data order and the glimpse noise", kind="non_negative_int")
    canvas: int = _flag(32, "side of the cluttered canvas in pixels", kind="positive_int", group=_DATA)
    digit_size: int = _flag(16, "side of the digit on the canvas (a multiple of 8)", kind="positive_int", group=_DATA)
    clutter: int = _flag(4, "clutter pieces per canvas", kind="non_negative_int", group=_DATA)
    train_images: int = _flag(6000, "training canvases (made from the training digits)", kind="positive_int",
                              group=_DATA)
    glimpses: int = _flag(6, "glimpses per image", kind="positive_int", group=_MODEL)
    glimpse_size: int = _flag(8, "side of the finest glimpse patch", kind="positive_int", group=_MODEL)
    scales: int = _flag(2, "patches per glimpse, each twice the previous side", kind="positive_int", group=_MODEL)
    hidden: int = _flag(256, "LSTM core units", kind="positive_int", group=_MODEL)
    location_std: float = _flag(0.15, "std of the Gaussian location policy", kind="positive_float", group=_MODEL)
    reinforce_weight: float = _flag(1.0, "weight of the REINFORCE term", kind="non_negative_float", group=_MODEL)
    lr: float = _flag(1e-3, "Adam learning rate", kind="positive_float")

    def validate(self):
        EngineConfig.validate(self)
        for name in ("canvas", "digit_size", "train_images", "glimpses", "glimpse_size", "scales", "hidden"):
            validation.positive_int(name, getattr(self, name))
        validation.non_negative_int("clutter", self.clutter)
        validation.positive_number("location_std", self.location_std)
        validation.positive_number("reinforce_weight", self.reinforce_weight, allow_zero=True)
        validation.positive_number("lr", self.lr)
        if self.digit_size % 8 or self.digit_size > self.canvas:
            raise ConfigError(f"digit_size must be a multiple of 8 no larger than canvas={self.canvas}, "
                              f"got {self.digit_size}")
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        return rundir.config_from_json(cls, obj, "recurrent attention config")


def load_canvases(config):
    """``{"train"|"validation"|"test": (canvases, labels)}`` from the embedded digits' own splits."""
    from cs231n_tf import data

    splits = data.load("digits", batch_size=config.batch_size)
    counts = {"train": config.train_images, "validation": max(1, config.train_images // 10), "test": 1000}
    out = {}
    for i, (split, count) in enumerate(counts.items()):
        x = splits.to_unit(splits.arrays[f"x_{split}"]).numpy()
        out[split] = cluttered_digits(x, splits.arrays[f"y_{split}"], count, config.canvas,
                                      config.digit_size, config.clutter, seed=[config.seed, i])
    return out


class RAMTask(Task):
    """The recurrent attention model on cluttered digits (a :class:`RAMConfig`); ``canvases`` to use instead."""

    name = NAME

    def __init__(self, config, canvases=None):
        super().__init__(config.validate())
        self.canvases = canvases
        self.model = None

    def prepare(self):
        if self.canvases is None:
            self.canvases = load_canvases(self.config)

    def steps_per_epoch(self):
        return len(self.canvases["train"][0]) // self.config.batch_size

    def train_dataset(self, epoch, skip_batches=0):
        x, y = self.canvases["train"]
        b = self.config.batch_size
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(x))
        order = order[skip_batches * b:self.steps_per_epoch() * b]
        return tf.data.Dataset.from_tensor_slices((x[order], y[order].astype(np.int32))).batch(b, drop_remainder=True)

    def eval_dataset(self, split):
        if split not in self.canvases:
            return None
        x, y = self.canvases[split]
        return tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32))).batch(self.config.batch_size)

    def build(self, ctx):
        config = self.config
        with precision(config.mixed_precision):
            self.model = RecurrentAttention(10, config.canvas, config.glimpses, config.glimpse_size, config.scales,
                                            config.hidden, config.location_std)
            self.model(tf.zeros([1, config.canvas, config.canvas, 1]))
        self.optimizer = ctx.optimizer(tf.keras.optimizers.Adam(config.lr))
        self.optimizer.build(self.model.trainable_variables)
        self.train_metrics = [tf.keras.metrics.Mean(n) for n in ("loss", "cross_entropy", "reinforce", "baseline_mse")]
        self.train_accuracy = tf.keras.metrics.Mean("accuracy")
        self.eval_loss = tf.keras.metrics.Mean("loss")
        self.eval_accuracy = tf.keras.metrics.SparseCategoricalAccuracy("accuracy")

    def models(self):
        return {"model": self.model}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def metrics(self):
        return self.train_metrics + [self.train_accuracy]

    def eval_metrics(self):
        return [self.eval_loss, self.eval_accuracy]

    def _seed(self, ctx):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        base = tf.stack([tf.constant(self.config.seed, tf.int64), tf.cast(replica, tf.int64)])
        step = tf.zeros([], tf.int64) if ctx.step is None else tf.cast(ctx.step, tf.int64)
        return tf.random.experimental.stateless_fold_in(base, step)

    def train_step(self, batch, ctx):
        x, y = batch
        with tf.GradientTape() as tape:
            logits, log_probs, baselines, _ = self.model.unroll(x, seed=self._seed(ctx))
            total, ce, reinforce, mse, reward = ram_losses(tf.cast(logits, tf.float32), log_probs, baselines, y,
                                                           self.config.reinforce_weight)
            loss = ctx.mean(total)
        ctx.minimize(tape, loss, self.model.trainable_variables, self.optimizer)
        for metric, value in zip(self.train_metrics, (total, ce, reinforce, mse)):
            metric.update_state(value)
        self.train_accuracy.update_state(reward)
        return {"loss": loss}

    def eval_step(self, batch, ctx):
        x, y = batch
        logits = tf.cast(self.model(x), tf.float32)
        self.eval_loss.update_state(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        self.eval_accuracy.update_state(y, logits)
        return {}

    def describe(self):
        c = self.config
        return (f"recurrent attention model: {c.glimpses} glimpses of {c.scales}x{c.glimpse_size}px on "
                f"{c.canvas}x{c.canvas} cluttered digits")


def train(config, run_dir=None, resume=False, canvases=None, log=print, hooks=(), progress=None):
    """Train the recurrent attention model on the engine; returns its :class:`~cs231n_tf.engine.EngineResult`."""
    if resume and run_dir is not None:
        rundir.read_task_config(run_dir, NAME, lambda obj: RAMConfig.from_json(obj["config"]))
    return Engine(RAMTask(config, canvases), run_dir, resume=resume, log=log, hooks=list(hooks),
                  progress=progress).run()
