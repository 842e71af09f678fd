import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.compress.winograd import (A_T, B_T, G, filter_transform, multiply_count_ratio,
                                          winograd_conv2d)
from cs231n_tf.errors import ConfigError, ShapeError


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("hw", [(6, 6), (7, 9), (3, 4)])
def test_equals_tf_conv2d(dtype, tol, padding, hw):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *hw, 3)).astype(dtype)
    w = rng.normal(size=(3, 3, 3, 5)).astype(dtype)
    got = winograd_conv2d(x, w, padding)
    want = tf.nn.conv2d(x, w, 1, padding.upper())
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=tol, rtol=tol)


def test_one_tile_by_hand():
    # One 4x4 tile, one channel: Y = A^T[(G g G^T) * (B^T d B)]A is the 2x2 valid correlation.
    rng = np.random.default_rng(1)
    d = rng.normal(size=(4, 4))
    g = rng.normal(size=(3, 3))
    y = A_T @ ((G @ g @ G.T) * (B_T @ d @ B_T.T)) @ A_T.T
    direct = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(y, direct, atol=1e-12)
    np.testing.assert_allclose(winograd_conv2d(d[None, :, :, None], g[:, :, None, None])[0, :, :, 0], direct,
                               atol=1e-12)
    np.testing.assert_allclose(filter_transform(tf.constant(g[:, :, None, None]))[:, :, 0, 0], G @ g @ G.T)


def test_gradients_match_conv2d():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(1, 5, 6, 2)))
    w = tf.constant(rng.normal(size=(3, 3, 2, 3)))
    dy = tf.constant(rng.normal(size=(1, 5, 6, 3)))
    grads = []
    for fn in (lambda a, b: winograd_conv2d(a, b, "same"), lambda a, b: tf.nn.conv2d(a, b, 1, "SAME")):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            loss = tf.reduce_sum(fn(x, w) * dy)
        grads.append(tape.gradient(loss, [x, w]))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10)


def test_multiply_count_ratio_from_tiles():
    even = multiply_count_ratio((2, 8, 8, 4), (3, 3, 4, 6), "same")
    assert even["tiles"] == 2 * 4 * 4
    assert even["direct_multiplies"] == 2 * 8 * 8 * 9 * 4 * 6
    assert even["winograd_multiplies"] == 2 * 16 * 16 * 4 * 6
    assert even["ratio"] == 2.25
    assert even["per_tile_per_channel_pair"] == (36, 16)
    # 7x7 valid -> 5x5 outputs need 3x3 tiles; the cropped edge lowers the ratio below 2.25.
    odd = multiply_count_ratio((1, 7, 7, 1), (3, 3, 1, 1), "valid")
    assert odd["tiles"] == 9
    assert odd["ratio"] == pytest.approx(25 * 9 / (9 * 16))


def test_bad_inputs():
    x = np.zeros((1, 6, 6, 2), np.float32)
    with pytest.raises(ShapeError, match="3, 3, C, K"):
        winograd_conv2d(x, np.zeros((5, 5, 2, 1), np.float32))
    with pytest.raises(ShapeError, match="channels"):
        winograd_conv2d(x, np.zeros((3, 3, 3, 1), np.float32))
    with pytest.raises(ConfigError, match="padding"):
        winograd_conv2d(x, np.zeros((3, 3, 2, 1), np.float32), "full")
    with pytest.raises(ShapeError, match="too small"):
        winograd_conv2d(np.zeros((1, 2, 2, 2), np.float32), np.zeros((3, 3, 2, 1), np.float32))
