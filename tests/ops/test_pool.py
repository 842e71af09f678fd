"""Max and average pooling against tf.nn.max_pool2d / avg_pool2d and numerical gradients."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import ops
from cs231n_tf.errors import ConfigError, ShapeError

from .util import assert_gradcheck, assert_same_gradients, normal

# (H, W, pool_height, pool_width, stride): disjoint, overlapping and rectangular windows.
GEOMETRIES = [(4, 4, 2, 2, 2), (5, 5, 3, 3, 2), (5, 5, 3, 3, 1), (4, 6, 2, 3, 1), (6, 6, 3, 3, 3)]

POOLS = [(ops.max_pool, tf.nn.max_pool2d), (ops.avg_pool, tf.nn.avg_pool2d)]


def _reference(tf_pool, pool_height, pool_width, stride):
    return lambda x: tf_pool(x, (pool_height, pool_width), stride, "VALID")


@pytest.mark.parametrize("pool, tf_pool", POOLS)
@pytest.mark.parametrize("height, width, pool_height, pool_width, stride", GEOMETRIES)
def test_pool_matches_tensorflow_forward_and_gradients(pool, tf_pool, height, width, pool_height,
                                                       pool_width, stride):
    rng = np.random.default_rng(height + pool_width + stride)
    x = normal(rng, 2, height, width, 3)
    reference = _reference(tf_pool, pool_height, pool_width, stride)
    out = pool(x, pool_height, pool_width, stride)
    np.testing.assert_allclose(out, reference(tf.constant(x)), rtol=1e-12)
    assert_same_gradients(lambda x: pool(x, pool_height, pool_width, stride), reference, [x],
                          normal(rng, *out.shape))


@pytest.mark.parametrize("pool", [ops.max_pool, ops.avg_pool])
@pytest.mark.parametrize("stride", [1, 2])
def test_pool_gradients_match_numerical(pool, stride):
    x = normal(np.random.default_rng(stride), 2, 5, 5, 2)
    assert_gradcheck(lambda x: pool(x, 3, 3, stride), [x])


def test_max_pool_gradient_goes_to_the_first_maximum_on_ties():
    x = tf.constant([[1.0, 3.0], [3.0, 3.0]])[None, :, :, None]
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = ops.max_pool(x, 2, 2, 2)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == 3.0
    np.testing.assert_array_equal(tape.gradient(out, x)[0, :, :, 0], [[0.0, 1.0], [0.0, 0.0]])


def test_pool_keeps_float32():
    x = np.ones((1, 4, 4, 1), np.float32)
    assert ops.max_pool(x, 2, 2, 2).dtype == tf.float32
    assert ops.avg_pool(x, 2, 2, 2).dtype == tf.float32


@pytest.mark.parametrize("pool", [ops.max_pool, ops.avg_pool])
def test_pool_errors(pool):
    x = np.ones((1, 5, 5, 2))
    with pytest.raises(ShapeError, match=r"\(5 \+ 2\*0 - 2\) = 3 is not divisible by stride 2"):
        pool(x, 2, 2, 2)
    with pytest.raises(ShapeError, match="rank 4"):
        pool(np.ones((5, 5)), 1, 1, 1)
    with pytest.raises(ConfigError, match="pool_height"):
        pool(x, 0, 2, 1)
    with pytest.raises(ConfigError, match="stride"):
        pool(x, 2, 2, 1.5)
