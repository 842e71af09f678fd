"""Per-pixel softmax cross-entropy for semantic segmentation, with an ignore label and class weights.

FCN's loss (Long et al. 2015): the softmax cross-entropy of every pixel, averaged over the pixels
that have a label. Pixels labelled ``ignore_label`` (255, PASCAL VOC's "void" border) contribute
nothing, neither to the sum nor to the count. With ``class_weights`` ``w`` the loss of a pixel of
true class ``k`` is multiplied by ``w[k]`` and the mean is the weighted one,
``sum_i w[y_i] l_i / sum_i w[y_i]`` (the convention of PyTorch's ``CrossEntropyLoss(weight=...)``).
"""

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError

IGNORE_LABEL = 255


def pixel_weights(labels, num_classes, ignore_label=IGNORE_LABEL, class_weights=None):
    """``(N, H, W)`` float32: ``class_weights[label]`` (1 without weights), 0 at ``ignore_label``."""
    labels = tf.cast(labels, tf.int32)
    valid = tf.not_equal(labels, ignore_label)
    safe = tf.where(valid, labels, 0)
    if class_weights is None:
        weights = tf.ones_like(safe, tf.float32)
    else:
        class_weights = np.asarray(class_weights, np.float32)
        if class_weights.shape != (num_classes,) or (class_weights < 0).any() or not np.isfinite(class_weights).all():
            raise ConfigError(f"class_weights must be {num_classes} non-negative numbers (one per class), "
                              f"got {class_weights.tolist()!r}")
        weights = tf.gather(tf.constant(class_weights), safe)
    return tf.where(valid, weights, 0.0)


def pixel_cross_entropy(labels, logits, ignore_label=IGNORE_LABEL, class_weights=None):
    """``(losses, weights)``, both ``(N, H, W)`` float32, for ``labels (N, H, W)`` and ``logits (N, H, W, K)``.

    ``losses`` is each pixel's softmax cross-entropy (0 at ignored pixels), ``weights`` its weight
    (:func:`pixel_weights`); the loss is ``sum(losses * weights) / sum(weights)``. Kept apart so a
    distributed step can divide by the global weight sum.
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    weights = pixel_weights(labels, logits.shape[-1], ignore_label, class_weights)
    safe = tf.where(tf.not_equal(labels, ignore_label), labels, 0)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    return tf.where(weights > 0, losses, 0.0), weights


def segmentation_loss(labels, logits, ignore_label=IGNORE_LABEL, class_weights=None):
    """The mean per-pixel cross-entropy over labelled pixels, weighted by class (module docstring).

    A batch without a single labelled pixel has loss 0.
    """
    losses, weights = pixel_cross_entropy(labels, logits, ignore_label, class_weights)
    return tf.math.divide_no_nan(tf.reduce_sum(losses * weights), tf.reduce_sum(weights))
