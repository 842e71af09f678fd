"""Fast style transfer (Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution", ECCV 2016; lecture 12) as a task on the package's one engine.

A feed-forward transformation network (:func:`transform_net`) learns to stylise any photo in one pass:
it is trained on content crops with the *perceptual* losses of Gatys et al. computed on a fixed
pretrained network (the course's :func:`~cs231n_tf.visualize.style.content_loss`,
:func:`~cs231n_tf.visualize.style.style_loss` against one style image's Gram matrices, and
:func:`~cs231n_tf.visualize.style.tv_loss`), instead of optimising each image for seconds. The content
images are random crops of the photos shipped in installed packages (or a ``folder:`` of images);
the loss network is the pretrained ``efficientnet_lite0`` without its classifier.

The engine provides checkpoints, exact resume, the NaN guard, strategies, mixed precision and
TensorBoard. The run's serving module stylises unit-range images of a fixed size; :func:`export_fast_style`
writes it as a verified SavedModel or ``.tflite`` through the package's exporter (the report holds the
largest pixel difference from Keras), and :func:`stylize_file` applies a run to an image of any size.
"""

import dataclasses
import os
import tempfile

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.engine.context import precision
from cs231n_tf.engine.loop import Engine, EngineConfig, EngineFlags
from cs231n_tf.engine.state import restore_checkpoint
from cs231n_tf.engine.task import Task
from cs231n_tf.errors import ConfigError
from cs231n_tf.train.config import _flag
from cs231n_tf.visualize.style import content_loss, feature_extractor, gram_matrix, load_network, style_loss, tv_loss

NAME = "fast_style"
PHOTO_CROPS = "photos"
QUANTIZE = ("none", "float16", "dynamic")

_DATA, _MODEL, _LOSS, _RUN = "images", "model", "perceptual losses", "run directory and checkpoints"


@dataclasses.dataclass
class FastStyleConfig(EngineFlags):
    """Everything that determines a fast-style run (saved in the run's ``config.json``)."""

    epochs: int = _flag(4, "passes over the content images", kind="positive_int")
    batch_size: int = _flag(4, "content images per step", kind="positive_int", group=_DATA)
    seed: int = _flag(0, "seed of the weights, the crops and the data order", kind="non_negative_int")
    log_every: int = _flag(10, "TensorBoard scalars every N steps", kind="positive_int",
                           group=_RUN)
    style: str = _flag(None, "the style image: a file path or photo:NAME", group=_DATA)
    content: str = _flag(PHOTO_CROPS, "content images: photos (random crops of the shipped photos) or folder:PATH",
                         group=_DATA)
    crops: int = _flag(16, "with content=photos: random crops of each shipped photo", kind="positive_int",
                       group=_DATA)
    image_size: int = _flag(96, "side of the square training images (a multiple of 4, at least 32)",
                            kind="positive_int", group=_DATA)
    loss_model: str = _flag("efficientnet_lite0", "pretrained network whose features define the losses",
                            group=_LOSS)
    content_layer: str = _flag(None, "layer of the content loss (default: the network's)", group=_LOSS)
    style_layers: str = _flag(None, "comma-separated layers of the style loss (default: the network's)",
                              group=_LOSS)
    content_weight: float = _flag(1e-2, "content loss weight", kind="non_negative_float", group=_LOSS)
    style_weight: float = _flag(1.0, "weight of every style layer's Gram loss", kind="positive_float", group=_LOSS)
    tv_weight: float = _flag(1e-3, "total-variation weight", kind="non_negative_float", group=_LOSS)
    filters: int = _flag(32, "filters of the first convolution (then 2x and 4x after each downsampling)",
                         kind="positive_int", group=_MODEL)
    residual_blocks: int = _flag(5, "residual blocks at the lowest resolution", kind="positive_int", group=_MODEL)
    lr: float = _flag(1e-3, "Adam learning rate (Johnson et al.: 1e-3)", kind="positive_float")

    def validate(self):
        EngineConfig.validate(self)
        if not isinstance(self.style, str) or not self.style:
            raise ConfigError("fast style transfer needs a style image: a file path or photo:NAME")
        if not isinstance(self.content, str) or not (self.content == PHOTO_CROPS or self.content.startswith("folder:")):
            raise ConfigError(f"content must be {PHOTO_CROPS!r} or folder:PATH, got {self.content!r}")
        validation.positive_int("crops", self.crops)
        size = validation.int_in("image_size", self.image_size, 32)
        if size % 4:
            raise ConfigError(f"image_size must be a multiple of 4 (two downsamplings by 2), got {size}")
        validation.positive_number("content_weight", self.content_weight, allow_zero=True)
        validation.positive_number("style_weight", self.style_weight)
        validation.positive_number("tv_weight", self.tv_weight, allow_zero=True)
        validation.positive_int("filters", self.filters)
        validation.positive_int("residual_blocks", self.residual_blocks)
        validation.positive_number("lr", self.lr)
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        return rundir.config_from_json(cls, obj, "fast style config")


