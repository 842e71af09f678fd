"""A single-shot detector (lecture 11): registry backbone + small FPN + RetinaNet heads, focal loss.

Lin et al., "Focal Loss for Dense Object Detection" (RetinaNet, ICCV 2017) on Lin et al.'s
"Feature Pyramid Networks" (CVPR 2017), in the SSD lineage (Liu et al., "SSD", ECCV 2016):

- :func:`backbone_levels`: any convolutional registry model cut at the feature maps of the given
  strides (the last layer of each resolution), e.g. ``resnet18`` or the pretrained
  ``efficientnet_lite0`` (its ImageNet normalisation inside, so the detector takes unit-scale images);
- :func:`ssd`: the detector. FPN: a 1x1 lateral convolution per level, a top-down pathway
  (nearest upsampling + add) and a 3x3 output convolution; two heads shared by all levels (a
  class head of ``A * K`` sigmoid logits whose bias starts at the prior ``pi = 0.01``, and a box
  head of ``A * 4`` offsets). Outputs ``{"class_logits": (B, N, K), "box_codes": (B, N, 4)}`` in
  the anchor order of :mod:`cs231n_tf.detection.anchors`;
- :func:`detector_anchors`, :func:`assign_targets` (matching + encoding), :func:`detection_losses`
  (focal loss over non-ignored anchors, smooth-L1 or GIoU over positives);
- :func:`postprocess`: decode + clip + class-aware NMS + top-k for a batch on
  ``combined_non_max_suppression`` (SavedModels); :func:`postprocess_single`: the same for one
  image from TFLite's builtin NMS op (one ``non_max_suppression_padded`` per class, then top-k).
"""

import math

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.detection.anchors import (DEFAULT_ASPECT_RATIOS, DEFAULT_SCALES, NEGATIVE, POSITIVE,
                                         anchors_per_location, generate_anchors, match)
from cs231n_tf.detection.boxes import DEFAULT_VARIANCES, clip_boxes, decode, encode
from cs231n_tf.detection.losses import giou_loss, sigmoid_focal_loss, smooth_l1
from cs231n_tf.detection.nms import Detections, batched_nms
from cs231n_tf.errors import ConfigError, ShapeError

DEFAULT_BACKBONE = "resnet18"
DEFAULT_STRIDES = (8, 16, 32)
BOX_LOSSES = ("smooth_l1", "giou")
# Class targets of anchors: a class index for positives, these for the rest.
BACKGROUND, IGNORE = -1, -2


