"""Non-maximum suppression (lecture 11): the greedy algorithm by hand, and TensorFlow's ops for real use.

- :func:`nms` (tier 1): greedy NMS written out in a ``tf.while_loop``; the same indices as
  ``tf.image.non_max_suppression``.
- :func:`soft_nms` (tier 1): Gaussian soft-NMS (Bodla et al., "Soft-NMS", ICCV 2017); the same
  indices and scores as ``tf.image.non_max_suppression_with_scores(..., soft_nms_sigma=sigma / 2)``.
- :func:`batched_nms` (library): class-aware NMS of a batch with padded outputs, on
  ``tf.image.combined_non_max_suppression`` (works in SavedModels and TFLite's flex ops).
- :func:`class_aware_nms` (library): one image whose boxes each carry one class, by the
  per-class offset trick on ``tf.image.non_max_suppression``.

Boxes are ``[y1, x1, y2, x2]`` with ``(y1, x1)`` and ``(y2, x2)`` any diagonal pair of corners,
pixels or normalised, as TensorFlow's ops take them.
"""

import collections
import numbers

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError

Detections = collections.namedtuple("Detections", ["boxes", "scores", "classes", "num_detections"])
Detections.__doc__ = """Padded detections of a batch: ``boxes (B, K, 4)``, ``scores (B, K)``, ``classes (B, K)``
int32 and ``num_detections (B,)`` int32; entries past ``num_detections`` are zero."""


def _threshold(name, value, low=0.0, high=1.0):
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not low <= value <= high:
        raise ConfigError(f"{name} must be in [{low}, {high}], got {value!r}")
    return value


def _corners(boxes):
    """Any diagonal corner pair -> ``[ymin, xmin, ymax, xmax]``, as TF's NMS kernels read boxes."""
    y1, x1, y2, x2 = tf.unstack(boxes, axis=-1)
    return tf.stack([tf.minimum(y1, y2), tf.minimum(x1, x2), tf.maximum(y1, y2), tf.maximum(x1, x2)], axis=-1)


def _iou_one(box, boxes):
    """IoU ``(K,)`` of one box ``(4,)`` with ``boxes (K, 4)``, computed in the order TF's kernel does."""
    inter_h = tf.maximum(tf.minimum(box[2], boxes[:, 2]) - tf.maximum(box[0], boxes[:, 0]), 0.0)
    inter_w = tf.maximum(tf.minimum(box[3], boxes[:, 3]) - tf.maximum(box[1], boxes[:, 1]), 0.0)
    inter = inter_h * inter_w
    area_a = (box[2] - box[0]) * (box[3] - box[1])
    area_b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    value = inter / (area_a + area_b - inter)
    return tf.where((area_a <= 0.0) | (area_b <= 0.0), tf.zeros_like(value), value)


@tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.float32),
                              tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32),
                              tf.TensorSpec([], tf.float32)])
def _nms(boxes, scores, max_output_size, iou_threshold, score_threshold):
    boxes = _corners(boxes)
    # Candidates in falling score order; the stable sort puts the lower index first on ties, as the
    # kernel's priority queue does. Only scores above the threshold take part.
    order = tf.argsort(scores, direction="DESCENDING", stable=True)
    order = tf.boolean_mask(order, tf.gather(scores, order) > score_threshold)
    candidates = tf.gather(boxes, order)
    k = tf.size(order)
    selected = tf.TensorArray(tf.int32, size=0, dynamic_size=True)

    def cond(alive, count, selected):
        return (count < max_output_size) & tf.reduce_any(alive)

    def body(alive, count, selected):
        # The best surviving candidate is the first alive one in score order.
        best = tf.cast(tf.argmax(tf.cast(alive, tf.int32)), tf.int32)
        selected = selected.write(count, order[best])
        suppressed = _iou_one(candidates[best], candidates) > iou_threshold
        alive = alive & ~suppressed & (tf.range(k) != best)
        return alive, count + 1, selected

    _, _, selected = tf.while_loop(cond, body, [tf.ones([k], tf.bool), tf.constant(0), selected])
    return selected.stack()


def nms(boxes, scores, iou_threshold=0.5, max_output_size=100, score_threshold=float("-inf")):
    """Greedy NMS: indices ``(<= max_output_size,)`` int32 of the kept boxes, best first.

    Repeatedly take the highest-scoring remaining box and drop every remaining box whose IoU with
    it is above ``iou_threshold``; boxes scoring ``<= score_threshold`` never take part. This is
    exactly what ``tf.image.non_max_suppression`` returns (it is the reference the tests use);
    it runs as one compiled ``tf.while_loop`` of at most ``max_output_size`` steps, each ``O(N)``.
    ``boxes (N, 4)``, ``scores (N,)``.
    """
    _threshold("iou_threshold", iou_threshold)
    if isinstance(max_output_size, numbers.Integral):
        validation.positive_int("max_output_size", max_output_size, allow_zero=True)
    return _nms(tf.cast(boxes, tf.float32), tf.cast(scores, tf.float32), tf.cast(max_output_size, tf.int32),
                tf.cast(iou_threshold, tf.float32), tf.cast(score_threshold, tf.float32))


@tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.float32),
                              tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32),
                              tf.TensorSpec([], tf.float32)])