class InstanceNormalization(tf.keras.layers.Layer):
    """Instance normalisation (Ulyanov, Vedaldi & Lempitsky 2016): each image's channels normalised over
    space, then a learned per-channel scale and offset. It equals Keras's ``GroupNormalization(groups=-1)``,
    whose reshapes with a dynamic batch TFLite cannot prepare; ``tf.nn.moments`` over H, W converts."""

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, x):
        mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        scale = tf.cast(self.gamma, x.dtype) * tf.math.rsqrt(variance + tf.cast(self.epsilon, x.dtype))
        return (x - mean) * scale + tf.cast(self.beta, x.dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _conv_norm(x, filters, kernel, name, strides=1, relu=True):
    x = tf.keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", name=f"{name}_conv")(x)
    x = InstanceNormalization(name=f"{name}_in")(x)
    return tf.keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def transform_net(filters=32, residual_blocks=5, channels=3, name="transform_net"):
    """Johnson et al.'s image transformation network, fully convolutional, unit-range images in and out.

    A 9x9 convolution, two stride-2 3x3 convolutions (``filters``, 2x, 4x channels), ``residual_blocks``
    residual blocks, two 2x upsamplings each followed by a 3x3 convolution, and a 9x9 convolution to
    ``channels`` with a sigmoid; every hidden convolution is followed by instance normalisation and ReLU.
    Upsampling is nearest-neighbour resizing plus a convolution rather than the paper's fractionally
    strided convolutions, which avoids their checkerboard artefacts (Odena et al. 2016). Height and
    width must be multiples of 4.
    """
    inputs = tf.keras.Input((None, None, channels), name="images")
    x = tf.keras.layers.Rescaling(1.0, offset=-0.5, name="center")(inputs)
    x = _conv_norm(x, filters, 9, "in")
    x = _conv_norm(x, 2 * filters, 3, "down1", strides=2)
    x = _conv_norm(x, 4 * filters, 3, "down2", strides=2)
    for i in range(1, residual_blocks + 1):
        y = _conv_norm(x, 4 * filters, 3, f"res{i}a")
        y = _conv_norm(y, 4 * filters, 3, f"res{i}b", relu=False)
        x = tf.keras.layers.Add(name=f"res{i}_add")([x, y])
    for i, f in ((1, 2 * filters), (2, filters)):
        x = tf.keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}_resize")(x)
        x = _conv_norm(x, f, 3, f"up{i}")
    x = tf.keras.layers.Conv2D(channels, 9, padding="same", name="out_conv")(x)
    outputs = tf.keras.layers.Activation("sigmoid", dtype="float32", name="stylized")(x)
    return tf.keras.Model(inputs, outputs, name=name)


def _read_unit(spec, size=None):
    from cs231n_tf.train.predict import read_image_spec

    image = tf.cast(read_image_spec(spec, 3), tf.float32)
    if size is not None:
        image = tf.image.resize(image, size, antialias=True)
    return np.clip(image.numpy() / 255.0, 0.0, 1.0).astype(np.float32)


def content_images(config):
    """The unit-range content images ``(N, S, S, 3)`` of ``config`` (crops of the shipped photos, or a folder)."""
    from cs231n_tf.data import photos
    from cs231n_tf.data.sources import load_folder

    size = config.image_size
    if config.content == PHOTO_CROPS:
        with tempfile.TemporaryDirectory() as tmp:
            raw = load_folder(photos.write_crop_folder(tmp, per_class=config.crops, size=size, seed=config.seed))
    else:
        raw = load_folder(config.content[len("folder:"):], image_size=(size, size))
    x = raw.x_train
    if x.shape[-1] != 3:
        x = np.repeat(x[..., :1], 3, axis=-1)
    return (x.astype(np.float32) / raw.pixel_max).astype(np.float32)