def backbone_levels(backbone, input_shape, strides=DEFAULT_STRIDES, weights=None):
    """A Keras model ``images (B, H, W, 3) in [0, 1] -> [feature map at each stride]``, named ``backbone``.

    ``backbone``: any convolutional registry model; each level is the last layer whose output is
    ``ceil(H / s) x ceil(W / s)`` (padding layers excepted). ``weights``: pretrained weights the
    registry offers (``"imagenet"`` for ``efficientnet_lite0``); a model with ``input_stats``
    normalises its input inside, so every backbone takes unit-scale images.
    """
    from cs231n_tf.models.registry import build, get_spec, pretrained_spec

    spec = pretrained_spec(backbone, weights) if weights else get_spec(backbone)
    net = build(backbone, tuple(input_shape), spec.canonical_num_classes, **({"weights": weights} if weights else {}))
    height, width = input_shape[:2]
    taps, found = [], {}
    for layer in net.layers:
        out = layer.output
        if isinstance(out, (list, tuple)) or out.shape.rank != 4 or isinstance(
                layer, (tf.keras.layers.ZeroPadding2D, tf.keras.layers.InputLayer)):
            continue
        found[(out.shape[1], out.shape[2])] = layer.name
    for s in strides:
        name = found.get((math.ceil(height / s), math.ceil(width / s)))
        if name is None:
            have = sorted({height // h for h, _ in found if h}, key=int)
            raise ConfigError(f"backbone {backbone!r} has no feature map at stride {s} for a {height}x{width} input "
                              f"(its strides: {have})")
        taps.append(net.get_layer(name).output)
    images = tf.keras.Input(tuple(input_shape), name="images")
    x = images
    if spec.input_stats is not None:
        mean, std = spec.input_stats
        x = tf.keras.layers.Normalization(mean=mean, variance=[s * s for s in std], name="normalize")(x)
    features = tf.keras.Model(net.input, taps, name=f"{backbone}_levels")(x)
    return tf.keras.Model(images, features, name="backbone")


def _check_geometry(input_shape, strides):
    if len(tuple(input_shape)) != 3 or input_shape[-1] != 3:
        raise ShapeError(f"input_shape must be (H, W, 3), got {input_shape!r}")
    strides = tuple(validation.positive_int("strides", s) for s in strides)
    if not strides or any(b % a or b <= a for a, b in zip(strides, strides[1:])):
        raise ConfigError(f"strides must increase, each a multiple of the previous, got {strides!r}")
    if any(d % strides[-1] for d in input_shape[:2]):
        raise ConfigError(f"the image size {input_shape[0]}x{input_shape[1]} must be divisible by the largest stride "
                          f"{strides[-1]}")
    return strides


def ssd(input_shape, num_classes, backbone=DEFAULT_BACKBONE, backbone_weights=None, strides=DEFAULT_STRIDES,
        anchors_per_cell=anchors_per_location(), fpn_filters=64, head_depth=2, prior_probability=0.01):
    """The single-shot detector (module docstring): unit-scale images -> ``class_logits``, ``box_codes``.

    ``anchors_per_cell`` is ``A = len(scales) * len(aspect_ratios)`` of the anchors it is trained
    with; ``fpn_filters`` the width of the pyramid and the heads; ``head_depth`` 3x3 ReLU
    convolutions in each head before its output convolution (RetinaNet: 4 of 256 channels).
    Layer names: ``backbone``, ``fpn_lateral{l}``, ``fpn_output{l}``, ``class_conv{i}``,
    ``class_logits``, ``box_conv{i}``, ``box_codes``.
    """
    strides = _check_geometry(input_shape, strides)
    num_classes = validation.positive_int("num_classes", num_classes)
    layers = tf.keras.layers
    images = tf.keras.Input(tuple(input_shape), name="images")
    levels = backbone_levels(backbone, input_shape, strides, backbone_weights)(images)
    laterals = [layers.Conv2D(fpn_filters, 1, name=f"fpn_lateral{l}")(c) for l, c in enumerate(levels)]
    top_down = [laterals[-1]]
    for l in range(len(levels) - 2, -1, -1):  # coarse to fine: upsample and add the lateral
        up = layers.UpSampling2D(strides[l + 1] // strides[l], interpolation="nearest")(top_down[0])
        top_down.insert(0, layers.Add()([up, laterals[l]]))
    pyramid = [layers.Conv2D(fpn_filters, 3, padding="same", name=f"fpn_output{l}")(p) for l, p in enumerate(top_down)]
    # Lin et al.'s prior: every anchor starts at p = pi for every class, so the first steps are not
    # swamped by the loss of the ~100k background anchors.
    bias = -math.log((1 - prior_probability) / prior_probability)
    outputs = {}
    for name, width, init in (("class_logits", num_classes, bias), ("box_codes", 4, 0.0)):
        convs = [layers.Conv2D(fpn_filters, 3, padding="same", activation="relu",
                               kernel_initializer=tf.keras.initializers.RandomNormal(stddev=0.01),
                               name=f"{name.split('_')[0]}_conv{i}") for i in range(head_depth)]
        final = layers.Conv2D(anchors_per_cell * width, 3, padding="same", name=name,
                              kernel_initializer=tf.keras.initializers.RandomNormal(stddev=0.01),
                              bias_initializer=tf.keras.initializers.Constant(init))
        per_level = []
        for p in pyramid:
            for conv in convs:
                p = conv(p)
            per_level.append(layers.Reshape((-1, width))(final(p)))
        joined = layers.Concatenate(axis=1)(per_level) if len(per_level) > 1 else per_level[0]
        outputs[name] = layers.Activation("linear", dtype="float32", name=f"{name}_out")(joined)
    return tf.keras.Model(images, outputs, name=f"ssd_{backbone}")


def detector_anchors(image_size, strides=DEFAULT_STRIDES, anchor_scale=4.0, scales=DEFAULT_SCALES,
                     aspect_ratios=DEFAULT_ASPECT_RATIOS):
    """Pixel anchors ``(N, 4)`` of :func:`ssd`: size ``anchor_scale * stride`` per level (RetinaNet: 4)."""
    anchor_scale = validation.positive_number("anchor_scale", anchor_scale)
    return generate_anchors(tuple(image_size), strides, sizes=[anchor_scale * s for s in strides], scales=scales,
                            aspect_ratios=aspect_ratios)


def assign_targets(gt_boxes, gt_classes, gt_valid, anchors, positive_iou=0.5, negative_iou=0.4,
                   variances=DEFAULT_VARIANCES):
    """One image's training targets: ``(class_targets (N,) int32, box_targets (N, 4))``.

    ``gt_boxes (M, 4)`` pixels, ``gt_classes (M,)``, ``gt_valid (M,)`` bool (padding rows False;
    ``M >= 1``). Anchors are matched by :func:`~cs231n_tf.detection.anchors.match` (forced best
    match); a positive's class target is its box's class and its box target the box encoded
    against it; negatives get :data:`BACKGROUND`, ignored anchors :data:`IGNORE`, and both a zero
    box target. An image without objects has only negatives.
    """
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    gt_boxes = tf.cast(gt_boxes, tf.float32)
    matched, labels = match(gt_boxes, anchors, positive_iou, negative_iou, gt_valid=gt_valid)
    index = tf.maximum(matched, 0)
    positive = labels == POSITIVE
    classes = tf.where(positive, tf.gather(tf.cast(gt_classes, tf.int32), index),
                       tf.where(labels == NEGATIVE, BACKGROUND, IGNORE))
    # Non-positives encode their own anchor (a zero target) so no log of an empty box is taken.
    boxes = tf.where(positive[:, None], tf.gather(gt_boxes, index), anchors)
    return classes, encode(boxes, anchors, variances)


def detection_losses(class_targets, box_targets, class_logits, box_codes, anchors, box_loss="smooth_l1",
                     alpha=0.25, gamma=2.0, smooth_l1_beta=0.11, variances=DEFAULT_VARIANCES):
    """``(class_loss, box_loss, positives)``: sums over a batch, to be divided by the positives.

    ``class_targets (B, N)`` / ``box_targets (B, N, 4)`` from :func:`assign_targets`;
    ``class_logits (B, N, K)``, ``box_codes (B, N, 4)``. The class loss is the focal loss summed
    over the classes of every non-ignored anchor (a negative's one-hot target is all zeros); the
    box loss is smooth-L1 of the codes (RetinaNet's ``beta = 0.11``) or ``1 - GIoU`` of the decoded
    boxes, over positives.
    """
    validation.one_of("box_loss", box_loss, BOX_LOSSES)
    num_classes = tf.shape(class_logits)[-1]
    positive = class_targets >= 0
    counted = tf.cast(class_targets != IGNORE, tf.float32)
    one_hot = tf.one_hot(tf.maximum(class_targets, 0), num_classes) * tf.cast(positive, tf.float32)[..., None]
    focal = tf.reduce_sum(sigmoid_focal_loss(one_hot, class_logits, alpha, gamma), axis=-1)
    class_loss = tf.reduce_sum(focal * counted)
    if box_loss == "smooth_l1":
        per_anchor = smooth_l1(box_targets, box_codes, smooth_l1_beta)
    else:
        per_anchor = giou_loss(decode(box_targets, anchors, variances), decode(box_codes, anchors, variances))
    box = tf.reduce_sum(tf.where(positive, per_anchor, 0.0))
    return class_loss, box, tf.reduce_sum(tf.cast(positive, tf.float32))


def _decoded(class_logits, box_codes, anchors, image_size, variances):
    boxes = clip_boxes(decode(box_codes, anchors, variances), *image_size)
    return boxes, tf.sigmoid(tf.cast(class_logits, tf.float32))


def postprocess(class_logits, box_codes, anchors, image_size, max_detections=100, iou_threshold=0.5,
                score_threshold=0.05, variances=DEFAULT_VARIANCES):
    """Final detections of a batch in the graph: :class:`~cs231n_tf.detection.nms.Detections`.

    Decode the codes against the anchors, clip to ``image_size = (H, W)``, score every class by
    its sigmoid, suppress each class on its own and keep the best ``max_detections`` of all
    classes (:func:`~cs231n_tf.detection.nms.batched_nms`). Boxes are pixels.
    """
    boxes, scores = _decoded(class_logits, box_codes, anchors, image_size, variances)
    return batched_nms(boxes, scores, max_detections, max_detections, iou_threshold, score_threshold)


def postprocess_single(class_logits, box_codes, anchors, image_size, max_detections=100, iou_threshold=0.5,
                       score_threshold=0.05, variances=DEFAULT_VARIANCES):
    """:func:`postprocess` of one image (``class_logits (N, K)``, ``box_codes (N, 4)``) from TFLite's builtin ops.

    The class count is static: one padded greedy NMS per class, then the best ``max_detections``
    of all classes by ``top_k``. The rule is :func:`postprocess`'s (combined NMS with
    ``max_output_per_class = max_detections``); outputs have a batch axis of 1.
    """
    boxes, scores = _decoded(class_logits, box_codes, anchors, image_size, variances)
    num_classes = class_logits.shape[-1]
    kept_boxes, kept_scores, kept_classes = [], [], []
    for c in range(num_classes):
        index, count = tf.image.non_max_suppression_padded(
            boxes, scores[:, c], max_detections, iou_threshold, score_threshold, pad_to_max_output_size=True)
        valid = tf.range(max_detections) < count
        kept_boxes.append(tf.gather(boxes, index))
        kept_scores.append(tf.where(valid, tf.gather(scores[:, c], index), -1.0))
        kept_classes.append(tf.fill([max_detections], c))
    all_scores = tf.concat(kept_scores, axis=0)
    top, order = tf.math.top_k(all_scores, k=max_detections)
    valid = top > 0
    num = tf.reduce_sum(tf.cast(valid, tf.int32))
    out_boxes = tf.where(valid[:, None], tf.gather(tf.concat(kept_boxes, axis=0), order), 0.0)
    out_classes = tf.where(valid, tf.gather(tf.concat(kept_classes, axis=0), order), 0)
    return Detections(out_boxes[None], tf.where(valid, top, 0.0)[None], out_classes[None], num[None])
