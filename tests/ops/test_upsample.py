"""Upsampling for segmentation: nearest, bed of nails, max unpooling, transposed convolution."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import ops
from cs231n_tf.errors import ConfigError, ShapeError

from .util import assert_gradcheck, assert_same_gradients, normal


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_nearest_upsample_matches_tf_image_resize_and_repeat(factor):
    rng = np.random.default_rng(factor)
    x = normal(rng, 2, 3, 2, 2)
    out = ops.nearest_upsample(x, factor)
    resized = tf.image.resize(tf.constant(x), (3 * factor, 2 * factor), method="nearest")
    np.testing.assert_array_equal(out, resized)
    repeat = lambda x: tf.repeat(tf.repeat(x, factor, axis=1), factor, axis=2)  # noqa: E731
    assert_same_gradients(lambda x: ops.nearest_upsample(x, factor), repeat, [x], normal(rng, *out.shape))
    assert_gradcheck(lambda x: ops.nearest_upsample(x, factor), [x])


def test_bed_of_nails_puts_values_top_left():
    rng = np.random.default_rng(0)
    x = normal(rng, 2, 2, 3, 2)
    out = np.asarray(ops.bed_of_nails_upsample(x, 3))
    expected = np.zeros((2, 6, 9, 2))
    expected[:, ::3, ::3, :] = x
    np.testing.assert_array_equal(out, expected)
    assert_gradcheck(lambda x: ops.bed_of_nails_upsample(x, 3), [x])
    with pytest.raises(ConfigError, match="factor"):
        ops.bed_of_nails_upsample(x, 0)
    with pytest.raises(ConfigError, match="factor"):
        ops.nearest_upsample(x, 1.5)


@pytest.mark.parametrize("height, width, pool, stride", [(4, 4, 2, 2), (5, 5, 3, 2), (4, 6, 2, 2)])
def test_max_pool_with_argmax_matches_tensorflow(height, width, pool, stride):
    rng = np.random.default_rng(height + width)
    x = normal(rng, 2, height, width, 3)
    out, argmax = ops.max_pool_with_argmax(x, pool, pool, stride)
    tf_out, tf_argmax = tf.nn.max_pool_with_argmax(tf.constant(x), pool, stride, "VALID",
                                                   include_batch_in_index=True)
    np.testing.assert_array_equal(out, tf_out)
    np.testing.assert_array_equal(argmax, tf_argmax)
    assert argmax.dtype == tf.int64
    np.testing.assert_array_equal(np.asarray(out), x.ravel()[np.asarray(argmax)])
    assert_same_gradients(lambda x: ops.max_pool_with_argmax(x, pool, pool, stride)[0],
                          lambda x: tf.nn.max_pool2d(x, pool, stride, "VALID"), [x], normal(rng, *out.shape))
    assert_gradcheck(lambda x: ops.max_pool_with_argmax(x, pool, pool, stride)[0], [x])


def test_max_unpool_puts_values_back_at_tensorflow_argmax():
    rng = np.random.default_rng(1)
    x = normal(rng, 2, 4, 4, 3)
    pooled, argmax = tf.nn.max_pool_with_argmax(tf.constant(x), 2, 2, "VALID", include_batch_in_index=True)
    out = np.asarray(ops.max_unpool(pooled, argmax, x.shape))
    expected = np.zeros(x.size)
    expected[np.asarray(argmax).ravel()] = np.asarray(pooled).ravel()
    np.testing.assert_array_equal(out, expected.reshape(x.shape))
    # Unpooling the pooled maxima restores x at the maxima and zeros elsewhere.
    is_max = x == np.asarray(tf.nn.max_pool2d(tf.constant(x), 2, 2, "VALID")).repeat(2, 1).repeat(2, 2)
    np.testing.assert_array_equal(out, np.where(is_max, x, 0.0))
    dout = normal(rng, *x.shape)
    assert_same_gradients(lambda v: ops.max_unpool(v, argmax, x.shape),
                          lambda v: tf.reshape(tf.scatter_nd(tf.reshape(argmax, [-1, 1]), tf.reshape(v, [-1]),
                                                             [x.size]), x.shape),
                          [np.asarray(pooled)], dout)
    assert_gradcheck(lambda v: ops.max_unpool(v, argmax, x.shape), [np.asarray(pooled)])


def test_max_unpool_adds_values_that_share_a_position():
    out = ops.max_unpool(np.array([1.0, 2.0, 4.0]).reshape(1, 1, 3, 1), np.array([0, 0, 3]).reshape(1, 1, 3, 1),
                         (1, 2, 2, 1))
    np.testing.assert_array_equal(np.asarray(out).ravel(), [3.0, 0.0, 0.0, 4.0])


def test_max_unpool_errors():
    x = np.ones((1, 1, 2, 1))
    with pytest.raises(ConfigError, match=r"\[0, 4\); got 4"):
        ops.max_unpool(x, np.array([0, 4]).reshape(1, 1, 2, 1), (1, 2, 2, 1))
    with pytest.raises(ShapeError, match="argmax shape"):
        ops.max_unpool(x, np.array([0]).reshape(1, 1, 1, 1), (1, 2, 2, 1))
    with pytest.raises(ConfigError, match="output_shape"):
        ops.max_unpool(x, np.array([0, 1]).reshape(1, 1, 2, 1), (1, 2, 2))


# (H, W, KH, KW, stride, pad)
TRANSPOSE_GEOMETRIES = [(3, 3, 3, 3, 1, 0), (3, 3, 3, 3, 2, 1), (2, 3, 4, 4, 2, 1), (3, 2, 2, 3, 3, 0),
                        (2, 2, 3, 3, 1, 1)]


@pytest.mark.parametrize("height, width, kh, kw, stride, pad", TRANSPOSE_GEOMETRIES)
def test_conv2d_transpose_matches_tf_conv2d_transpose(height, width, kh, kw, stride, pad):
    rng = np.random.default_rng(height + 10 * kh + stride)
    x, w, b = normal(rng, 2, height, width, 3), normal(rng, kh, kw, 2, 3), normal(rng, 2)
    out_shape = [2, (height - 1) * stride - 2 * pad + kh, (width - 1) * stride - 2 * pad + kw, 2]

    def reference(x, w, b):
        return tf.nn.conv2d_transpose(x, w, out_shape, stride, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) + b

    out = ops.conv2d_transpose(x, w, b, stride, pad)
    assert out.shape == tuple(out_shape)
    np.testing.assert_allclose(out, reference(tf.constant(x), w, b), rtol=1e-10, atol=1e-12)
    assert_same_gradients(lambda x, w, b: ops.conv2d_transpose(x, w, b, stride, pad), reference, [x, w, b],
                          normal(rng, *out_shape))


def test_conv2d_transpose_is_the_adjoint_of_conv2d_and_matches_numerical_gradients():
    rng = np.random.default_rng(2)
    # conv2d maps (2, 5, 5, 2) -> (2, 3, 3, 3) with stride 2, pad 1; w is (3, 3, C_in=2, C_out=3),
    # which is also conv2d_transpose's (KH, KW, C_out=2, C_in=3) layout.
    w = normal(rng, 3, 3, 2, 3)
    x, y = normal(rng, 2, 5, 5, 2), normal(rng, 2, 3, 3, 3)
    forward = np.sum(np.asarray(ops.conv2d_im2col(x, w, np.zeros(3), 2, 1)) * y)
    adjoint = np.sum(x * np.asarray(ops.conv2d_transpose(y, w, np.zeros(2), 2, 1)))
    assert forward == pytest.approx(adjoint, rel=1e-12)
    # Linear in each input: centred differences are exact for any h.
    assert_gradcheck(lambda y, w, b: ops.conv2d_transpose(y, w, b, 2, 1), [y, w, normal(rng, 2)], h=1e-3)


def test_conv2d_transpose_errors():
    x = np.ones((1, 2, 2, 3))
    with pytest.raises(ShapeError, match="C_in"):
        ops.conv2d_transpose(x, np.ones((3, 3, 2, 4)), np.zeros(2), 1, 0)
    with pytest.raises(ShapeError, match="C_out"):
        ops.conv2d_transpose(x, np.ones((3, 3, 2, 3)), np.zeros(3), 1, 0)
    with pytest.raises(ShapeError, match=r"\(2 - 1\) \* 1 - 2 \* 2 \+ 3 must be positive"):
        ops.conv2d_transpose(x, np.ones((3, 3, 2, 3)), np.zeros(2), 1, 2)