class FastStyleTask(Task):
    """Train :func:`transform_net` against one style image with perceptual losses (a :class:`FastStyleConfig`)."""

    name = NAME
    final_splits = ()
    epoch_split = None

    def __init__(self, config):
        super().__init__(config.validate())
        self.transform = None

    def prepare(self):
        self.images = content_images(self.config)
        if len(self.images) < self.config.batch_size:
            raise ConfigError(f"{len(self.images)} content images are fewer than batch_size {self.config.batch_size}")

    def steps_per_epoch(self):
        return len(self.images) // self.config.batch_size

    def train_dataset(self, epoch, skip_batches=0):
        b = self.config.batch_size
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.images))
        order = order[skip_batches * b:self.steps_per_epoch() * b]
        return tf.data.Dataset.from_tensor_slices(self.images[order]).batch(b, drop_remainder=True)

    def build(self, ctx):
        config = self.config
        network = load_network(model=config.loss_model, image_size=config.image_size)
        self.normalize = network.normalize
        self.content_layer = config.content_layer or network.content_layer
        self.style_layers = tuple(config.style_layers.split(",")) if config.style_layers else network.style_layers
        self.extractor = feature_extractor(network.model, [self.content_layer, *self.style_layers])
        self.extractor.trainable = False
        style = _read_unit(config.style, (config.image_size, config.image_size))[None]
        feats = self.extractor(self.normalize(style), training=False)
        # Fixed targets, recomputed identically on resume, so they need no checkpoint.
        self.style_targets = [tf.constant(gram_matrix(feats[n])[0]) for n in self.style_layers]
        tf.keras.utils.set_random_seed(config.seed)
        with precision(config.mixed_precision):
            self.transform = transform_net(config.filters, config.residual_blocks)
        self.optimizer = ctx.optimizer(tf.keras.optimizers.Adam(config.lr))
        self.optimizer.build(self.transform.trainable_variables)
        self.trackers = {k: tf.keras.metrics.Mean(k) for k in ("loss", "content", "style", "tv")}

    def models(self):
        return {"transform": self.transform}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def metrics(self):
        return list(self.trackers.values())

    def perceptual_losses(self, x, y):
        """``(content, style, tv)`` summed over the batch for content images ``x`` and stylised ``y``."""
        c = self.config
        target = self.extractor(self.normalize(x), training=False)[self.content_layer]
        feats = self.extractor(self.normalize(y), training=False)
        return (content_loss(c.content_weight, feats[self.content_layer], target),
                style_loss(feats, self.style_layers, self.style_targets, [c.style_weight] * len(self.style_layers)),
                tv_loss(y, c.tv_weight))

    def train_step(self, batch, ctx):
        x = tf.cast(batch, tf.float32)
        with tf.GradientTape() as tape:
            y = tf.cast(self.transform(x, training=True), tf.float32)
            parts = self.perceptual_losses(x, y)
            # The course's losses sum over the batch; dividing by the global batch makes the replicas'
            # shares sum to the mean per image.
            share = tf.add_n(parts) / ctx.global_batch_size
        ctx.minimize(tape, share, self.transform.trainable_variables, self.optimizer)
        local = tf.cast(tf.shape(x)[0], tf.float32)
        out = {"loss": share}
        for key, value in zip(("content", "style", "tv"), parts):
            out[key] = value / ctx.global_batch_size
            self.trackers[key].update_state(value / local)
        self.trackers["loss"].update_state(tf.add_n(parts) / local)
        return out

    def describe(self):
        c = self.config
        return (f"training a fast style network on {len(self.images)} {c.content} images "
                f"{c.image_size}x{c.image_size} against {c.style} ({c.loss_model} features)")

    def run_config(self):
        return {"config": self.config.to_json(), "content_layer": self.content_layer,
                "style_layers": list(self.style_layers)}

    def serving_module(self):
        return FastStyleModule(self.transform, self.config.image_size)


class FastStyleModule(tf.Module):
    """``serve(images float32 [b, S, S, 3] in [0, 1]) -> {"stylized": [b, S, S, 3] in [0, 1]}``."""

    def __init__(self, transform, size):
        super().__init__(name="fast_style")
        self.transform = transform
        spec = tf.TensorSpec([None, int(size), int(size), 3], tf.float32, name="images")
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, images):
        return {"stylized": tf.cast(self.transform(images, training=False), tf.float32)}


# ---- run directories ------------------------------------------------------------------------------


def load_run_config(run_dir):
    """The :class:`FastStyleConfig` of a fast-style run; a run of another task raises :class:`RunDirError`."""
    return rundir.read_task_config(run_dir, NAME, lambda obj: FastStyleConfig.from_json(obj["config"]))


