"""Box utilities in TensorFlow's ``[ymin, xmin, ymax, xmax]`` convention (lecture 11).

Boxes are float tensors whose last axis holds ``[ymin, xmin, ymax, xmax]``, in pixels or
normalised to ``[0, 1]`` (every function here is agnostic to the unit). All functions are plain
TensorFlow ops, so they run inside ``tf.function`` and SavedModels; leading batch axes broadcast.

- :func:`area`, :func:`iou`, :func:`giou` (pairwise matrices, or elementwise with
  ``pairwise=False``, as a box loss needs);
- :func:`encode` / :func:`decode`: SSD-style centre/size offsets against anchors with variances
  (Liu et al., "SSD", 2016; the ``[ty, tx, th, tw]`` order of TF's object-detection API);
- :func:`to_xywh` / :func:`from_xywh`: COCO's ``[x, y, width, height]``;
- :func:`clip_boxes`: clip to the image;
- :func:`validate_boxes`: host-side check of user boxes, raising :class:`DataError` naming the box.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import DataError, ShapeError

DEFAULT_VARIANCES = (0.1, 0.1, 0.2, 0.2)


def _boxes(boxes):
    boxes = tf.convert_to_tensor(boxes)
    if not boxes.dtype.is_floating:
        boxes = tf.cast(boxes, tf.float32)
    if boxes.shape.rank is not None and (boxes.shape.rank == 0 or boxes.shape[-1] not in (None, 4)):
        raise ShapeError(f"boxes must have a last axis of 4 ([ymin, xmin, ymax, xmax]), got shape {boxes.shape}")
    return boxes


def area(boxes):
    """Areas ``(...)`` of boxes ``(..., 4)``; boxes with ``ymax < ymin`` or ``xmax < xmin`` have area 0."""
    boxes = _boxes(boxes)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)


def _pair(boxes_a, boxes_b, pairwise):
    a, b = _boxes(boxes_a), _boxes(boxes_b)
    b = tf.cast(b, a.dtype)
    if pairwise:  # (..., N, 1, 4) against (..., 1, M, 4) -> (..., N, M)
        a, b = a[..., :, None, :], b[..., None, :, :]
    return a, b


def _intersection_union(a, b):
    ymin = tf.maximum(a[..., 0], b[..., 0])
    xmin = tf.maximum(a[..., 1], b[..., 1])
    ymax = tf.minimum(a[..., 2], b[..., 2])
    xmax = tf.minimum(a[..., 3], b[..., 3])
    inter = tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)
    union = area(a) + area(b) - inter
    return inter, union


def iou(boxes_a, boxes_b, pairwise=True):
    """Intersection over union.

    ``pairwise=True``: ``boxes_a (..., N, 4)`` and ``boxes_b (..., M, 4)`` give the ``(..., N, M)``
    matrix. ``pairwise=False``: boxes of one broadcastable shape ``(..., 4)`` give ``(...)``.
    Two boxes whose union is empty (both of zero area) have IoU 0.
    """
    a, b = _pair(boxes_a, boxes_b, pairwise)
    inter, union = _intersection_union(a, b)
    return tf.math.divide_no_nan(inter, union)


def giou(boxes_a, boxes_b, pairwise=True):
    """Generalised IoU (Rezatofighi et al., CVPR 2019): ``IoU - (|C| - |A u B|) / |C|``.

    ``C`` is the smallest box enclosing both. GIoU lies in ``(-1, 1]``; unlike IoU it keeps a
    gradient for disjoint boxes, which is why ``1 - giou(pred, target, pairwise=False)`` is a box
    loss. Shapes as in :func:`iou`.
    """
    a, b = _pair(boxes_a, boxes_b, pairwise)
    inter, union = _intersection_union(a, b)
    enclose_h = tf.maximum(a[..., 2], b[..., 2]) - tf.minimum(a[..., 0], b[..., 0])
    enclose_w = tf.maximum(a[..., 3], b[..., 3]) - tf.minimum(a[..., 1], b[..., 1])
    enclose = tf.maximum(enclose_h, 0.0) * tf.maximum(enclose_w, 0.0)
    return tf.math.divide_no_nan(inter, union) - tf.math.divide_no_nan(enclose - union, enclose)


def _centre_size(boxes):
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return (ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin


def encode(boxes, anchors, variances=DEFAULT_VARIANCES):
    """Regression targets ``[ty, tx, th, tw]`` ``(..., 4)`` of ``boxes`` against ``anchors`` (SSD).

    ``ty = (cy - cy_a) / h_a / v0``, ``tx = (cx - cx_a) / w_a / v1``, ``th = log(h / h_a) / v2``,
    ``tw = log(w / w_a) / v3``: offsets of the centre in anchor sizes and log size ratios, divided
    by ``variances`` so the targets have roughly unit scale (SSD's 0.1/0.2; Faster R-CNN's scale
    factors 10, 10, 5, 5 are their reciprocals). Boxes and anchors must have positive size.
    """
    boxes = _boxes(boxes)
    anchors = tf.cast(_boxes(anchors), boxes.dtype)
    v = tf.constant(variances, boxes.dtype)
    cy, cx, h, w = _centre_size(boxes)
    acy, acx, ah, aw = _centre_size(anchors)
    return tf.stack([(cy - acy) / ah, (cx - acx) / aw, tf.math.log(h / ah), tf.math.log(w / aw)], axis=-1) / v


def decode(codes, anchors, variances=DEFAULT_VARIANCES):
    """Boxes ``[ymin, xmin, ymax, xmax]`` ``(..., 4)`` from offsets ``[ty, tx, th, tw]`` (inverse of :func:`encode`)."""
    codes = _boxes(codes)
    anchors = tf.cast(_boxes(anchors), codes.dtype)
    t = codes * tf.constant(variances, codes.dtype)
    acy, acx, ah, aw = _centre_size(anchors)
    cy, cx = t[..., 0] * ah + acy, t[..., 1] * aw + acx
    h, w = tf.exp(t[..., 2]) * ah, tf.exp(t[..., 3]) * aw
    return tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)


def to_xywh(boxes):
    """``[ymin, xmin, ymax, xmax]`` -> COCO's ``[x, y, width, height]`` (``x, y`` the top-left corner)."""
    ymin, xmin, ymax, xmax = tf.unstack(_boxes(boxes), axis=-1)
    return tf.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=-1)


