"""Anchors over feature-map levels and their matching to ground truth (SSD, RetinaNet).

Order of :func:`generate_anchors` (the order a head predicts them in): level by level (strides as
given, finest first by convention); within a level row-major over the feature map (``y`` then
``x``); within a location scale-major, ``index = scale_index * len(aspect_ratios) + ratio_index``.
A head whose level output is ``(B, H_l, W_l, A * 4)`` therefore reshapes to ``(B, H_l * W_l * A, 4)``
and concatenates the levels, with ``A = len(scales) * len(aspect_ratios)``.
"""

import math

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.detection.boxes import iou
from cs231n_tf.errors import ConfigError

DEFAULT_STRIDES = (8, 16, 32)
DEFAULT_SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
DEFAULT_ASPECT_RATIOS = (0.5, 1.0, 2.0)

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


def anchors_per_location(scales=DEFAULT_SCALES, aspect_ratios=DEFAULT_ASPECT_RATIOS):
    """``len(scales) * len(aspect_ratios)``: the ``A`` of a head's ``A * 4`` box outputs per location."""
    return len(scales) * len(aspect_ratios)


def _positive_numbers(name, values):
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"{name} must be a non-empty list of positive numbers, got {values!r}")
    return tuple(validation.positive_number(name, v) for v in values)


def generate_anchors(image_size, strides=DEFAULT_STRIDES, sizes=None, scales=DEFAULT_SCALES,
                     aspect_ratios=DEFAULT_ASPECT_RATIOS, feature_shapes=None, normalized=False):
    """Anchors ``(N, 4)`` float32 ``[ymin, xmin, ymax, xmax]`` for an image of ``image_size = (H, W)``.

    Level ``l`` has stride ``strides[l]`` and a feature map of ``feature_shapes[l]`` (default
    ``ceil(H / stride) x ceil(W / stride)``, what stride-2 'same' convolutions give). Its anchors
    are centred at ``((i + 0.5) * stride, (j + 0.5) * stride)``; each location has one anchor per
    ``(scale, ratio)`` of height ``size * scale / sqrt(ratio)`` and width ``size * scale *
    sqrt(ratio)`` (``ratio = width / height``), where ``size = sizes[l]`` (default ``4 * stride``, as
    in RetinaNet). ``normalized=True`` divides by the image size. The order is the module's.
    """
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ConfigError(f"image_size must be (H, W), got {image_size!r}")
    height, width = (validation.positive_int("image_size", v) for v in image_size)
    strides = tuple(validation.positive_int("strides", s) for s in strides) if strides else ()
    if not strides:
        raise ConfigError("strides must be a non-empty list of positive ints")
    sizes = tuple(4.0 * s for s in strides) if sizes is None else _positive_numbers("sizes", sizes)
    scales = _positive_numbers("scales", scales)
    aspect_ratios = _positive_numbers("aspect_ratios", aspect_ratios)
    if len(sizes) != len(strides):
        raise ConfigError(f"sizes has {len(sizes)} entries but strides has {len(strides)}; give one per level")
    if feature_shapes is None:
        feature_shapes = [(math.ceil(height / s), math.ceil(width / s)) for s in strides]
    elif len(feature_shapes) != len(strides):
        raise ConfigError(f"feature_shapes has {len(feature_shapes)} entries but strides has {len(strides)}")
    levels = []
    for stride, size, (fh, fw) in zip(strides, sizes, feature_shapes):
        # (A, 2) heights and widths of one location, scale-major.
        hw = tf.constant([[size * s / math.sqrt(r), size * s * math.sqrt(r)] for s in scales for r in aspect_ratios],
                         tf.float32)
        cy = (tf.range(fh, dtype=tf.float32) + 0.5) * stride
        cx = (tf.range(fw, dtype=tf.float32) + 0.5) * stride
        cy, cx = tf.meshgrid(cy, cx, indexing="ij")  # (fh, fw), row-major
        centres = tf.reshape(tf.stack([cy, cx], axis=-1), (-1, 1, 2))
        half = hw[None] / 2
        levels.append(tf.reshape(tf.concat([centres - half, centres + half], axis=-1), (-1, 4)))
    anchors = tf.concat(levels, axis=0)
    if normalized:
        anchors = anchors / tf.constant([height, width, height, width], tf.float32)
    return anchors


def match(gt_boxes, anchors, positive_iou=0.5, negative_iou=0.4, gt_valid=None, force_match=True):
    """Assign each anchor a ground-truth box: ``(matched_index (N,) int32, labels (N,) int32)``.

    With ``best`` the anchor's highest IoU with any ground truth: positive (label 1) if
    ``best >= positive_iou``, negative (0) if ``best < negative_iou``, ignored (-1) in between.
    With ``force_match``, every ground-truth box also gets its best anchor(s) as positives even
    below the threshold (all anchors tied at its highest IoU, if that IoU is above 0), so small
    or oddly shaped objects are never left without a target. ``matched_index`` is the matched box
    of positives (for a forced anchor, the box that forced it unless the anchor clears
    ``positive_iou`` on its own) and -1 for negatives and ignored anchors. ``gt_valid`` ``(M,)``
    bool marks the real boxes of a padded ground truth. Zero ground-truth boxes: all negatives.
    Graph-compatible.
    """
    if not 0.0 <= negative_iou <= positive_iou <= 1.0:
        raise ConfigError(f"need 0 <= negative_iou <= positive_iou <= 1, got negative_iou={negative_iou!r}, "
                          f"positive_iou={positive_iou!r}")
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    gt_boxes = tf.reshape(tf.cast(gt_boxes, tf.float32), (-1, 4))
    overlaps = iou(anchors, gt_boxes)  # (N, M)
    if gt_valid is not None:
        overlaps = tf.where(tf.cast(gt_valid, tf.bool)[None, :], overlaps, -1.0)
    # A -1 column keeps max/argmax defined with no ground truth (every anchor then negative).
    padded = tf.concat([overlaps, -tf.ones_like(anchors[:, :1])], axis=1)
    best = tf.reduce_max(padded, axis=1)
    best_index = tf.cast(tf.argmax(padded, axis=1), tf.int32)
    positive = best >= positive_iou
    matched = best_index
    if force_match:
        gt_best = tf.reduce_max(tf.concat([overlaps, tf.zeros_like(overlaps[:1])], axis=0), axis=0)  # (M,)
        is_best = (overlaps == gt_best[None, :]) & (gt_best[None, :] > 0)
        forced = tf.reduce_any(is_best, axis=1)
        forced_iou = tf.concat([tf.where(is_best, overlaps, -1.0), -2 * tf.ones_like(anchors[:, :1])], axis=1)
        forced_index = tf.cast(tf.argmax(forced_iou, axis=1), tf.int32)
        matched = tf.where(positive, best_index, forced_index)
        positive = positive | forced
    labels = tf.where(positive, POSITIVE, tf.where(best < negative_iou, NEGATIVE, IGNORED))
    return tf.where(positive, matched, -1), tf.cast(labels, tf.int32)