def _soft_nms(boxes, scores, max_output_size, sigma, score_threshold):
    boxes = _corners(boxes)
    n = tf.size(scores)
    minus_inf = tf.fill([n], float("-inf"))
    indices = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    kept = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

    def best_of(current, alive):
        # A trailing -inf keeps argmax defined when no box is left.
        masked = tf.concat([tf.where(alive, current, minus_inf), [float("-inf")]], axis=0)
        best = tf.cast(tf.argmax(masked), tf.int32)
        return best, masked[best]

    def cond(current, alive, count, indices, kept):
        _, top = best_of(current, alive)
        return (count < max_output_size) & tf.reduce_any(alive) & (top > score_threshold)

    def body(current, alive, count, indices, kept):
        best, top = best_of(current, alive)
        indices, kept = indices.write(count, best), kept.write(count, top)
        alive = alive & (tf.range(n) != best)
        overlap = _iou_one(boxes[best], boxes)
        # Bodla et al.'s Gaussian decay: overlapping boxes lose score instead of being removed.
        current = tf.where(alive, current * tf.exp(-(overlap * overlap) / sigma), current)
        return current, alive & (current > score_threshold), count + 1, indices, kept

    _, _, _, indices, kept = tf.while_loop(
        cond, body, [scores, scores > score_threshold, tf.constant(0), indices, kept])
    return indices.stack(), kept.stack()


def soft_nms(boxes, scores, max_output_size=100, sigma=0.5, score_threshold=0.001):
    """Gaussian soft-NMS: ``(indices, scores)`` of the selected boxes, in selection order.

    Repeatedly select the box of highest current score, then multiply the score of every
    remaining box ``b`` by ``exp(-IoU(b, selected)^2 / sigma)`` (Bodla et al.'s ``sigma``, 0.5 in
    the paper); boxes whose score falls to ``<= score_threshold`` are dropped (0.001 in the
    paper's code). The returned scores are the decayed ones. TensorFlow's
    ``non_max_suppression_with_scores`` writes the weight as ``exp(-0.5 * IoU^2 / soft_nms_sigma)``,
    so its ``soft_nms_sigma`` is this ``sigma / 2``; in soft mode it ignores ``iou_threshold``.
    """
    sigma = validation.positive_number("sigma", sigma)
    if isinstance(max_output_size, numbers.Integral):
        validation.positive_int("max_output_size", max_output_size, allow_zero=True)
    return _soft_nms(tf.cast(boxes, tf.float32), tf.cast(scores, tf.float32), tf.cast(max_output_size, tf.int32),
                     tf.constant(sigma, tf.float32), tf.cast(score_threshold, tf.float32))


def batched_nms(boxes, scores, max_output_per_class=100, max_detections=100, iou_threshold=0.5,
                score_threshold=0.05, clip_boxes=False):
    """Class-aware NMS of a batch: :class:`Detections` padded to ``max_detections`` per image.

    ``boxes`` is ``(B, N, 4)`` (one box per anchor, shared by the classes) or ``(B, N, C, 4)`` (one
    per class); ``scores`` is ``(B, N, C)``. Each class is suppressed on its own (at most
    ``max_output_per_class`` each), then the best ``max_detections`` of all classes are kept,
    sorted by score. Built on ``tf.image.combined_non_max_suppression``; ``clip_boxes=True``
    clips to ``[0, 1]`` (normalised boxes only), so pixel boxes keep the default ``False``.
    """
    _threshold("iou_threshold", iou_threshold)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    if boxes.shape.rank == 3:
        boxes = boxes[:, :, None, :]
    out_boxes, out_scores, out_classes, valid = tf.image.combined_non_max_suppression(
        boxes, tf.cast(scores, tf.float32), max_output_per_class, max_detections, iou_threshold=iou_threshold,
        score_threshold=score_threshold, clip_boxes=clip_boxes)
    return Detections(out_boxes, out_scores, tf.cast(out_classes, tf.int32), tf.cast(valid, tf.int32))


def class_aware_nms(boxes, scores, classes, max_output_size=100, iou_threshold=0.5, score_threshold=float("-inf")):
    """NMS of one image within each class: indices ``(<= max_output_size,)`` of kept boxes, best first.

    ``boxes (N, 4)``, ``scores (N,)``, ``classes (N,)`` ints. Each class's boxes are shifted by
    ``class * (extent + 1)`` along both axes (``extent`` the boxes' coordinate range) so boxes of
    different classes never overlap, and one ``tf.image.non_max_suppression`` does all classes.
    """
    _threshold("iou_threshold", iou_threshold)
    boxes = _corners(tf.cast(boxes, tf.float32))
    extent = tf.reduce_max(tf.concat([boxes, [[0.0, 0.0, 0.0, 0.0]]], axis=0)) - tf.reduce_min(
        tf.concat([boxes, [[0.0, 0.0, 0.0, 0.0]]], axis=0))
    offsets = tf.cast(classes, tf.float32)[:, None] * (extent + 1.0)
    return tf.image.non_max_suppression(boxes + offsets, tf.cast(scores, tf.float32), max_output_size,
                                        iou_threshold=iou_threshold, score_threshold=score_threshold)
