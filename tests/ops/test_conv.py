"""Naive and im2col convolution against tf.nn.conv2d and numerical gradients."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import ops
from cs231n_tf.errors import ConfigError, ShapeError

from .util import assert_gradcheck, assert_same_gradients, normal

CONVS = [ops.conv2d_naive, ops.conv2d_im2col]

# (H, W, KH, KW, stride, pad): every combination divides evenly.
GEOMETRIES = [
    (5, 5, 3, 3, 1, 0),
    (5, 5, 3, 3, 1, 1),
    (5, 5, 3, 3, 2, 1),
    (5, 5, 3, 3, 2, 0),
    (6, 5, 2, 3, 2, 0),
    (5, 5, 1, 1, 2, 0),
    (4, 4, 3, 3, 3, 1),
]


def _tf_conv(stride, pad):
    return lambda x, w, b: tf.nn.conv2d(x, w, stride, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) + b


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("height, width, kh, kw, stride, pad", GEOMETRIES)
def test_conv_matches_tf_conv2d_forward_and_gradients(conv, height, width, kh, kw, stride, pad):
    rng = np.random.default_rng(height * 100 + kh * 10 + stride + pad)
    x, w, b = normal(rng, 2, height, width, 3), normal(rng, kh, kw, 3, 4), normal(rng, 4)
    reference = _tf_conv(stride, pad)
    out = conv(x, w, b, stride, pad)
    np.testing.assert_allclose(out, reference(x, w, b), rtol=1e-10, atol=1e-12)
    upstream = normal(rng, *out.shape)
    assert_same_gradients(lambda x, w, b: conv(x, w, b, stride, pad), reference, [x, w, b], upstream)


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("stride, pad", [(1, 1), (2, 1)])
def test_conv_gradients_match_numerical(conv, stride, pad):
    rng = np.random.default_rng(stride)
    x, w, b = normal(rng, 2, 5, 5, 2), normal(rng, 3, 3, 2, 2), normal(rng, 2)
    # Convolution is linear in each input, so centred differences are exact for any h; a larger h
    # only shrinks their rounding error.
    assert_gradcheck(lambda x, w, b: conv(x, w, b, stride, pad), [x, w, b], h=1e-3)


@pytest.mark.parametrize("conv", CONVS)
def test_conv_float32_and_tf_function_with_unknown_batch(conv):
    rng = np.random.default_rng(3)
    x = normal(rng, 3, 4, 4, 2).astype(np.float32)
    w, b = normal(rng, 3, 3, 2, 4).astype(np.float32), normal(rng, 4).astype(np.float32)
    fn = tf.function(lambda x: conv(x, w, b, 1, 1),
                     input_signature=[tf.TensorSpec([None, 4, 4, 2], tf.float32)])
    out = fn(x)
    assert out.dtype == tf.float32 and out.shape == (3, 4, 4, 4)
    np.testing.assert_allclose(out, _tf_conv(1, 1)(x, w, b), rtol=1e-5, atol=1e-5)


def test_im2col_with_unknown_spatial_size_in_tf_function():
    rng = np.random.default_rng(4)
    x = normal(rng, 2, 7, 5, 2).astype(np.float32)
    w, b = normal(rng, 3, 3, 2, 3).astype(np.float32), np.zeros(3, np.float32)
    fn = tf.function(lambda x: ops.conv2d_im2col(x, w, b, 2, 1),
                     input_signature=[tf.TensorSpec([None, None, None, 2], tf.float32)])
    np.testing.assert_allclose(fn(x), _tf_conv(2, 1)(x, w, b), rtol=1e-5, atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="divisible by stride"):
        fn(normal(rng, 2, 6, 5, 2).astype(np.float32))


@pytest.mark.parametrize("conv", CONVS)
def test_conv_errors_name_the_bad_numbers(conv):
    rng = np.random.default_rng(5)
    x, w, b = normal(rng, 1, 5, 5, 3), normal(rng, 3, 3, 3, 2), normal(rng, 2)
    with pytest.raises(ShapeError, match=r"\(5 \+ 2\*0 - 3\) = 2 is not divisible by stride 3"):
        conv(x, w, b, stride=3)
    with pytest.raises(ShapeError, match="channels"):
        conv(x, normal(rng, 3, 3, 4, 2), b)
    with pytest.raises(ShapeError, match="C_out"):
        conv(x, w, normal(rng, 3))
    with pytest.raises(ShapeError, match="larger than the padded input"):
        conv(x, normal(rng, 7, 7, 3, 2), b)
    with pytest.raises(ShapeError, match="rank 4"):
        conv(x[0], w, b)
    with pytest.raises(ConfigError, match="stride"):
        conv(x, w, b, stride=0)
    with pytest.raises(ConfigError, match="pad"):
        conv(x, w, b, pad=-1)
