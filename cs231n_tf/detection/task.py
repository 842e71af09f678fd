"""Object detection (lecture 11) as a task on the package's one engine: the single-shot detector.

The step: :func:`~cs231n_tf.detection.ssd.ssd` maps unit-scale images to per-anchor class logits
and box codes; the loss is RetinaNet's (focal loss over non-ignored anchors + smooth-L1 or GIoU
over positives), divided by the number of positive anchors of the whole global batch (at least
1), so it is the same on one replica or many; Adam. Targets (matching and encoding) are computed
per image in the ``tf.data`` pipeline after augmentation, from a ground truth padded per image,
so an image without objects is an image of negatives only.

Evaluation: ``eval_step`` runs the in-graph post-processing (decode, clip, class-aware NMS, top-k;
:func:`~cs231n_tf.detection.ssd.postprocess`) and returns the padded detections; ``evaluate_end``
scores them against the split's ground truth with pycocotools
(:func:`~cs231n_tf.detection.metrics.coco_evaluate`): ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``,
``APl``, ``AR1``, ``AR10``, ``AR100``... written to ``metrics.json`` as ``test_AP``, ``val_AP``...
Images without objects count only through their detections (false positives).

Data: ``shapes`` (default) or ``coco:ANN.json:IMAGE_DIR`` (:mod:`~cs231n_tf.detection.data`).
Every example's augmented view is a stateless function of ``(seed, epoch, position in the
epoch)``, so exact resume holds with augmentation on. The serving module maps ``images`` (float32
``[batch, H, W, 3]`` in [0, 1]) to ``boxes`` (pixels ``[ymin, xmin, ymax, xmax]``), ``classes``,
``scores`` and ``num_detections``.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.detection import data as detdata
from cs231n_tf.detection import ssd as ssdlib
from cs231n_tf.detection.augment import augment_detection, parse_augment
from cs231n_tf.detection.metrics import coco_evaluate
from cs231n_tf.engine import rundir
from cs231n_tf.engine.context import precision
from cs231n_tf.engine.loop import Engine, EngineConfig, EngineFlags
from cs231n_tf.engine.state import restore_checkpoint
from cs231n_tf.engine.task import Task
from cs231n_tf.errors import ConfigError, DataError
from cs231n_tf.train.config import _flag

NAME = "detection"
MODELS = ("ssd",)
BACKBONE_WEIGHTS = (None, "imagenet")
STRATEGIES = ("default", "one_device", "mirrored")
DETECTION_KEYS = ("boxes", "classes", "scores", "num_detections")
_DATA, _MODEL, _PERF = "model and data", "model", "performance and devices"


@dataclasses.dataclass
class DetectionConfig(EngineFlags):
    """Everything that determines a detection run (saved in the run's ``config.json``)."""

    epochs: int = _flag(20, "passes over the training images", kind="positive_int")
    batch_size: int = _flag(16, "global batch size, split over replicas", kind="positive_int", group=_DATA)
    seed: int = _flag(0, "random seed of the weights, the batch order and the augmentation", kind="non_negative_int")
    strategy: str = _flag("default", "tf.distribute strategy", choices=STRATEGIES, group=_PERF)
    dataset: str = _flag("shapes", f"shapes (embedded synthetic scenes) or {detdata.DETECTION_SPEC}", group=_DATA,
                         metavar="SPEC")
    image_size: int = _flag(64, "images are generated (shapes) or resized (coco) to this square size",
                            kind="positive_int", group=_DATA)
    train_images: int = _flag(512, "shapes: training scenes", kind="positive_int", group=_DATA)
    validation_images: int = _flag(64, "shapes: validation scenes", kind="positive_int", group=_DATA)
    test_images: int = _flag(128, "shapes: test scenes", kind="positive_int", group=_DATA)
    validation_fraction: float = _flag(0.1, "coco: share of the images held out for validation",
                                       kind="non_negative_float", group=_DATA)
    test_fraction: float = _flag(0.1, "coco: share of the images held out for testing", kind="non_negative_float",
                                 group=_DATA)
    data_seed: int = _flag(0, "seed of the shapes scenes / of the coco split", kind="non_negative_int", group=_DATA)
    augment: str = _flag("flip,scale", "none, or a comma-separated subset of flip, scale (boxes move with the "
                         "image; boxes whose centre leaves a zoomed crop are dropped)", group=_DATA)
    model: str = _flag("ssd", "the detector", choices=MODELS, group=_MODEL)
    backbone: str = _flag(ssdlib.DEFAULT_BACKBONE, "any convolutional registry model with feature maps at strides "
                          "8, 16 and 32 (resnet18, efficientnet_lite0, vgg11...)", group=_MODEL, metavar="MODEL")
    backbone_weights: str = _flag(None, "the backbone's pretrained weights (efficientnet_lite0: imagenet)",
                                  choices=BACKBONE_WEIGHTS, group=_MODEL)
    anchor_scale: float = _flag(1.5, "anchor size in strides at each level (RetinaNet: 4, for large images)",
                                kind="positive_float", group=_MODEL)
    fpn_filters: int = _flag(64, "channels of the feature pyramid and the heads", kind="positive_int", group=_MODEL)
    head_depth: int = _flag(2, "3x3 convolutions in each head", kind="non_negative_int", group=_MODEL)
    box_loss: str = _flag("smooth_l1", "box regression loss", choices=ssdlib.BOX_LOSSES, group=_MODEL)
    focal_alpha: float = _flag(0.25, "focal loss alpha (weight of positives)", kind="unit_float", group=_MODEL)
    focal_gamma: float = _flag(2.0, "focal loss gamma (0: cross-entropy)", kind="non_negative_float", group=_MODEL)
    positive_iou: float = _flag(0.5, "anchors with IoU >= this are positives", kind="unit_float", group=_MODEL)
    negative_iou: float = _flag(0.4, "anchors with IoU < this are negatives (in between: ignored)",
                                kind="unit_float", group=_MODEL)
    max_detections: int = _flag(100, "detections kept per image after NMS", kind="positive_int", group=_MODEL)
    nms_iou: float = _flag(0.5, "NMS IoU threshold", kind="unit_float", group=_MODEL)
    score_threshold: float = _flag(0.05, "detections scoring below this are dropped", kind="unit_float",
                                   group=_MODEL)
    lr: float = _flag(1e-3, "Adam learning rate", kind="positive_float")

    def validate(self):
        EngineConfig.validate(self)
        detdata.parse_dataset(self.dataset)
        validation.one_of("strategy", self.strategy, STRATEGIES)
        validation.one_of("model", self.model, MODELS)
        validation.one_of("backbone_weights", self.backbone_weights, BACKBONE_WEIGHTS)
        from cs231n_tf.models.registry import get_spec, pretrained_spec

        if self.backbone_weights:
            pretrained_spec(self.backbone, self.backbone_weights)
        else:
            get_spec(self.backbone)
        validation.one_of("box_loss", self.box_loss, ssdlib.BOX_LOSSES)
        for name in ("image_size", "train_images", "validation_images", "test_images", "fpn_filters",
                     "max_detections"):
            validation.positive_int(name, getattr(self, name))
        validation.non_negative_int("head_depth", self.head_depth)
        validation.non_negative_int("data_seed", self.data_seed)
        for name in ("lr", "anchor_scale"):
            validation.positive_number(name, getattr(self, name))
        validation.positive_number("focal_gamma", self.focal_gamma, allow_zero=True)
        for name in ("focal_alpha", "nms_iou", "score_threshold", "positive_iou", "negative_iou"):
            value = validation.positive_number(name, getattr(self, name), allow_zero=True)
            if value > 1:
                raise ConfigError(f"{name} must be in [0, 1], got {value!r}")
        if self.negative_iou > self.positive_iou:
            raise ConfigError(f"negative_iou ({self.negative_iou}) must not exceed positive_iou ({self.positive_iou})")
        parse_augment(self.augment)
        if self.image_size % ssdlib.DEFAULT_STRIDES[-1]:
            raise ConfigError(f"image_size must be a multiple of {ssdlib.DEFAULT_STRIDES[-1]} (the coarsest "
                              f"feature map's stride), got {self.image_size}")
        if self.validation_fraction + self.test_fraction >= 1:
            raise ConfigError(f"validation_fraction + test_fraction must be < 1, got {self.validation_fraction} + "
                              f"{self.test_fraction}")
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        return rundir.config_from_json(cls, obj, "detection config")

    @property
    def image_shape(self):
        return (self.image_size, self.image_size, 3)


def build_model(config, num_classes, mixed_precision=None):
    """The run's detector for ``config`` (under ``mixed_precision``, restoring the global policy after)."""
    with precision(mixed_precision):
        return ssdlib.ssd(config.image_shape, num_classes, backbone=config.backbone,
                          backbone_weights=config.backbone_weights, fpn_filters=config.fpn_filters,
                          head_depth=config.head_depth)


def anchors_of(config):
    """The run's pixel anchors ``(N, 4)``."""
    return ssdlib.detector_anchors((config.image_size, config.image_size), anchor_scale=config.anchor_scale)


def load_splits(config):
    """``(train, validation, test)`` :class:`~cs231n_tf.data.coco.DetectionSet` of ``config``."""
    kind, _ = detdata.parse_dataset(config.dataset)
    if kind == "shapes":
        return tuple(detdata.shapes_detection(n, config.image_size, config.data_seed * 3 + i) for i, n in
                     enumerate((config.train_images, config.validation_images, config.test_images)))
    data = detdata.load_dataset(config.dataset, config.image_size)
    return detdata.split(data, config.validation_fraction, config.test_fraction, config.data_seed)


def _to_unit(images):
    return tf.cast(images, tf.float32) / 255.0


def postprocess_of(config, anchors):
    """``fn(outputs) -> Detections``: the run's in-graph post-processing of the model's outputs."""
    size = (config.image_size, config.image_size)

    def fn(outputs):
        return ssdlib.postprocess(outputs["class_logits"], outputs["box_codes"], anchors, size, config.max_detections,
                                  config.nms_iou, config.score_threshold)

    return fn


def detections_list(boxes, classes, scores, num_detections):
    """Padded batch arrays -> ``[{"boxes", "classes", "scores"}]`` per image (what coco_evaluate takes)."""
    return [{"boxes": np.asarray(boxes[i][:n], np.float64), "classes": np.asarray(classes[i][:n]),
             "scores": np.asarray(scores[i][:n], np.float64)} for i, n in enumerate(np.asarray(num_detections))]


def coco_metrics(data, detections, num_classes):
    """COCO's twelve numbers of ``detections`` on ``data`` over every class ``0..K-1``."""
    return coco_evaluate(data.ground_truth(), detections, categories=range(num_classes))


class DetectionTask(Task):
    """Object detection of ``config`` (a :class:`DetectionConfig`) on the engine.

    ``data``: ``(train, validation, test)`` :class:`~cs231n_tf.data.coco.DetectionSet` to use
    instead of loading ``config.dataset``; ``class_names``: the names the data must have (a
    resumed run's).
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
        self.class_names = tuple(self.train.class_names)
        if self._expected_names is not None and self.class_names != self._expected_names:
            raise DataError(f"the data set's classes {list(self.class_names)} are not the run's "
                            f"{list(self._expected_names)}")
        size = self.config.image_size
        for split in (self.train, self.validation, self.test):
            if len(split) and split.images[0].shape != (size, size, 3):
                raise DataError(f"the images of {split.source} are {split.images[0].shape}, not ({size}, {size}, 3)")
        if len(self.train) < self.config.batch_size:
            raise DataError(f"{self.train.source} has {len(self.train)} training image(s), fewer than batch_size "
                            f"{self.config.batch_size}")
        self.anchors = anchors_of(self.config)
        self._train_arrays = detdata.padded(self.train)
        self._prepared = True

    @property
    def num_classes(self):
        return len(self.class_names)

    def steps_per_epoch(self):
        return len(self.train) // self.config.batch_size

    def _targets(self, image, boxes, classes, valid):
        c = self.config
        class_targets, box_targets = ssdlib.assign_targets(boxes, classes, valid, self.anchors, c.positive_iou,
                                                           c.negative_iou)
        return image, class_targets, box_targets

    def train_dataset(self, epoch, skip_batches=0):
        c = self.config
        b = c.batch_size
        n = self.steps_per_epoch() * b
        order = np.random.default_rng([c.seed, epoch]).permutation(len(self.train))[:n]
        # Each example's augmentation seed is fixed by (seed, epoch, position), whatever was skipped.
        seeds = np.stack([np.full(n, c.seed, np.int64), epoch * n + np.arange(n, dtype=np.int64)], axis=1)
        start = skip_batches * b
        images, boxes, classes, valid = (a[order][start:] for a in self._train_arrays)
        ops = self.augmentations

        def view(image, boxes, classes, valid, seed):
            image = _to_unit(image)
            if ops:
                image, boxes, valid = augment_detection(image, boxes, valid, seed, ops)
            return self._targets(image, boxes, classes, valid)

        ds = tf.data.Dataset.from_tensor_slices((images, boxes, classes, valid, seeds[start:]))
        return ds.map(view, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(
            b, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def _eval_data(self, split):
        return {"validation": self.validation, "test": self.test, "train": self.train}.get(split)

    def eval_dataset(self, split):
        data = self._eval_data(split)
        if data is None or not len(data):
            return None
        ds = tf.data.Dataset.from_tensor_slices(detdata.padded(data))
        return ds.map(lambda im, bx, cl, va: self._targets(_to_unit(im), bx, cl, va)).batch(
            self.config.batch_size).prefetch(tf.data.AUTOTUNE)

    # ---- models and steps ---------------------------------------------------------------------

    def build(self, ctx):
        c = self.config
        self.model = build_model(c, self.num_classes, c.mixed_precision)
        self.optimizer = ctx.optimizer(tf.keras.optimizers.Adam(c.lr))
        self.optimizer.build(self.model.trainable_variables)
        self._postprocess = postprocess_of(c, self.anchors)
        self.train_metrics = [tf.keras.metrics.Mean(n) for n in ("loss", "class_loss", "box_loss")]
        self.eval_loss = [tf.keras.metrics.Mean(n) for n in ("loss", "class_loss", "box_loss")]

    def models(self):
        return {"model": self.model}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def metrics(self):
        return self.train_metrics

    def eval_metrics(self):
        return self.eval_loss

    def _losses(self, outputs, class_targets, box_targets):
        c = self.config
        class_loss, box_loss, positives = ssdlib.detection_losses(
            class_targets, box_targets, outputs["class_logits"], outputs["box_codes"], self.anchors, c.box_loss,
            c.focal_alpha, c.focal_gamma)
        # RetinaNet's normaliser: the positive anchors of the whole global batch.
        total = tf.maximum(tf.distribute.get_replica_context().all_reduce("sum", positives), 1.0)
        return class_loss / total, box_loss / total

    def train_step(self, batch, ctx):
        images, class_targets, box_targets = batch
        with tf.GradientTape() as tape:
            outputs = self.model(images, training=True)
            class_loss, box_loss = self._losses(outputs, class_targets, box_targets)
            loss = class_loss + box_loss
        ctx.minimize(tape, loss, self.model.trainable_variables, self.optimizer)
        for metric, value in zip(self.train_metrics, (loss, class_loss, box_loss)):
            metric.update_state(value)
        return {"loss": loss}

    def eval_step(self, batch, ctx):
        images, class_targets, box_targets = batch
        outputs = self.model(images, training=False)
        class_loss, box_loss = self._losses(outputs, class_targets, box_targets)
        for metric, value in zip(self.eval_loss, (class_loss + box_loss, class_loss, box_loss)):
            metric.update_state(value)
        return self._postprocess(outputs)._asdict()

    def evaluate_end(self, outputs, split):
        data = self._eval_data(split)
        detections = detections_list(*(outputs[k] for k in DETECTION_KEYS))
        return coco_metrics(data, detections, self.num_classes)

    # ---- reporting and export -----------------------------------------------------------------

    def run_config(self):
        return {"config": self.config.to_json(), "class_names": list(self.class_names),
                "category_ids": [int(i) for i in self.train.category_ids],
                "data": {"source": self.train.source, "train": len(self.train), "validation": len(self.validation),
                         "test": len(self.test)}}

    def describe(self):
        c = self.config
        return (f"training an {c.model} on {c.backbone} ({c.backbone_weights or 'random'} weights, "
                f"{len(self.anchors)} anchors) on {self.train.source} ({len(self.train)} images, "
                f"{self.num_classes} classes)")

    def summary(self, metrics):
        return {**super().summary(metrics), "num_classes": self.num_classes, "class_names": list(self.class_names)}

    def serving_module(self):
        return DetectionServing(self.model, self.config, self.anchors)


class DetectionServing(tf.Module):
    """The detector with its post-processing in the graph.

    ``serve(images float32 [batch, H, W, 3] in [0, 1])`` -> ``boxes`` (float32 ``[batch, K, 4]``
    pixels ``[ymin, xmin, ymax, xmax]``), ``classes`` (int32 ``[batch, K]``), ``scores``
    (``[batch, K]``) and ``num_detections`` (int32 ``[batch]``), ``K = max_detections``, rows past
    ``num_detections`` zero; batched class-aware NMS (``combined_non_max_suppression``).
    ``serve_single`` takes one image ``[1, H, W, 3]`` and returns the same from TFLite's builtin
    NMS op (:func:`~cs231n_tf.detection.ssd.postprocess_single`): the signature a ``.tflite`` holds.
    """

    def __init__(self, model, config, anchors):
        super().__init__(name="detection_serving")
        self.model = model
        self.anchors = tf.constant(anchors)
        self._config = config
        self._postprocess = postprocess_of(config, self.anchors)
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, *config.image_shape], tf.float32, name="images")])
        self.serve_single = tf.function(self._serve_single, input_signature=[
            tf.TensorSpec([1, *config.image_shape], tf.float32, name="images")])

    def _serve(self, images):
        return self._postprocess(self.model(images, training=False))._asdict()

    def _serve_single(self, images):
        c = self._config
        out = self.model(images, training=False)
        return ssdlib.postprocess_single(out["class_logits"][0], out["box_codes"][0], self.anchors,
                                         (c.image_size, c.image_size), c.max_detections, c.nms_iou,
                                         c.score_threshold)._asdict()


# ---- run directories ------------------------------------------------------------------------------


def load_run_config(run_dir):
    """``(DetectionConfig, class names)`` of a detection run; other runs raise :class:`RunDirError`."""
    return rundir.read_task_config(
        run_dir, NAME, lambda obj: (DetectionConfig.from_json(obj["config"]), tuple(obj["class_names"])))


def load_model(run_dir, checkpoint=None):
    """``(model, config, class names)`` of a run at ``checkpoint`` (default: the latest), in float32."""
    config, names = load_run_config(run_dir)
    checkpoint = rundir.latest_checkpoint(run_dir, checkpoint)
    model = build_model(config, len(names))
    restore_checkpoint(tf.train.Checkpoint(model=model), checkpoint, partial=True)
    return model, config, names


def predict_detections(module, images, batch_size=32):
    """Detections of ``images (N, H, W, 3) uint8`` by a :class:`DetectionServing` (or any ``fn(images) -> dict``)."""
    serve = getattr(module, "serve", module)
    out = {k: [] for k in DETECTION_KEYS}
    for i in range(0, len(images), batch_size):
        result = serve(_to_unit(np.asarray(images[i:i + batch_size])))
        for k in DETECTION_KEYS:
            out[k].append(np.asarray(result[k]))
    return detections_list(*(np.concatenate(out[k]) for k in DETECTION_KEYS))


def evaluation_data(run_dir, config, names, dataset=None, split="test"):
    """The images a run is scored on: its ``split``, or all of ``dataset`` (checked to have the run's classes)."""
    if dataset is None:
        validation.one_of("split", split, ("train", "validation", "test"))
        return dict(zip(("train", "validation", "test"), load_splits(config)))[split]
    data = detdata.load_dataset(dataset, config.image_size, num_images=config.test_images,
                                seed=config.data_seed * 3 + 2)
    if tuple(data.class_names) != tuple(names):
        raise DataError(f"{dataset} has the classes {list(data.class_names)}, not the run's {list(names)}")
    return data


def evaluate_run(run_dir, dataset=None, split="test", checkpoint=None, batch_size=32):
    """Score a run with COCO's metrics: ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", ..., "examples"}``.

    Without ``dataset``, on the run's ``split``; with ``dataset`` (``shapes`` or a held-out
    ``coco:ANN.json:IMAGES`` with the run's categories) on all of it, resized to the run's image size.
    """
    model, config, names = load_model(run_dir, checkpoint)
    data = evaluation_data(run_dir, config, names, dataset, split)
    module = DetectionServing(model, config, anchors_of(config))
    detections = predict_detections(module, data.images, batch_size)
    return {**coco_metrics(data, detections, len(names)), "examples": len(data), "dataset": data.source,
            "split": None if dataset else split, "class_names": list(names), "run_dir": os.path.abspath(run_dir)}


def train(config, run_dir=None, resume=False, data=None, log=print, hooks=(), progress=None):
    """Train a detector on the engine; returns its :class:`~cs231n_tf.engine.EngineResult`.

    The data is loaded and checked before the run directory is touched; ``resume`` continues the
    run in ``run_dir`` (its data must have the run's classes).
    """
    names = None
    if resume:
        if run_dir is None:
            raise ConfigError("resume needs a run directory")
        _, names = load_run_config(run_dir)
    task = DetectionTask(config, data=data, class_names=names)
    task.prepare()
    return Engine(task, run_dir, resume=resume, log=log, hooks=hooks, progress=progress).run()