def from_xywh(boxes):
    """COCO's ``[x, y, width, height]`` -> ``[ymin, xmin, ymax, xmax]``."""
    x, y, w, h = tf.unstack(_boxes(boxes), axis=-1)
    return tf.stack([y, x, y + h, x + w], axis=-1)


def clip_boxes(boxes, height, width):
    """Boxes clipped to the image ``[0, height] x [0, width]`` (pass 1, 1 for normalised boxes)."""
    boxes = _boxes(boxes)
    limits = tf.cast(tf.stack([height, width, height, width]), boxes.dtype)
    return tf.clip_by_value(boxes, tf.zeros_like(limits), limits)


def validate_boxes(boxes, height=None, width=None, what="boxes", tolerance=0.0):
    """``boxes`` as a float32 ``(N, 4)`` NumPy array, checked on the host; bad ones raise :class:`DataError`.

    Refused: a shape other than ``(N, 4)``, non-finite coordinates, ``ymax < ymin`` or
    ``xmax < xmin``, and (when ``height``/``width`` are given) coordinates outside
    ``[-tolerance, size + tolerance]``. The message names ``what``, the box's index and its value.
    """
    arr = np.asarray(boxes.numpy() if isinstance(boxes, (tf.Tensor, tf.Variable)) else boxes, dtype=np.float64)
    if arr.size == 0:
        arr = arr.reshape(0, 4) if arr.ndim <= 1 or arr.shape[-1] in (0, 4) else arr
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise DataError(f"{what} must have shape (N, 4) [ymin, xmin, ymax, xmax], got {arr.shape}")

    def fail(i, why):
        raise DataError(f"{what}[{i}] = {arr[i].tolist()} {why}")

    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        fail(int(np.argmax(bad)), "has a non-finite coordinate")
    bad = (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
    if bad.any():
        fail(int(np.argmax(bad)), "has ymax < ymin or xmax < xmin; boxes are [ymin, xmin, ymax, xmax]")
    if height is not None and width is not None:
        limit = np.array([height, width, height, width], np.float64) + tolerance
        bad = (arr < -tolerance).any(axis=1) | (arr > limit).any(axis=1)
        if bad.any():
            fail(int(np.argmax(bad)), f"lies outside the {height}x{width} image")
    return arr.astype(np.float32)
