"""Focal loss against its closed form, its derivative and cross-entropy; smooth-L1 and GIoU loss by hand."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.detection.losses import giou_loss, sigmoid_focal_loss, smooth_l1


def _closed_form(y, x, alpha, gamma):
    """Lin et al.'s FL written out in float64 with NumPy: -alpha_t (1 - p_t)^gamma log p_t."""
    p = 1.0 / (1.0 + np.exp(-x))
    p_t = np.where(y == 1, p, 1 - p)
    alpha_t = np.ones_like(x) if alpha is None else np.where(y == 1, alpha, 1 - alpha)
    return -alpha_t * (1 - p_t) ** gamma * np.log(p_t)


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (None, 0.0), (0.5, 1.0), (0.9, 5.0)])
def test_focal_loss_equals_closed_form(alpha, gamma):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (6, 7))
    y = (rng.random((6, 7)) < 0.3).astype(np.float64)
    got = sigmoid_focal_loss(y, tf.constant(x), alpha, gamma).numpy()
    np.testing.assert_allclose(got, _closed_form(y, x, alpha, gamma), rtol=1e-10, atol=1e-12)


def test_focal_loss_by_hand_and_special_cases():
    # x = 0 (p = 1/2), positive, alpha 0.25, gamma 2: 0.25 * 0.5^2 * log 2.
    assert float(sigmoid_focal_loss([1.0], tf.constant([0.0], tf.float64))[0]) == pytest.approx(0.25 * 0.25 * np.log(2))
    # A negative at x = 0: (1 - 0.25) * 0.5^2 * log 2.
    assert float(sigmoid_focal_loss([0.0], tf.constant([0.0], tf.float64))[0]) == pytest.approx(0.75 * 0.25 * np.log(2))
    # gamma = 0 without alpha is TensorFlow's binary cross-entropy; large logits stay finite.
    x = tf.constant([-200.0, -3.0, 0.5, 200.0], tf.float64)
    y = tf.constant([1.0, 0.0, 1.0, 0.0], tf.float64)
    np.testing.assert_allclose(sigmoid_focal_loss(y, x, None, 0.0).numpy(),
                               tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=x).numpy(), rtol=1e-12)
    assert np.isfinite(sigmoid_focal_loss(y, x).numpy()).all()
    # Easy examples are down-weighted: a well-classified positive loses far more than cross-entropy does.
    easy = tf.constant([4.0], tf.float64)
    ratio = sigmoid_focal_loss([1.0], easy, None, 2.0) / sigmoid_focal_loss([1.0], easy, None, 0.0)
    assert float(ratio[0]) == pytest.approx((1 - 1 / (1 + np.exp(-4.0))) ** 2)


def test_focal_loss_gradient_equals_paper_derivative():
    """Lin et al., appendix: dFL/dx = alpha (1 - p)^gamma (gamma p log p + p - 1) for a positive."""
    x = tf.constant(np.linspace(-4, 4, 9), tf.float64)
    alpha, gamma = 0.25, 2.0
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(sigmoid_focal_loss(tf.ones_like(x), x, alpha, gamma))
    p = 1 / (1 + np.exp(-x.numpy()))
    expected = alpha * (1 - p) ** gamma * (gamma * p * np.log(p) + p - 1)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), expected, rtol=1e-10)


def test_smooth_l1_and_giou_loss_by_hand():
    targets = tf.constant([[0.0, 0.0, 0.0, 0.0]])
    preds = tf.constant([[0.05, -0.5, 2.0, 0.0]])
    beta = 0.11
    expected = 0.5 * 0.05 ** 2 / beta + (0.5 - 0.5 * beta) + (2.0 - 0.5 * beta)
    assert float(smooth_l1(targets, preds, beta)[0]) == pytest.approx(expected, rel=1e-6)
    # Identical boxes: 0. Disjoint 1x1 boxes 1 apart: IoU 0, enclosing 1x3 box, GIoU = -(3 - 2) / 3.
    a = tf.constant([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    b = tf.constant([[0.0, 0.0, 1.0, 1.0], [0.0, 2.0, 1.0, 3.0]])
    np.testing.assert_allclose(giou_loss(a, b).numpy(), [0.0, 1 + 1 / 3], rtol=1e-6)
