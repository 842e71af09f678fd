"""Streaming segmentation metrics from one confusion matrix: mean IoU, per-class IoU, pixel accuracy.

``confusion[t, p]`` counts the pixels of true class ``t`` predicted as ``p`` (rows: truth, as
scikit-learn's ``confusion_matrix``); pixels labelled ``ignore_label`` are not counted. From it:
``IoU_k = C[k, k] / (sum_p C[k, p] + sum_t C[t, k] - C[k, k])`` (intersection over union of the
predicted and true regions of class ``k``; NaN for a class absent from both), mean IoU = the mean
of the defined ``IoU_k`` (PASCAL VOC's and Cityscapes' mIoU), pixel accuracy = ``trace(C) / sum(C)``.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.segmentation.losses import IGNORE_LABEL


def iou_from_confusion(confusion):
    """``(per_class_iou (K,) with NaN for absent classes, mean_iou, pixel_accuracy)`` of a NumPy matrix."""
    c = np.asarray(confusion, np.float64)
    tp = np.diag(c)
    union = c.sum(0) + c.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    mean = float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
    total = c.sum()
    return iou, mean, float(tp.sum() / total) if total else float("nan")


class SegmentationMetrics(tf.keras.metrics.Metric):
    """A streaming confusion matrix over pixels; ``result()`` is the mean IoU.

    ``update_state(labels (N, H, W), logits_or_predictions)``: logits ``(N, H, W, K)`` are reduced
    with ``argmax``; integer predictions ``(N, H, W)`` are used as they are. ``per_class_iou()``,
    ``pixel_accuracy()`` and ``confusion()`` read the same accumulator. The matrix is an int64
    variable, so it is checkpointed with a run (exact resume) and summed exactly across batches.
    """

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL, name="mean_iou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = validation.int_in("num_classes", num_classes, 2)
        self.ignore_label = int(ignore_label)
        self.matrix = self.add_weight(name="confusion", shape=(self.num_classes, self.num_classes),
                                      initializer="zeros", dtype=tf.int64)

    def update_state(self, labels, predictions, sample_weight=None):
        labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
        predictions = tf.convert_to_tensor(predictions)
        if predictions.dtype.is_floating:
            predictions = tf.argmax(predictions, axis=-1)
        predictions = tf.reshape(tf.cast(predictions, tf.int64), [-1])
        valid = tf.not_equal(labels, self.ignore_label)
        k = self.num_classes
        # labels * K + prediction indexes the flattened matrix; bincount over it is the matrix.
        index = tf.boolean_mask(labels * k + predictions, valid)
        counts = tf.math.bincount(index, minlength=k * k, maxlength=k * k, dtype=tf.int64)
        self.matrix.assign_add(tf.reshape(counts, [k, k]))

    def _iou(self):
        c = tf.cast(self.matrix, tf.float64)
        tp = tf.linalg.diag_part(c)
        union = tf.reduce_sum(c, 0) + tf.reduce_sum(c, 1) - tp
        return tp, union

    def per_class_iou(self):
        tp, union = self._iou()
        return tf.where(union > 0, tf.math.divide_no_nan(tp, union), tf.constant(np.nan, tf.float64))

    def result(self):
        tp, union = self._iou()
        defined = union > 0
        return tf.math.divide_no_nan(tf.reduce_sum(tf.math.divide_no_nan(tp, union)),
                                     tf.reduce_sum(tf.cast(defined, tf.float64)))

    def pixel_accuracy(self):
        c = tf.cast(self.matrix, tf.float64)
        return tf.math.divide_no_nan(tf.linalg.trace(c), tf.reduce_sum(c))

    def confusion(self):
        return tf.convert_to_tensor(self.matrix)

    def reset_state(self):
        self.matrix.assign(tf.zeros_like(self.matrix))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "ignore_label": self.ignore_label}
