"""Detection losses (lecture 11): sigmoid focal loss for the classes, smooth-L1 and GIoU for the boxes.

All return per-element losses (no reduction), so the detector decides what to average over
(RetinaNet divides by the number of positive anchors).
"""

import tensorflow as tf

from cs231n_tf.detection.boxes import giou


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    """Focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017) per element.

    ``FL = -alpha_t (1 - p_t)^gamma log(p_t)`` with ``p = sigmoid(logits)``, ``p_t = p`` where
    ``labels == 1`` and ``1 - p`` where ``labels == 0``, ``alpha_t = alpha`` / ``1 - alpha`` likewise
    (``alpha=None``: no weighting). ``gamma = 0, alpha = None`` is the binary cross-entropy. The
    log term comes from ``tf.nn.sigmoid_cross_entropy_with_logits`` (stable for large logits);
    the modulating factor down-weights the many easy negatives of a dense detector, which is what
    lets a one-stage detector train on all anchors without hard-negative mining.
    """
    logits = tf.convert_to_tensor(logits)
    labels = tf.cast(labels, logits.dtype)
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    p = tf.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    loss = tf.pow(1 - p_t, gamma) * cross_entropy
    if alpha is not None:
        loss *= labels * alpha + (1 - labels) * (1 - alpha)
    return loss


def smooth_l1(targets, predictions, beta=1.0):
    """Smooth-L1 (Girshick, "Fast R-CNN", 2015) summed over the last axis: ``0.5 d^2 / beta`` for
    ``|d| < beta``, else ``|d| - 0.5 beta``; ``d = predictions - targets``. Shape ``(...)``."""
    diff = tf.abs(tf.convert_to_tensor(predictions) - tf.cast(targets, predictions.dtype))
    return tf.reduce_sum(tf.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta), axis=-1)


def giou_loss(target_boxes, predicted_boxes):
    """``1 - GIoU`` of box pairs ``(..., 4)`` (Rezatofighi et al., CVPR 2019): in ``[0, 2)``; unlike
    ``1 - IoU`` it still has a gradient when the boxes do not overlap."""
    return 1.0 - giou(predicted_boxes, target_boxes, pairwise=False)
