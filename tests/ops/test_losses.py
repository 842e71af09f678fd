"""SVM, softmax and temporal softmax losses against closed forms, TensorFlow, and numerics."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import ops
from cs231n_tf.errors import ConfigError, InputTypeError, ShapeError

from .util import assert_gradcheck, normal


def _numpy_hinge(scores, y, margin=1.0):
    n = scores.shape[0]
    margins = np.maximum(0, scores - scores[np.arange(n), y][:, None] + margin)
    margins[np.arange(n), y] = 0
    return margins.sum() / n


def _tf_softmax_loss(scores, y):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=scores))


def _grad(loss_fn, scores, *args):
    scores = tf.constant(scores)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        loss = loss_fn(scores, *args)
    return loss, tape.gradient(loss, scores)


@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_svm_loss_matches_numpy_hinge_and_numerical_gradient(margin):
    rng = np.random.default_rng(0)
    scores, y = normal(rng, 6, 5), rng.integers(0, 5, 6)
    np.testing.assert_allclose(ops.svm_loss(scores, y, margin), _numpy_hinge(scores, y, margin), rtol=1e-12)
    assert_gradcheck(lambda s: ops.svm_loss(s, y, margin), [scores])


def test_svm_loss_gradient_matches_autodiff_of_a_tensorflow_hinge():
    rng = np.random.default_rng(1)
    scores, y = normal(rng, 4, 3), np.array([0, 2, 1, 2])

    def tf_hinge(s, y):
        is_label = tf.one_hot(y, 3, dtype=s.dtype)
        correct = tf.reduce_sum(s * is_label, 1, keepdims=True)
        return tf.reduce_sum(tf.nn.relu(s - correct + 1) * (1 - is_label)) / 4

    _, mine = _grad(ops.svm_loss, scores, y)
    _, theirs = _grad(tf_hinge, scores, y)
    np.testing.assert_allclose(mine, theirs, rtol=1e-12)


def test_softmax_loss_matches_tensorflow_and_numerical_gradient():
    rng = np.random.default_rng(2)
    scores, y = normal(rng, 6, 5), rng.integers(0, 5, 6)
    loss, grad = _grad(ops.softmax_loss, scores, y)
    ref_loss, ref_grad = _grad(_tf_softmax_loss, scores, y)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)
    # The course accepts 1e-5 here; the closed-form gradient reaches far below 1e-7.
    assert_gradcheck(lambda s: ops.softmax_loss(s, y), [scores])


def test_softmax_loss_of_uniform_scores_is_log_c_and_stable_for_huge_scores():
    assert float(ops.softmax_loss(np.zeros((3, 10)), [1, 2, 3])) == pytest.approx(np.log(10), rel=1e-6)
    scores = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], np.float32)
    loss, grad = _grad(ops.softmax_loss, scores, np.array([1, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert float(loss) == pytest.approx(0.5 * 1e4, rel=1e-6)
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)


def test_temporal_softmax_loss_matches_masked_tensorflow_sum():
    rng = np.random.default_rng(3)
    scores, y = normal(rng, 2, 4, 5), rng.integers(0, 5, (2, 4))
    mask = np.array([[True, True, True, False], [True, False, False, False]])

    def reference(s, y, mask):
        per_step = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=s)
        return tf.reduce_sum(per_step * tf.cast(mask, s.dtype)) / 2

    loss, grad = _grad(ops.temporal_softmax_loss, scores, y, mask)
    ref_loss, ref_grad = _grad(reference, scores, y, mask)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(grad[0, 3], 0.0)
    assert_gradcheck(lambda s: ops.temporal_softmax_loss(s, y, mask.astype(float)), [scores])


@pytest.mark.parametrize("loss", [ops.svm_loss, ops.softmax_loss])
def test_losses_reject_bad_labels(loss):
    scores = np.zeros((3, 4))
    with pytest.raises(ConfigError, match=r"\[0, 4\); got 4 at index \(2,\)"):
        loss(scores, [0, 1, 4])
    with pytest.raises(ConfigError, match="got -1"):
        loss(scores, np.array([-1, 0, 0]))
    with pytest.raises(InputTypeError, match="integers"):
        loss(scores, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ShapeError):
        loss(scores, [0, 1])


def test_out_of_range_labels_fail_inside_tf_function():
    fn = tf.function(lambda s, y: ops.softmax_loss(s, y))
    with pytest.raises(tf.errors.InvalidArgumentError, match="class indices"):
        fn(tf.zeros((2, 3)), tf.constant([0, 3]))


def test_temporal_softmax_loss_rejects_bad_labels_and_mask():
    scores = np.zeros((2, 3, 4))
    with pytest.raises(ConfigError, match="got 9"):
        ops.temporal_softmax_loss(scores, [[0, 1, 2], [3, 9, 0]], np.ones((2, 3)))
    with pytest.raises(ShapeError, match="mask"):
        ops.temporal_softmax_loss(scores, np.zeros((2, 3), int), np.ones((2, 2)))
