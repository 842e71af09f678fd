"""Classification losses on class scores (lecture 3, assignments 1 and 3).

Each returns a scalar averaged over the N examples; ``tf.GradientTape`` gives the hand-written
``dscores``. Labels are integer class indices, checked to lie in ``[0, C)`` (a ConfigError when
their values are known, a graph assert inside ``tf.function``).
"""

import tensorflow as tf

from cs231n_tf.ops._util import (
    check_dim, check_in_range, check_rank, float_tensors, int_tensor, real_number,
)


def _scores_and_labels(op, scores, y, score_layout, label_layout):
    (scores,) = float_tensors(scores)
    y = int_tensor(y, "y")
    rank = len(score_layout.split(","))
    check_rank(scores, rank, "scores", score_layout)
    check_rank(y, rank - 1, "y", label_layout)
    for axis in range(rank - 1):
        check_dim(y.shape[axis], scores.shape[axis], f"{op}: y shape {y.shape} vs scores shape {scores.shape}")
    classes = scores.shape[-1] if scores.shape[-1] is not None else tf.shape(scores)[-1]
    y = check_in_range(y, classes, "y", "class indices")
    return scores, y


def _log_softmax(scores):
    """Log-probabilities over the last axis, shifted by the row max so ``exp`` cannot overflow."""
    shifted = scores - tf.reduce_max(scores, axis=-1, keepdims=True)
    return shifted - tf.math.log(tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True))


def svm_loss(scores, y, margin=1.0):
    """Multiclass hinge loss (Weston-Watkins, the course's convention).

    ``scores (N, C)``, ``y (N,)`` -> ``mean_n sum_{j != y_n} max(0, s_nj - s_ny + margin)``.
    Backward: each positive margin adds ``+1`` to ``ds_nj`` and ``-1`` to ``ds_ny``; divided by N.
    """
    scores, y = _scores_and_labels("svm_loss", scores, y, "(N, C)", "(N,)")
    margin = tf.constant(real_number(margin, "margin"), scores.dtype)

    @tf.custom_gradient
    def _svm_loss(scores):
        count = tf.cast(tf.shape(scores)[0], scores.dtype)
        is_label = tf.one_hot(y, tf.shape(scores)[1], dtype=scores.dtype)
        correct = tf.reduce_sum(scores * is_label, axis=1, keepdims=True)
        margins = tf.maximum(scores - correct + margin, 0) * (1 - is_label)
        loss = tf.reduce_sum(margins) / count

        def grad(dloss):
            positive = tf.cast(margins > 0, scores.dtype)
            violations = tf.reduce_sum(positive, axis=1, keepdims=True)
            return dloss * (positive - is_label * violations) / count

        return loss, grad

    return _svm_loss(scores)


def softmax_loss(scores, y):
    """Softmax cross-entropy ``mean_n -log softmax(s_n)[y_n]``, ``scores (N, C)``, ``y (N,)``.

    Backward: ``dscores = (softmax(s) - onehot(y)) / N``.
    """
    scores, y = _scores_and_labels("softmax_loss", scores, y, "(N, C)", "(N,)")

    @tf.custom_gradient
    def _softmax_loss(scores):
        count = tf.cast(tf.shape(scores)[0], scores.dtype)
        log_probs = _log_softmax(scores)
        is_label = tf.one_hot(y, tf.shape(scores)[1], dtype=scores.dtype)
        loss = -tf.reduce_sum(log_probs * is_label) / count

        def grad(dloss):
            return dloss * (tf.exp(log_probs) - is_label) / count

        return loss, grad

    return _softmax_loss(scores)


def temporal_softmax_loss(scores, y, mask):
    """Softmax loss over a sequence (assignment 3 captioning).

    ``scores (N, T, V)``, ``y (N, T)`` int, ``mask (N, T)`` bool or 0/1: the cross-entropy at
    every unmasked step, summed over time and averaged over N; masked steps (e.g. padding after
    ``<END>``) contribute neither loss nor gradient. Backward:
    ``dscores = mask * (softmax(s) - onehot(y)) / N``.
    """
    scores, y = _scores_and_labels("temporal_softmax_loss", scores, y, "(N, T, V)", "(N, T)")
    mask = tf.convert_to_tensor(mask)
    check_rank(mask, 2, "mask", "(N, T)")
    check_dim(mask.shape[0], scores.shape[0], f"temporal_softmax_loss: mask shape {mask.shape} vs y's N")
    check_dim(mask.shape[1], scores.shape[1], f"temporal_softmax_loss: mask shape {mask.shape} vs y's T")
    mask = tf.cast(mask, scores.dtype)[..., None]

    @tf.custom_gradient
    def _temporal_softmax_loss(scores):
        count = tf.cast(tf.shape(scores)[0], scores.dtype)
        log_probs = _log_softmax(scores)
        is_label = tf.one_hot(y, tf.shape(scores)[2], dtype=scores.dtype)
        loss = -tf.reduce_sum(mask * log_probs * is_label) / count

        def grad(dloss):
            return dloss * mask * (tf.exp(log_probs) - is_label) / count

        return loss, grad

    return _temporal_softmax_loss(scores)
