"""Semantic segmentation (lecture 11) as a task on the package's one engine.

The step: an FCN or U-Net (:mod:`cs231n_tf.segmentation.models`) maps unit-scale images to
per-pixel logits; the loss is the per-pixel softmax cross-entropy over labelled pixels (ignore
label 255, optional class weights; :mod:`~cs231n_tf.segmentation.losses`), divided by the global
batch's weight sum so it is the same on one replica or many; Adam. Streaming metrics from one
confusion matrix (:class:`~cs231n_tf.segmentation.metrics.SegmentationMetrics`): ``mean_iou``,
and at every evaluation ``per_class_iou`` (``{class name: IoU or None when absent}``) and
``pixel_accuracy``, written to ``metrics.json`` with the engine's split prefixes (``val_mean_iou``,
``test_per_class_iou``...).

Data: ``shapes`` (default; :func:`cs231n_tf.data.shapes.shape_scenes`, separate seeds for train,
validation and test) or ``masks:IMAGE_DIR:MASK_DIR`` (:mod:`~cs231n_tf.segmentation.data`, split by
``validation_fraction`` / ``test_fraction``). Augmentation (:mod:`~cs231n_tf.segmentation.augment`)
moves masks with images; every example's view is a stateless function of ``(seed, epoch,
position in the epoch)``, so exact resume holds with augmentation on. The serving module maps
``images`` (float32 ``[batch, H, W, 3]`` in [0, 1]) to ``logits`` ``[batch, H, W, K]`` and
``labels`` (int32 ``[batch, H, W]``).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.engine.context import precision
from cs231n_tf.engine.loop import MIXED_PRECISION, Engine, EngineConfig
from cs231n_tf.engine.state import restore_checkpoint
from cs231n_tf.engine.task import Task
from cs231n_tf.errors import ConfigError, DataError
from cs231n_tf.segmentation import data as segdata
from cs231n_tf.segmentation.augment import augment_pair, parse_augment
from cs231n_tf.segmentation.layers import UPSAMPLING
from cs231n_tf.segmentation.losses import IGNORE_LABEL, pixel_cross_entropy
from cs231n_tf.segmentation.metrics import SegmentationMetrics
from cs231n_tf.segmentation.models import ARCHITECTURES, DOWNSAMPLING, ENCODERS, build_segmenter, encoder_unet
from cs231n_tf.train.config import _flag

NAME = "segmentation"
STRATEGIES = ("default", "one_device", "mirrored")
_DATA, _MODEL, _PERF, _RUN = "model and data", "model", "performance and devices", "run directory and checkpoints"


@dataclasses.dataclass
class SegmentationConfig(EngineConfig):
    """Everything that determines a segmentation run (saved in the run's ``config.json``).

    ``class_weights`` (library only): one loss weight per class, or ``None``.
    """

    epochs: int = _flag(20, "passes over the training images", kind="positive_int")
    batch_size: int = _flag(16, "global batch size, split over replicas", kind="positive_int", group=_DATA)
    seed: int = _flag(0, "random seed of the weights, the batch order and the augmentation", kind="non_negative_int")
    max_steps: int = _flag(None, "stop after this many steps (resumable)", kind="positive_int")
    steps_per_execution: int = _flag(1, "train steps per tf.function call", kind="positive_int", group=_PERF)
    xla: bool = _flag(False, "compile the train step with XLA (jit_compile)", kind="bool", group=_PERF)
    mixed_precision: str = _flag(None, "mixed precision policy (float16 uses dynamic loss scaling)",
                                 choices=MIXED_PRECISION, group=_PERF)
    strategy: str = _flag("default", "tf.distribute strategy", choices=STRATEGIES, group=_PERF)
    checkpoint_every: int = _flag(0, "also checkpoint every N steps (0: at the end of each epoch only)",
                                  kind="non_negative_int", group=_RUN)
    keep_checkpoints: int = _flag(3, "checkpoints kept", kind="positive_int", group=_RUN)
    log_every: int = _flag(50, "TensorBoard scalars every N steps", kind="positive_int", group=_RUN)
    deterministic: bool = _flag(False, "enable TensorFlow op determinism", kind="bool", group=_PERF)
    dataset: str = _flag("shapes", "shapes (embedded synthetic scenes) or masks:IMAGE_DIR:MASK_DIR (PNG label "
                         "maps, 255 = ignore, matched by file stem)", group=_DATA, metavar="SPEC")
    class_names: str = _flag(None, "file with one class name per line (default: inferred from the masks)",
                             group=_DATA, metavar="FILE")
    image_size: int = _flag(64, "images are generated (shapes) or resized (masks) to this square size",
                            kind="positive_int", group=_DATA)
    train_images: int = _flag(512, "shapes: training scenes", kind="positive_int", group=_DATA)
    validation_images: int = _flag(64, "shapes: validation scenes", kind="positive_int", group=_DATA)
    test_images: int = _flag(128, "shapes: test scenes", kind="positive_int", group=_DATA)
    validation_fraction: float = _flag(0.1, "masks: share of the images held out for validation",
                                       kind="non_negative_float", group=_DATA)
    test_fraction: float = _flag(0.1, "masks: share of the images held out for testing", kind="non_negative_float",
                                 group=_DATA)
    data_seed: int = _flag(0, "seed of the shapes scenes / of the masks split", kind="non_negative_int", group=_DATA)
    augment: str = _flag("flip,scale", "none, or a comma-separated subset of flip, scale, crop (masks move with "
                         "the images)", group=_DATA)
    architecture: str = _flag("fcn", "fcn (no skips) or unet (skip connections)", choices=ARCHITECTURES,
                              group=_MODEL)
    upsampling: str = _flag("nearest", "the decoder's upsampling", choices=UPSAMPLING, group=_MODEL)
    downsampling: str = _flag("pool", "the encoder's downsampling (max_unpool needs pool)", choices=DOWNSAMPLING,
                              group=_MODEL)
    depth: int = _flag(3, "encoder stages (the image size must be divisible by 2**depth)", kind="positive_int",
                       group=_MODEL)
    filters: int = _flag(16, "channels of the first stage (doubled at each stage)", kind="positive_int", group=_MODEL)
    encoder: str = _flag(None, "a registry backbone as the encoder (output stride 32; image_size a multiple of 32; "
                         "depth and downsampling then do not apply)", choices=(None,) + ENCODERS, group=_MODEL)
    encoder_weights: str = _flag(None, "the encoder's pretrained weights", choices=(None, "imagenet"), group=_MODEL)
    lr: float = _flag(2e-3, "Adam learning rate", kind="positive_float")
    class_weights: list = _flag(None, "", flag=None)

    def validate(self):
        EngineConfig.validate(self)
        segdata.parse_dataset(self.dataset)
        validation.one_of("strategy", self.strategy, STRATEGIES)
        validation.one_of("architecture", self.architecture, ARCHITECTURES)
        validation.one_of("upsampling", self.upsampling, UPSAMPLING)
        validation.one_of("downsampling", self.downsampling, DOWNSAMPLING)
        for name in ("image_size", "train_images", "validation_images", "test_images", "depth", "filters"):
            validation.positive_int(name, getattr(self, name))
        validation.non_negative_int("data_seed", self.data_seed)
        validation.positive_number("lr", self.lr)
        parse_augment(self.augment)
        if self.upsampling == "max_unpool" and self.downsampling != "pool":
            raise ConfigError("upsampling 'max_unpool' needs downsampling 'pool' (the pooling switches)")
        validation.one_of("encoder", self.encoder, (None,) + ENCODERS)
        validation.one_of("encoder_weights", self.encoder_weights, (None, "imagenet"))
        if self.encoder_weights and not self.encoder:
            raise ConfigError("encoder_weights needs an encoder (efficientnet_lite0)")
        if self.encoder and (self.image_size % 32 or self.upsampling == "max_unpool"):
            raise ConfigError(f"the {self.encoder} encoder has output stride 32 and no pooling switches: it needs "
                              f"image_size a multiple of 32 (got {self.image_size}) and an upsampling other than "
                              f"max_unpool (got {self.upsampling!r})")
        if not self.encoder and self.image_size % 2 ** self.depth:
            raise ConfigError(f"image_size {self.image_size} must be divisible by 2**depth = {2 ** self.depth}")
        if self.validation_fraction + self.test_fraction >= 1:
            raise ConfigError(f"validation_fraction + test_fraction must be < 1, got {self.validation_fraction} + "
                              f"{self.test_fraction}")
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        return rundir.config_from_json(cls, obj, "segmentation config")


def model_options(config):
    return dict(upsampling=config.upsampling, downsampling=config.downsampling, depth=config.depth,
                filters=config.filters)


def build_model(config, num_classes, mixed_precision=None):
    """The run's network for ``config`` (under ``mixed_precision``, restoring the global policy after)."""
    with precision(mixed_precision):
        if config.encoder:
            return encoder_unet((config.image_size, config.image_size, 3), num_classes, config.encoder,
                                weights=config.encoder_weights, upsampling=config.upsampling,
                                skips=config.architecture == "unet", filters=config.filters)
        return build_segmenter(config.architecture, (config.image_size, config.image_size, 3), num_classes,
                               **model_options(config))


def load_splits(config):
    """``(train, validation, test)`` :class:`~cs231n_tf.segmentation.data.SegmentationData` of ``config``."""
    kind, dirs = segdata.parse_dataset(config.dataset)
    names = segdata.read_class_names(config.class_names) if config.class_names else None
    if kind == "shapes":
        if names is not None:
            raise ConfigError("class_names applies to masks: data sets; the shapes scenes name their own classes")
        seed = config.data_seed
        return tuple(segdata.shapes_data(n, config.image_size, seed * 3 + i) for i, n in
                     enumerate((config.train_images, config.validation_images, config.test_images)))
    data = segdata.load_masks(*dirs, class_names=names, image_size=config.image_size)
    return segdata.split_data(data, config.validation_fraction, config.test_fraction, config.data_seed)


def _to_unit(images):
    return tf.cast(images, tf.float32) / 255.0


class SegmentationTask(Task):
    """Semantic segmentation of ``config`` (a :class:`SegmentationConfig`) on the engine.

    ``data``: ``(train, validation, test)`` to use instead of loading ``config.dataset``;
    ``class_names``: the names the data must have (a resumed run's).
    """

    name = NAME

    def __init__(self, config, data=None, class_names=None):
        super().__init__(config.validate())
        self._given = data
        self._expected_names = tuple(class_names) if class_names is not None else None
        self._prepared = False
        self.model = self.optimizer = None
        self.augmentations = parse_augment(config.augment)

    # ---- data ---------------------------------------------------------------------------------

    def prepare(self):
        if self._prepared:
            return
        self.train, self.validation, self.test = self._given or load_splits(self.config)
        self.class_names = self.train.class_names
        if self._expected_names is not None and self.class_names != self._expected_names:
            raise DataError(f"the data set's classes {list(self.class_names)} are not the run's "
                            f"{list(self._expected_names)}")
        size = self.config.image_size
        if self.train.images.shape[1:] != (size, size, 3):
            raise DataError(f"the training images are {self.train.images.shape[1:]}, not ({size}, {size}, 3)")
        if self.config.class_weights is not None and len(self.config.class_weights) != len(self.class_names):
            raise ConfigError(f"class_weights has {len(self.config.class_weights)} values for "
                              f"{len(self.class_names)} classes {list(self.class_names)}")
        self._prepared = True

    @property
    def num_classes(self):
        return len(self.class_names)

    def steps_per_epoch(self):
        return len(self.train) // self.config.batch_size

    def train_dataset(self, epoch, skip_batches=0):
        c = self.config
        b = c.batch_size
        n = self.steps_per_epoch() * b
        order = np.random.default_rng([c.seed, epoch]).permutation(len(self.train))[:n]
        positions = np.arange(n, dtype=np.int64)
        # Each example's augmentation seed is fixed by (seed, epoch, position), whatever was skipped.
        seeds = np.stack([np.full(n, c.seed, np.int64), epoch * n + positions], axis=1)
        start = skip_batches * b
        ds = tf.data.Dataset.from_tensor_slices((self.train.images[order][start:], self.train.masks[order][start:],
                                                 seeds[start:]))
        ops = self.augmentations

        def view(image, mask, seed):
            image, mask = _to_unit(image), tf.cast(mask, tf.int32)
            if ops:
                image, mask = augment_pair(image, mask, seed, ops)
            return image, mask

        return ds.map(view, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(
            b, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def _eval_data(self, split):
        return {"validation": self.validation, "test": self.test, "train": self.train}.get(split)

    def eval_dataset(self, split):
        data = self._eval_data(split)
        if data is None or not len(data):
            return None
        return dataset_of(data, self.config.batch_size)

    # ---- models and steps ---------------------------------------------------------------------

    def build(self, ctx):
        c = self.config
        self.model = build_model(c, self.num_classes, c.mixed_precision)
        self.optimizer = ctx.optimizer(tf.keras.optimizers.Adam(c.lr))
        self.optimizer.build(self.model.trainable_variables)
        self.train_loss = tf.keras.metrics.Mean("loss")
        self.train_iou = SegmentationMetrics(self.num_classes, name="mean_iou")
        self.eval_loss = tf.keras.metrics.Mean("loss")
        self.eval_iou = SegmentationMetrics(self.num_classes, name="mean_iou")

    def models(self):
        return {"model": self.model}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def metrics(self):
        return [self.train_loss, self.train_iou]

    def eval_metrics(self):
        return [self.eval_loss, self.eval_iou]

    def train_step(self, batch, ctx):
        images, masks = batch
        with tf.GradientTape() as tape:
            logits = tf.cast(self.model(images, training=True), tf.float32)
            losses, weights = pixel_cross_entropy(masks, logits, IGNORE_LABEL, self.config.class_weights)
            # Divide by the labelled weight of the whole global batch: replica shares sum to its mean.
            total = tf.distribute.get_replica_context().all_reduce("sum", tf.reduce_sum(weights))
            loss = tf.math.divide_no_nan(tf.reduce_sum(losses * weights), total)
        ctx.minimize(tape, loss, self.model.trainable_variables, self.optimizer)
        self.train_loss.update_state(losses, sample_weight=weights)
        self.train_iou.update_state(masks, logits)
        return {"loss": loss}

    def eval_step(self, batch, ctx):
        images, masks = batch
        logits = tf.cast(self.model(images, training=False), tf.float32)
        losses, weights = pixel_cross_entropy(masks, logits, IGNORE_LABEL, self.config.class_weights)
        self.eval_loss.update_state(losses, sample_weight=weights)
        self.eval_iou.update_state(masks, logits)
        return {}

    def evaluate_end(self, outputs, split):
        return metric_report(self.eval_iou, self.class_names)

    # ---- reporting and export -----------------------------------------------------------------

    def run_config(self):
        return {"config": self.config.to_json(), "class_names": list(self.class_names),
                "data": {"source": self.train.source, "train": len(self.train), "validation": len(self.validation),
                         "test": len(self.test)}}

    def describe(self):
        c = self.config
        if c.encoder:
            return (f"training a {c.architecture} on a {c.encoder} encoder ({c.encoder_weights or 'random'} weights, "
                    f"{c.upsampling} upsampling) on {self.train.source} ({len(self.train)} images, "
                    f"{self.num_classes} classes)")
        return (f"training a {c.architecture} ({c.upsampling} upsampling, {c.downsampling} downsampling, depth "
                f"{c.depth}) on {self.train.source} ({len(self.train)} images, {self.num_classes} classes)")

    def summary(self, metrics):
        return {**super().summary(metrics), "num_classes": self.num_classes, "class_names": list(self.class_names)}

    def serving_module(self):
        return SegmentationServing(self.model, (self.config.image_size, self.config.image_size, 3))


def dataset_of(data, batch_size):
    """Unit-scale images and int32 masks of ``data``, batched, unaugmented."""
    return tf.data.Dataset.from_tensor_slices((data.images, data.masks)).map(
        lambda x, y: (_to_unit(x), tf.cast(y, tf.int32))).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def metric_report(metric, class_names):
    """``{"per_class_iou": {name: IoU or None}, "pixel_accuracy": float}`` of a :class:`SegmentationMetrics`."""
    iou = metric.per_class_iou().numpy()
    return {"per_class_iou": {name: (None if np.isnan(v) else float(v)) for name, v in zip(class_names, iou)},
            "pixel_accuracy": float(metric.pixel_accuracy().numpy())}


class SegmentationServing(tf.Module):
    """``serve(images float32 [batch, H, W, 3] in [0, 1]) -> {"logits": [batch, H, W, K], "labels": int32 [batch, H, W]}``."""

    def __init__(self, model, image_shape):
        super().__init__(name="segmentation_serving")
        self.model = model
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, *image_shape], tf.float32, name="images")])

    def _serve(self, images):
        logits = tf.cast(self.model(images, training=False), tf.float32)
        return {"logits": logits, "labels": tf.argmax(logits, axis=-1, output_type=tf.int32)}


