"""Classification + localization (lecture 11): one network, class scores and a box, as a task on the engine.

The lecture's recipe: a backbone turns the image into a feature vector; one fully connected head
gives class scores (softmax loss), another the box (a regression loss, L2 or smooth-L1), and the
network trains on the weighted sum ``class loss + box_weight * box loss``. The same head regresses
``P`` keypoints instead of (or beside) the box: human pose as 14 joint positions in the lecture
(Toshev & Szegedy, "DeepPose", CVPR 2014).

- Builders (Keras-applications style): :func:`localization_net` and :func:`keypoint_net` on any
  registry backbone, cut at its last feature map (:func:`cs231n_tf.sequence.captioner.build_encoder`).
  The box is regressed as Fast R-CNN offsets against the whole image (:func:`encode_boxes`:
  :func:`cs231n_tf.detection.boxes.encode` with the image as the anchor), so targets have unit
  scale and decoded boxes always have positive size; keypoints as ``(p - 0.5) / 0.1``.
- Losses: :func:`regression_loss` (``l2`` = ``0.5 * sum d^2``, which ``smooth_l1`` equals for
  ``|d| < 1``, so ``box_weight`` means the same for both near the optimum), :func:`multitask_losses`.
- Metrics: accuracy, mean IoU of the predicted box with the true one, and localization accuracy
  (class right *and* IoU >= 0.5, the lecture's "correct"); with keypoints, their mean distance
  (in image sizes) and PCK (share within ``0.2 x`` the object's longer side).
- Data: ``shapes`` (:func:`cs231n_tf.data.shapes.single_shapes`: one shape per image, its box and
  five keypoints) and ``coco:ANN.json:IMAGE_DIR`` reduced to the largest object per image
  (:func:`largest_objects`).
- :class:`LocalizationTask` (``"localization"``) with exact resume and ``metrics.json``;
  :func:`train`, :func:`evaluate_run`, :func:`predict_files` (the box and class drawn on the image).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.detection.boxes import decode, encode, iou
from cs231n_tf.detection.losses import smooth_l1
from cs231n_tf.engine import rundir
from cs231n_tf.engine.context import precision
from cs231n_tf.engine.loop import Engine, EngineConfig, EngineFlags
from cs231n_tf.engine.state import restore_checkpoint
from cs231n_tf.engine.task import Task
from cs231n_tf.errors import ConfigError, DataError
from cs231n_tf.fileio import atomic_write_bytes, confined_path
from cs231n_tf.train.config import _flag

NAME = "localization"
STRATEGIES = ("default", "one_device", "mirrored")
BOX_LOSSES = ("l2", "smooth_l1")
IOU_THRESHOLD = 0.5
PCK_ALPHA = 0.2
# The anchor of the box regression: the whole image, in normalised [ymin, xmin, ymax, xmax].
IMAGE_BOX = (0.0, 0.0, 1.0, 1.0)
KEYPOINT_SCALE = 0.1
_DATA, _MODEL, _PERF = "model and data", "model", "performance and devices"


# ---- box and keypoint codes, losses -------------------------------------------------------------


def encode_boxes(boxes):
    """Normalised boxes ``(..., 4)`` -> the regression targets ``[ty, tx, th, tw]`` against the whole image."""
    return encode(boxes, tf.constant(IMAGE_BOX, tf.float32))


def decode_boxes(codes):
    """Regression outputs ``(..., 4)`` -> normalised ``[ymin, xmin, ymax, xmax]`` (inverse of :func:`encode_boxes`)."""
    return decode(codes, tf.constant(IMAGE_BOX, tf.float32))


def encode_keypoints(points):
    """Normalised ``(y, x)`` keypoints -> targets of unit scale, ``(p - 0.5) / 0.1``."""
    return (tf.cast(points, tf.float32) - 0.5) / KEYPOINT_SCALE


def decode_keypoints(codes):
    return tf.cast(codes, tf.float32) * KEYPOINT_SCALE + 0.5


def regression_loss(targets, predictions, kind="smooth_l1"):
    """Per-vector regression loss summed over the last axis: shape ``(...)``.

    ``l2``: ``0.5 * sum(d^2)``; ``smooth_l1`` (Girshick, "Fast R-CNN", 2015; the detector's
    :func:`cs231n_tf.detection.losses.smooth_l1`): ``0.5 d^2`` where ``|d| < 1`` and ``|d| - 0.5``
    elsewhere, summed. Smooth-L1 grows linearly for outliers, so one badly wrong box does not
    dominate the gradient.
    """
    validation.one_of("box_loss", kind, BOX_LOSSES)
    predictions = tf.cast(predictions, tf.float32)
    targets = tf.cast(targets, tf.float32)
    if kind == "l2":
        return 0.5 * tf.reduce_sum(tf.square(predictions - targets), axis=-1)
    return smooth_l1(targets, predictions)


def multitask_losses(outputs, batch, box_loss="smooth_l1", box_weight=1.0, keypoint_weight=1.0):
    """Per-example losses ``{"class", "box", ["keypoints"], "total"}`` of a network's ``outputs`` on ``batch``.

    ``total = class + box_weight * box (+ keypoint_weight * keypoints)``: softmax cross-entropy of
    ``class_logits``; :func:`regression_loss` of the ``box`` codes; the keypoints' loss is the mean
    over keypoints of :func:`regression_loss` of each ``(y, x)`` code.
    """
    losses = {"class": tf.keras.losses.sparse_categorical_crossentropy(
        batch["classes"], tf.cast(outputs["class_logits"], tf.float32), from_logits=True)}
    losses["box"] = regression_loss(encode_boxes(batch["boxes"]), outputs["box"], box_loss)
    total = losses["class"] + box_weight * losses["box"]
    if "keypoints" in outputs:
        losses["keypoints"] = tf.reduce_mean(
            regression_loss(encode_keypoints(batch["keypoints"]), outputs["keypoints"], box_loss), axis=-1)
        total += keypoint_weight * losses["keypoints"]
    losses["total"] = total
    return losses


def localization_scores(outputs, batch):
    """Per-example ``{"accuracy", "iou", "localized"[, "keypoint_error", "pck"]}`` (float32 ``(N,)``).

    ``localized``: the class is right and the decoded box has IoU >= 0.5 with the true box.
    ``keypoint_error``: mean distance of the keypoints in image sizes; ``pck``: share of keypoints
    within ``0.2 x`` the true box's longer side.
    """
    right = tf.equal(tf.argmax(outputs["class_logits"], -1, output_type=tf.int32), tf.cast(batch["classes"], tf.int32))
    overlap = iou(decode_boxes(outputs["box"]), tf.cast(batch["boxes"], tf.float32), pairwise=False)
    scores = {"accuracy": tf.cast(right, tf.float32), "iou": overlap,
              "localized": tf.cast(right & (overlap >= IOU_THRESHOLD), tf.float32)}
    if "keypoints" in outputs:
        distance = tf.norm(decode_keypoints(outputs["keypoints"]) - tf.cast(batch["keypoints"], tf.float32), axis=-1)
        boxes = tf.cast(batch["boxes"], tf.float32)
        side = tf.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        scores["keypoint_error"] = tf.reduce_mean(distance, -1)
        scores["pck"] = tf.reduce_mean(tf.cast(distance <= PCK_ALPHA * side[:, None], tf.float32), -1)
    return scores


# ---- builders -----------------------------------------------------------------------------------


def _multitask_net(input_shape, num_classes, num_keypoints, box, backbone, weights, head_channels, hidden, name):
    from cs231n_tf.sequence.captioner import build_encoder

    input_shape = tuple(input_shape)
    head_channels = validation.positive_int("head_channels", head_channels)
    hidden = validation.positive_int("hidden", hidden)
    layers = tf.keras.layers
    encoder, stats = build_encoder(backbone, input_shape, weights)
    images = tf.keras.Input(input_shape, name="images")
    x = images
    if stats is not None:  # pretrained weights see the normalisation they were trained with
        x = layers.Normalization(mean=stats[0], variance=[s * s for s in stats[1]], name="normalize")(x)
    x = encoder(x)
    # Fully connected on the flattened map, as the lecture's AlexNet: where the object is stays in
    # the vector (global pooling would average it away). A 1x1 convolution keeps the layer small.
    x = layers.Conv2D(head_channels, 1, activation="relu", name="head_reduce")(x)
    x = layers.Flatten(name="head_flatten")(x)
    x = layers.Dense(hidden, activation="relu", name="head_fc")(x)
    outputs = {}
    if num_classes:
        outputs["class_logits"] = layers.Dense(num_classes, dtype="float32", name="class_logits")(x)
    if box:
        outputs["box"] = layers.Dense(4, dtype="float32", name="box")(x)
    if num_keypoints:
        codes = layers.Dense(2 * num_keypoints, dtype="float32", name="keypoint_codes")(x)
        outputs["keypoints"] = layers.Reshape((num_keypoints, 2), dtype="float32", name="keypoints")(codes)
    return tf.keras.Model(images, outputs, name=name)


def localization_net(input_shape, num_classes, *, backbone="small_convnet", weights=None, num_keypoints=0,
                     head_channels=32, hidden=128):
    """Classification + localization network (CS231n lecture 11; Sermanet et al., "OverFeat", 2014).

    ``backbone``: any registry model, cut at its last feature map (``weights``: its pretrained
    weights, e.g. ``efficientnet_lite0`` with ``"imagenet"``; the model then normalises its
    unit-scale input with the weights' statistics). Head: a 1x1 convolution to ``head_channels``,
    flatten, a ReLU layer of ``hidden`` units, then ``class_logits (N, num_classes)``, ``box (N, 4)``
    (codes; :func:`decode_boxes`) and, when ``num_keypoints``, ``keypoints (N, P, 2)`` (codes;
    :func:`decode_keypoints`). Input: unit-scale images. Outputs are a dict, in float32.
    """
    num_classes = validation.int_in("num_classes", num_classes, 2)
    num_keypoints = validation.non_negative_int("num_keypoints", num_keypoints)
    return _multitask_net(input_shape, num_classes, num_keypoints, True, backbone, weights, head_channels, hidden,
                          f"{backbone}_localization")


def keypoint_net(input_shape, num_keypoints, *, backbone="small_convnet", weights=None, head_channels=32,
                 hidden=128):
    """Keypoint regression (lecture 11's pose example; Toshev & Szegedy, "DeepPose", CVPR 2014): the head of
    :func:`localization_net` with only ``keypoints (N, P, 2)`` (codes; :func:`decode_keypoints`)."""
    num_keypoints = validation.positive_int("num_keypoints", num_keypoints)
    return _multitask_net(input_shape, 0, num_keypoints, False, backbone, weights, head_channels, hidden,
                          f"{backbone}_keypoints")


# ---- data ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class LocalizationData:
    """One object per image: ``images (N, H, W, 3) uint8``, ``boxes (N, 4) float32`` normalised
    ``[ymin, xmin, ymax, xmax]``, ``classes (N,) int32``, ``keypoints (N, P, 2) float32`` normalised
    ``(y, x)`` or ``None``."""

    images: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    keypoints: np.ndarray
    class_names: tuple
    keypoint_names: tuple
    source: str

    def __len__(self):
        return len(self.images)

    @property
    def num_classes(self):
        return len(self.class_names)

    def subset(self, index):
        return LocalizationData(self.images[index], self.boxes[index], self.classes[index],
                                None if self.keypoints is None else self.keypoints[index], self.class_names,
                                self.keypoint_names, self.source)

    def arrays(self, index=slice(None)):
        """``{"images" (uint8), "classes", "boxes"[, "keypoints"]}`` of ``index``."""
        out = {"images": self.images[index], "classes": self.classes[index], "boxes": self.boxes[index]}
        if self.keypoints is not None:
            out["keypoints"] = self.keypoints[index]
        return out

    def batch(self, index=slice(None)):
        """:meth:`arrays` with unit-scale float32 images: what the network and the losses take."""
        out = self.arrays(index)
        return {**out, "images": out["images"].astype(np.float32) / 255.0}


def parse_dataset(spec):
    """``("shapes", None)`` or ``("coco", (ANN.json, IMAGE_DIR))`` for a ``dataset`` spec."""
    from cs231n_tf.data.coco import DETECTION_PREFIX, parse_coco_detection_spec

    if spec == "shapes":
        return "shapes", None
    if isinstance(spec, str) and spec.startswith(DETECTION_PREFIX):
        return "coco", parse_coco_detection_spec(spec)
    raise ConfigError(f"dataset must be 'shapes' (embedded) or 'coco:ANN.json:IMAGE_DIR', got {spec!r}")


def synthetic_data(num_images, image_size=64, seed=0):
    """The embedded set (:func:`cs231n_tf.data.shapes.single_shapes`) with its five keypoints."""
    from cs231n_tf.data.shapes import single_shapes

    data = single_shapes(num_images, image_size=image_size, seed=seed)
    return LocalizationData(data.images, data.boxes / image_size, data.classes, data.keypoints / image_size,
                            tuple(data.class_names), tuple(data.keypoint_names), "shapes")


def largest_objects(detection):
    """A :class:`~cs231n_tf.data.coco.DetectionSet` reduced to its largest object per image.

    The largest object is the one with the largest box (the first on ties); crowd annotations are
    not single objects and never chosen; images left without an object are dropped. All images
    must have one size (load them with ``image_size``).
    """
    keep, boxes, classes = [], [], []
    for i in range(len(detection)):
        candidates = np.flatnonzero(~detection.iscrowd[i])
        if not len(candidates):
            continue
        b = detection.boxes[i][candidates]
        k = candidates[int(np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))]
        height, width = detection.images[i].shape[:2]
        keep.append(i)
        boxes.append(detection.boxes[i][k] / np.array([height, width, height, width], np.float32))
        classes.append(detection.classes[i][k])
    if not keep:
        raise DataError(f"{detection.source} has no image with a (non-crowd) object")
    shapes = {detection.images[i].shape for i in keep}
    if len(shapes) > 1:
        raise DataError(f"{detection.source}: the images differ in size ({sorted(shapes)[:2]}...); resize them")
    return LocalizationData(np.stack([detection.images[i] for i in keep]), np.stack(boxes).astype(np.float32),
                            np.asarray(classes, np.int32), None, detection.class_names, (), detection.source)


def load_dataset(spec, image_size=64, num_images=256, seed=0):
    """All of data set ``spec``: ``shapes`` (``num_images`` images of ``seed``) or a COCO file reduced
    to its largest objects, resized to ``image_size``."""
    from cs231n_tf.data.coco import load_coco_detection

    kind, paths = parse_dataset(spec)
    if kind == "shapes":
        return synthetic_data(num_images, image_size, seed)
    return largest_objects(load_coco_detection(*paths, image_size=image_size, skip_crowd=True))


# ---- the task -----------------------------------------------------------------------------------


@dataclasses.dataclass
class LocalizationConfig(EngineFlags):
    """Everything that determines a classification + localization run (saved in ``config.json``)."""

    epochs: int = _flag(10, "passes over the training images", kind="positive_int")
    batch_size: int = _flag(32, "global batch size, split over replicas", kind="positive_int", group=_DATA)
    seed: int = _flag(0, "random seed of the weights and the batch order", kind="non_negative_int")
    strategy: str = _flag("default", "tf.distribute strategy", choices=STRATEGIES, group=_PERF)
    dataset: str = _flag("shapes", "shapes (embedded: one shape per image) or coco:ANN.json:IMAGE_DIR (reduced to "
                         "the largest object per image)", group=_DATA, metavar="SPEC")
    image_size: int = _flag(32, "images are generated (shapes) or resized (coco) to this square size",
                            kind="positive_int", group=_DATA)
    train_images: int = _flag(2048, "shapes: training images", kind="positive_int", group=_DATA)
    validation_images: int = _flag(128, "shapes: validation images", kind="positive_int", group=_DATA)
    test_images: int = _flag(256, "shapes: test images", kind="positive_int", group=_DATA)
    validation_fraction: float = _flag(0.1, "coco: share of the images held out for validation",
                                       kind="non_negative_float", group=_DATA)
    test_fraction: float = _flag(0.1, "coco: share of the images held out for testing", kind="non_negative_float",
                                 group=_DATA)
    data_seed: int = _flag(0, "seed of the shapes images / of the coco split", kind="non_negative_int", group=_DATA)
    keypoints: bool = _flag(False, "also regress the shapes' five keypoints (centre, top, right, bottom, left)",
                            kind="bool", group=_MODEL)
    backbone: str = _flag("small_convnet", "registry model cut at its last feature map", group=_MODEL,
                          metavar="MODEL")
    backbone_weights: str = _flag(None, "the backbone's pretrained weights", choices=(None, "imagenet"),
                                  group=_MODEL)
    head_channels: int = _flag(32, "channels of the head's 1x1 convolution", kind="positive_int", group=_MODEL)
    hidden: int = _flag(128, "units of the head's fully connected layer", kind="positive_int", group=_MODEL)
    box_loss: str = _flag("smooth_l1", "regression loss of the box (and keypoints)", choices=BOX_LOSSES,
                          group=_MODEL)
    box_weight: float = _flag(1.0, "weight of the box loss in class loss + box_weight * box loss",
                              kind="non_negative_float", group=_MODEL)
    keypoint_weight: float = _flag(1.0, "weight of the keypoint loss", kind="non_negative_float", group=_MODEL)
    lr: float = _flag(2e-3, "Adam learning rate", kind="positive_float")

    def validate(self):
        EngineConfig.validate(self)
        kind, _ = parse_dataset(self.dataset)
        validation.one_of("strategy", self.strategy, STRATEGIES)
        validation.one_of("box_loss", self.box_loss, BOX_LOSSES)
        validation.one_of("backbone_weights", self.backbone_weights, (None, "imagenet"))
        for name in ("image_size", "train_images", "validation_images", "test_images", "head_channels", "hidden"):
            validation.positive_int(name, getattr(self, name))
        validation.int_in("image_size", self.image_size, 8)
        validation.non_negative_int("data_seed", self.data_seed)
        validation.positive_number("box_weight", self.box_weight, allow_zero=True)
        validation.positive_number("keypoint_weight", self.keypoint_weight, allow_zero=True)
        validation.positive_number("lr", self.lr)
        from cs231n_tf.models import registry

        if self.backbone_weights:
            registry.pretrained_spec(self.backbone, self.backbone_weights)
        else:
            registry.get_spec(self.backbone)
        if self.keypoints and kind != "shapes":
            raise ConfigError("keypoints need the shapes data set: COCO detection files have no keypoints")
        if self.validation_fraction + self.test_fraction >= 1:
            raise ConfigError(f"validation_fraction + test_fraction must be < 1, got {self.validation_fraction} + "
                              f"{self.test_fraction}")
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        return rundir.config_from_json(cls, obj, "localization config")


def load_splits(config):
    """``(train, validation, test)`` :class:`LocalizationData` of ``config``."""
    from cs231n_tf.segmentation.data import split_data

    kind, _ = parse_dataset(config.dataset)
    if kind == "shapes":
        data = tuple(synthetic_data(n, config.image_size, config.data_seed * 3 + i) for i, n in
                     enumerate((config.train_images, config.validation_images, config.test_images)))
    else:
        whole = load_dataset(config.dataset, config.image_size)
        data = split_data(whole, config.validation_fraction, config.test_fraction, config.data_seed)
    if not config.keypoints:
        data = tuple(dataclasses.replace(d, keypoints=None, keypoint_names=()) for d in data)
    return data


def build_model(config, num_classes, num_keypoints, mixed_precision=None):
    """The run's network for ``config`` (under ``mixed_precision``, restoring the global policy after)."""
    with precision(mixed_precision):
        return localization_net((config.image_size, config.image_size, 3), num_classes, backbone=config.backbone,
                                weights=config.backbone_weights, num_keypoints=num_keypoints,
                                head_channels=config.head_channels, hidden=config.hidden)


def _to_unit(example):
    return {**example, "images": tf.cast(example["images"], tf.float32) / 255.0}


def dataset_of(data, batch_size, index=slice(None), drop_remainder=False):
    """Batches of ``data[index]`` as :meth:`LocalizationData.batch` dicts (images stay uint8 until mapped)."""
    return tf.data.Dataset.from_tensor_slices(data.arrays(index)).map(
        _to_unit, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(
        batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


METRICS = ("class_loss", "box_loss", "accuracy", "mean_iou", "localization_accuracy")
KEYPOINT_METRICS = ("keypoint_loss", "keypoint_error", "pck")
# metric name -> the per-example value it averages
_SOURCES = {"loss": ("loss", "total"), "class_loss": ("loss", "class"), "box_loss": ("loss", "box"),
            "keypoint_loss": ("loss", "keypoints"),
            "accuracy": ("score", "accuracy"), "mean_iou": ("score", "iou"),
            "localization_accuracy": ("score", "localized"), "keypoint_error": ("score", "keypoint_error"),
            "pck": ("score", "pck")}


class LocalizationTask(Task):
    """Classification + localization of ``config`` (a :class:`LocalizationConfig`) on the engine.

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

    def prepare(self):
        if self._prepared:
            return
        self.train, self.validation, self.test = self._given or load_splits(self.config)
        self.class_names = tuple(self.train.class_names)
        if self._expected_names is not None and self.class_names != self._expected_names:
            raise DataError(f"the data set's classes {list(self.class_names)} are not the run's "
                            f"{list(self._expected_names)}")
        size = self.config.image_size
        if self.train.images.shape[1:] != (size, size, 3):
            raise DataError(f"the training images are {self.train.images.shape[1:]}, not ({size}, {size}, 3)")
        if self.config.keypoints and self.train.keypoints is None:
            raise DataError(f"{self.train.source} has no keypoints")
        self.keypoint_names = tuple(self.train.keypoint_names) if self.config.keypoints else ()
        self._prepared = True

    def steps_per_epoch(self):
        return len(self.train) // self.config.batch_size

    def train_dataset(self, epoch, skip_batches=0):
        b = self.config.batch_size
        n = self.steps_per_epoch() * b
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.train))[:n]
        return dataset_of(self.train, b, order[skip_batches * b:], drop_remainder=True)

    def eval_dataset(self, split):
        data = {"validation": self.validation, "test": self.test, "train": self.train}.get(split)
        if data is None or not len(data):
            return None
        return dataset_of(data, self.config.batch_size)

    def _metric_names(self):
        return METRICS + (KEYPOINT_METRICS if self.config.keypoints else ())

    def build(self, ctx):
        c = self.config
        self.model = build_model(c, len(self.class_names), len(self.keypoint_names), c.mixed_precision)
        self.optimizer = ctx.optimizer(tf.keras.optimizers.Adam(c.lr))
        self.optimizer.build(self.model.trainable_variables)
        names = ("loss",) + self._metric_names()
        self._train = {n: tf.keras.metrics.Mean(n) for n in names}
        self._eval = {n: tf.keras.metrics.Mean(n) for n in names}

    def models(self):
        return {"model": self.model}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def metrics(self):
        return list(self._train.values())

    def eval_metrics(self):
        return list(self._eval.values())

    def _losses(self, outputs, batch):
        c = self.config
        return multitask_losses(outputs, batch, c.box_loss, c.box_weight, c.keypoint_weight)

    def _update(self, metrics, outputs, batch, losses):
        values = {"loss": losses, "score": localization_scores(outputs, batch)}
        for name in ("loss",) + self._metric_names():
            group, key = _SOURCES[name]
            metrics[name].update_state(values[group][key])

    def train_step(self, batch, ctx):
        with tf.GradientTape() as tape:
            outputs = self.model(batch["images"], training=True)
            losses = self._losses(outputs, batch)
            loss = ctx.mean(losses["total"])
        ctx.minimize(tape, loss, self.model.trainable_variables, self.optimizer)
        self._update(self._train, outputs, batch, losses)
        return {"loss": loss}

    def eval_step(self, batch, ctx):
        outputs = self.model(batch["images"], training=False)
        self._update(self._eval, outputs, batch, self._losses(outputs, batch))
        return {}

    def run_config(self):
        return {"config": self.config.to_json(), "class_names": list(self.class_names),
                "keypoint_names": list(self.keypoint_names),
                "data": {"source": self.train.source, "train": len(self.train), "validation": len(self.validation),
                         "test": len(self.test)}}

    def describe(self):
        c = self.config
        what = " and keypoints" if c.keypoints else ""
        return (f"training {c.backbone} classification + localization{what} ({c.box_loss} box loss x "
                f"{c.box_weight:g}) on {self.train.source} ({len(self.train)} images, {len(self.class_names)} classes)")

    def summary(self, metrics):
        return {**super().summary(metrics), "num_classes": len(self.class_names),
                "class_names": list(self.class_names)}

    def serving_module(self):
        return LocalizationServing(self.model, (self.config.image_size, self.config.image_size, 3))


class LocalizationServing(tf.Module):
    """``serve(images float32 [batch, H, W, 3] in [0, 1])`` -> ``classes`` int32, ``scores`` (the class's
    softmax probability), ``boxes`` normalised ``[ymin, xmin, ymax, xmax]``, ``class_logits``, and
    ``keypoints`` normalised ``(y, x)`` when the network has them."""

    def __init__(self, model, image_shape):
        super().__init__(name="localization_serving")
        self.model = model
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, *image_shape], tf.float32, name="images")])

    def _serve(self, images):
        outputs = self.model(images, training=False)
        probabilities = tf.nn.softmax(outputs["class_logits"])
        result = {"class_logits": outputs["class_logits"],
                  "classes": tf.argmax(probabilities, -1, output_type=tf.int32),
                  "scores": tf.reduce_max(probabilities, -1),
                  "boxes": tf.clip_by_value(decode_boxes(outputs["box"]), 0.0, 1.0)}
        if "keypoints" in outputs:
            result["keypoints"] = decode_keypoints(outputs["keypoints"])
        return result


# ---- run directories ------------------------------------------------------------------------------


def load_run_config(run_dir):
    """``(LocalizationConfig, class names, keypoint names)`` of a localization run."""
    return rundir.read_task_config(
        run_dir, NAME, lambda obj: (LocalizationConfig.from_json(obj["config"]), tuple(obj["class_names"]),
                                    tuple(obj["keypoint_names"])))


def load_model(run_dir, checkpoint=None):
    """``(model, config, class names, keypoint names)`` of a run at ``checkpoint`` (default: the latest)."""
    config, names, keypoint_names = load_run_config(run_dir)
    checkpoint = rundir.latest_checkpoint(run_dir, checkpoint)
    model = build_model(config, len(names), len(keypoint_names))
    restore_checkpoint(tf.train.Checkpoint(model=model), checkpoint, partial=True)
    return model, config, names, keypoint_names


def evaluate_run(run_dir, dataset=None, split="test", checkpoint=None, batch_size=64):
    """Score a run: ``{"accuracy", "mean_iou", "localization_accuracy", "loss", ..., "examples"}``.

    Without ``dataset``, on the run's ``split``; with ``dataset`` (``shapes`` or a held-out
    ``coco:ANN.json:IMAGE_DIR``) on all of it, resized to the run's image size. The data set must
    have the run's classes.
    """
    model, config, names, keypoint_names = load_model(run_dir, checkpoint)
    if dataset is None:
        validation.one_of("split", split, ("train", "validation", "test"))
        data = dict(zip(("train", "validation", "test"), load_splits(config)))[split]
    else:
        data = load_dataset(dataset, config.image_size, config.test_images, config.data_seed * 3 + 2)
        if not keypoint_names:
            data = dataclasses.replace(data, keypoints=None, keypoint_names=())
    if tuple(data.class_names) != names:
        raise DataError(f"the data set's classes {list(data.class_names)} are not the run's {list(names)}")
    if keypoint_names and data.keypoints is None:
        raise DataError(f"the run regresses keypoints; {data.source} has none")
    scored = ("loss",) + METRICS + (KEYPOINT_METRICS if keypoint_names else ())

    @tf.function
    def sums(batch):
        outputs = model(batch["images"], training=False)
        values = {"loss": multitask_losses(outputs, batch, config.box_loss, config.box_weight,
                                           config.keypoint_weight),
                  "score": localization_scores(outputs, batch)}
        return {name: tf.reduce_sum(values[_SOURCES[name][0]][_SOURCES[name][1]]) for name in scored}

    totals = dict.fromkeys(scored, 0.0)
    for batch in dataset_of(data, batch_size):
        for name, value in sums(batch).items():
            totals[name] += float(value.numpy())
    return {**{k: v / len(data) for k, v in totals.items()}, "examples": len(data), "dataset": data.source,
            "split": None if dataset else split, "run_dir": os.path.abspath(run_dir)}


def predict(model, images, batch_size=64):
    """``{"classes", "scores", "boxes", ...}`` NumPy arrays of unit-scale ``images (N, H, W, 3)``."""
    serving = LocalizationServing(model, images.shape[1:])
    parts = [serving.serve(tf.constant(images[i:i + batch_size], tf.float32)) for i in range(0, len(images),
                                                                                             batch_size)]
    return {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}


def draw_prediction(image, box, label=None, colour=(255, 40, 40)):
    """``image (H, W, 3) uint8`` with ``box`` (normalised ``[ymin, xmin, ymax, xmax]``) drawn as a
    rectangle and ``label`` (if any) written above it (below its top edge when there is no room above)."""
    from PIL import Image, ImageDraw

    height, width = image.shape[:2]
    picture = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(picture)
    y0, x0, y1, x1 = (float(v) for v in np.clip(box, 0, 1) * [height, width, height, width])
    line = max(1, round(min(height, width) / 100))
    draw.rectangle([x0, y0, max(x1 - 1, x0), max(y1 - 1, y0)], outline=colour, width=line)
    if label is None:
        return np.asarray(picture)
    left, top, right, bottom = draw.textbbox((0, 0), label)
    text_y = y0 - (bottom - top) - 2 if y0 >= bottom - top + 2 else y0 + line
    draw.rectangle([x0, text_y, x0 + right - left + 2, text_y + bottom - top + 2], fill=colour)
    draw.text((x0 + 1 - left, text_y + 1 - top), label, fill=(255, 255, 255))
    return np.asarray(picture)


def predict_files(run_dir, paths, out_dir, checkpoint=None):
    """Classify and localize the object in each image file with a run; writes ``out_dir/<stem>.png``
    (the image at its own size with the predicted box and ``class score`` drawn on it). Returns
    ``[{"image", "output", "class", "score", "box"}]`` (``box`` normalised ``[ymin, xmin, ymax, xmax]``)."""
    from cs231n_tf.data.sources import read_image

    if not paths:
        raise ConfigError("predict needs at least one image path")
    images = [read_image(p, channels=3) for p in paths]  # every file is checked before any work
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"the images must have distinct file stems (outputs are named by them), got {stems}")
    model, config, names, _ = load_model(run_dir, checkpoint)
    size = config.image_size
    net_in = np.stack([tf.image.resize(im.astype(np.float32) / 255.0, (size, size)).numpy() for im in images])
    found = predict(model, net_in)
    results = []
    for i, (path, stem, image) in enumerate(zip(paths, stems, images)):
        name, score, box = names[found["classes"][i]], float(found["scores"][i]), found["boxes"][i]
        drawn = draw_prediction(image, box, f"{name} {score:.2f}")
        target = confined_path(out_dir, f"{stem}.png")
        atomic_write_bytes(target, tf.io.encode_png(drawn).numpy())
        results.append({"image": os.path.abspath(path), "output": target, "class": name, "score": score,
                        "box": [float(v) for v in box]})
    return results


def train(config, run_dir=None, resume=False, data=None, log=print, hooks=(), progress=None):
    """Train classification + localization on the engine; returns its :class:`~cs231n_tf.engine.EngineResult`.

    The data is loaded and checked before the run directory is touched; ``resume`` continues the
    run in ``run_dir`` (its data must have the run's classes).
    """
    names = None
    if resume:
        if run_dir is None:
            raise ConfigError("resume needs a run directory")
        _, names, _ = load_run_config(run_dir)
    task = LocalizationTask(config, data=data, class_names=names)
    task.prepare()
    return Engine(task, run_dir, resume=resume, log=log, hooks=hooks, progress=progress).run()