def load_transform(run_dir, checkpoint=None):
    """``(transform network, config)`` of a run at ``checkpoint`` (default: the latest)."""
    config = load_run_config(run_dir)
    model = transform_net(config.filters, config.residual_blocks)
    restore_checkpoint(tf.train.Checkpoint(transform=model), rundir.latest_checkpoint(run_dir, checkpoint),
                       partial=True)
    return model, config


def train(config, run_dir=None, resume=False, log=print, hooks=(), progress=None):
    """Train a fast style network on the engine; returns its :class:`~cs231n_tf.engine.EngineResult`."""
    if resume and run_dir is not None:
        load_run_config(run_dir)  # a run of another task is refused before anything loads
    return Engine(FastStyleTask(config), run_dir, resume=resume, log=log, hooks=list(hooks), progress=progress).run()


def stylize(model, image):
    """Stylise a unit-range image ``(H, W, 3)`` of any size in one pass (resized to multiples of 4 and back)."""
    h, w = image.shape[:2]
    x = tf.image.resize(image[None], (max(4, round(h / 4) * 4), max(4, round(w / 4) * 4)))
    y = tf.cast(model(x, training=False), tf.float32)
    return tf.clip_by_value(tf.image.resize(y, (h, w)), 0.0, 1.0)[0].numpy()


def stylize_file(run_dir, image, out_dir, checkpoint=None, max_side=None):
    """``cs231n-tf style apply``: write ``out_dir/<stem>_stylized.png`` and ``apply.json``; returns the dict.

    ``max_side`` shrinks larger images first (the network runs at any size, memory grows with it).
    """
    import time

    from cs231n_tf.fileio import atomic_write_bytes, atomic_write_json, confined_path

    model, config = load_transform(run_dir, checkpoint)
    x = _read_unit(image)
    if max_side is not None and max(x.shape[:2]) > validation.positive_int("max_side", max_side):
        scale = max_side / max(x.shape[:2])
        x = _read_unit(image, (max(4, round(x.shape[0] * scale)), max(4, round(x.shape[1] * scale))))
    started = time.perf_counter()
    y = stylize(model, x)
    seconds = time.perf_counter() - started
    stem = os.path.splitext(os.path.basename(image.split(":", 1)[-1]))[0] or "image"
    png = confined_path(out_dir, f"{stem}_stylized.png")
    atomic_write_bytes(png, tf.io.encode_png(np.round(y * 255).astype(np.uint8)).numpy())
    report = {"run_dir": os.path.abspath(run_dir), "style": config.style, "image": image, "size": list(y.shape[:2]),
              "seconds": seconds, "stylized": png}
    atomic_write_json(confined_path(out_dir, "apply.json"), report)
    return report


def export_fast_style(run_dir, format="saved_model", quantize="none", out=None, checkpoint=None,
                      saved_models_root="saved_models"):
    """Export a run's network at its training size as ``out/saved_model/`` or ``out/model_<quantize>.tflite``.

    Verified by :func:`cs231n_tf.export.export_module` / :func:`~cs231n_tf.export.export_signature_tflite`
    on the shipped photos and crops of them; the report (``<artifact>.report.json``) adds
    ``max_abs_pixel_diff``, the largest difference from Keras in 0..255 pixel units.
    """
    from cs231n_tf.export.exporter import export_module, export_signature_tflite, pretrained_images
    from cs231n_tf.fileio import atomic_write_json, confined_path

    validation.one_of("format", format, ("saved_model", "tflite"))
    validation.one_of("quantize", quantize, QUANTIZE)
    if format == "saved_model" and quantize != "none":
        raise ConfigError(f"quantize={quantize!r} applies to TFLite only; SavedModels are exported in float")
    model, config = load_transform(run_dir, checkpoint)
    module = FastStyleModule(model, config.image_size)
    out = os.path.abspath(out or os.path.join(saved_models_root, os.path.basename(os.path.normpath(run_dir))))
    feed = {"images": pretrained_images(config.image_size, augmented=1)}
    if format == "saved_model":
        report = export_module(module, confined_path(out, "saved_model"), feed)
    else:
        report = export_signature_tflite(module, module.serve, confined_path(out, f"model_{quantize}.tflite"), feed,
                                         quantize=quantize)
    report.update(max_abs_pixel_diff=255.0 * report["max_abs_diff"]["stylized"], task=NAME,
                  run_dir=os.path.abspath(run_dir), style=config.style, verified_on="shipped photos + crops",
                  input={"name": "images", "shape": [None, config.image_size, config.image_size, 3],
                         "scale": "pixels / 255 (unit range)"})
    atomic_write_json(report["path"].rstrip("/") + ".report.json", report)
    return report