# ---- run directories ------------------------------------------------------------------------------


def load_run_config(run_dir):
    """``(SegmentationConfig, class names)`` of a segmentation run; other runs raise :class:`RunDirError`."""
    return rundir.read_task_config(
        run_dir, NAME, lambda obj: (SegmentationConfig.from_json(obj["config"]), tuple(obj["class_names"])))


def load_model(run_dir, checkpoint=None):
    """``(model, config, class names)`` of a run at ``checkpoint`` (default: the latest), in float32."""
    config, names = load_run_config(run_dir)
    checkpoint = rundir.latest_checkpoint(run_dir, checkpoint)
    model = build_model(config, len(names))
    restore_checkpoint(tf.train.Checkpoint(model=model), checkpoint, partial=True)
    return model, config, names


def _split_of(config, split):
    validation.one_of("split", split, ("train", "validation", "test"))
    return dict(zip(("train", "validation", "test"), load_splits(config)))[split]


def evaluate_run(run_dir, dataset=None, class_names=None, split="test", checkpoint=None, batch_size=32):
    """Score a run: ``{"mean_iou", "per_class_iou", "pixel_accuracy", "loss", "examples", ...}``.

    Without ``dataset``, on the run's ``split``; with ``dataset`` (a spec in the run's format,
    e.g. a held-out ``masks:IMAGES:MASKS``; ``class_names`` a names file) on all of it, resized to
    the run's image size. The data set must have the run's classes.
    """
    model, config, names = load_model(run_dir, checkpoint)
    if dataset is None:
        data = _split_of(config, split)
    else:
        data = segdata.load_dataset(dataset, class_names, image_size=config.image_size,
                                    num_images=config.test_images, seed=config.data_seed * 3 + 2)
        if segdata.parse_dataset(dataset)[0] == "masks" and class_names is None:
            if data.num_classes > len(names):
                raise DataError(f"{dataset} has labels up to {data.num_classes - 1}, outside the run's "
                                f"{len(names)} classes")
            data = segdata.SegmentationData(data.images, data.masks, names, data.source)
    if data.class_names != names:
        raise DataError(f"the data set's classes {list(data.class_names)} are not the run's {list(names)}")
    metric = SegmentationMetrics(len(names))
    loss = tf.keras.metrics.Mean()
    weights_of = config.class_weights

    @tf.function
    def score(images, masks):
        logits = tf.cast(model(images, training=False), tf.float32)
        losses, weights = pixel_cross_entropy(masks, logits, IGNORE_LABEL, weights_of)
        loss.update_state(losses, sample_weight=weights)
        metric.update_state(masks, logits)

    for images, masks in dataset_of(data, batch_size):
        score(images, masks)
    return {"mean_iou": float(metric.result().numpy()), **metric_report(metric, names),
            "loss": float(loss.result().numpy()), "examples": len(data), "dataset": data.source,
            "split": None if dataset else split, "run_dir": os.path.abspath(run_dir)}


def predict_labels(model, images, batch_size=32):
    """Per-pixel labels ``(N, H, W) int32`` of unit-scale ``images (N, H, W, 3)``."""
    out = [tf.argmax(model(images[i:i + batch_size], training=False), -1, output_type=tf.int32).numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out)


def train(config, run_dir=None, resume=False, data=None, log=print, hooks=(), progress=None):
    """Train a segmentation network on the engine; returns its :class:`~cs231n_tf.engine.EngineResult`.

    The data is loaded and checked before the run directory is touched; ``resume`` continues the
    run in ``run_dir`` (its data must have the run's classes).
    """
    names = None
    if resume:
        if run_dir is None:
            raise ConfigError("resume needs a run directory")
        _, names = load_run_config(run_dir)
    task = SegmentationTask(config, data=data, class_names=names)
    task.prepare()
    return Engine(task, run_dir, resume=resume, log=log, hooks=hooks, progress=progress).run()
