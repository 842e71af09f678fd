"""Batch, spatial batch and layer normalization against Keras and numerical gradients."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import ops
from cs231n_tf.errors import ConfigError, ShapeError

from .util import assert_gradcheck, normal


def _keras_batchnorm(x, gamma, beta, mean, var):
    layer = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([gamma, beta, mean, var])
    return layer


def _params(rng, features):
    return (normal(rng, features), normal(rng, features), normal(rng, features),
            rng.uniform(0.5, 2.0, features))


def _compare_with_keras(op, x, training, rng):
    """Forward, running statistics and gradients (x, gamma, beta) against Keras."""
    gamma, beta, mean, var = _params(rng, x.shape[-1])
    layer = _keras_batchnorm(x, gamma, beta, mean, var)
    dout = normal(rng, *x.shape)
    x_t, gamma_t, beta_t = tf.constant(x), tf.constant(gamma), tf.constant(beta)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x_t, gamma_t, beta_t])
        out, new_mean, new_var = op(x_t, gamma_t, beta_t, mean, var, training)
        keras_out = layer(x_t, training=training)
        mine, theirs = tf.reduce_sum(out * dout), tf.reduce_sum(keras_out * dout)
    np.testing.assert_allclose(out, keras_out, rtol=1e-9, atol=1e-12)
    # Keras forms its decay 1 - momentum in float32 (0.1 -> 0.10000000149), hence 1e-7.
    np.testing.assert_allclose(new_mean, layer.moving_mean, rtol=1e-7)
    np.testing.assert_allclose(new_var, layer.moving_variance, rtol=1e-7)
    got = tape.gradient(mine, [x_t, gamma_t, beta_t])
    want = tape.gradient(theirs, [x_t, layer.gamma, layer.beta])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_matches_keras(training):
    rng = np.random.default_rng(0)
    _compare_with_keras(ops.batchnorm, 3 * normal(rng, 6, 4) + 1, training, rng)


@pytest.mark.parametrize("training", [True, False])
def test_spatial_batchnorm_matches_keras(training):
    rng = np.random.default_rng(1)
    _compare_with_keras(ops.spatial_batchnorm, 2 * normal(rng, 2, 3, 3, 4) - 1, training, rng)


def test_batchnorm_training_statistics_in_closed_form():
    rng = np.random.default_rng(2)
    x = 5 * normal(rng, 50, 3) + 7
    out, new_mean, new_var = ops.batchnorm(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True,
                                           momentum=0.8)
    np.testing.assert_allclose(np.mean(out, 0), 0, atol=1e-12)
    np.testing.assert_allclose(np.var(out, 0), x.var(0) / (x.var(0) + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(new_mean, 0.2 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(new_var, 0.8 + 0.2 * x.var(0), rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients_match_numerical(training):
    # The course accepts 1e-5 for batchnorm; the closed form does far better, so hold it to 1e-7.
    rng = np.random.default_rng(3)
    x, (gamma, beta, mean, var) = normal(rng, 5, 4), _params(rng, 4)
    assert_gradcheck(lambda x, g, b: ops.batchnorm(x, g, b, mean, var, training)[0], [x, gamma, beta])
    x4 = normal(rng, 2, 3, 3, 4)
    assert_gradcheck(lambda x, g, b: ops.spatial_batchnorm(x, g, b, mean, var, training)[0],
                     [x4, gamma, beta])


def test_batchnorm_training_flag_as_a_tensor_in_tf_function():
    rng = np.random.default_rng(4)
    x, (gamma, beta, mean, var) = normal(rng, 6, 3), _params(rng, 3)
    fn = tf.function(lambda x, training: ops.batchnorm(x, gamma, beta, mean, var, training))
    for flag in (True, False):
        for got, want in zip(fn(x, tf.constant(flag)), ops.batchnorm(x, gamma, beta, mean, var, flag)):
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_batchnorm_running_statistics_carry_no_gradient():
    rng = np.random.default_rng(5)
    x = tf.constant(normal(rng, 4, 3))
    with tf.GradientTape() as tape:
        tape.watch(x)
        _, new_mean, new_var = ops.batchnorm(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True)
        total = tf.reduce_sum(new_mean) + tf.reduce_sum(new_var)
    assert tape.gradient(total, x) is None


def test_batchnorm_errors():
    x = np.ones((4, 3))
    with pytest.raises(ShapeError, match="gamma"):
        ops.batchnorm(x, np.ones(2), np.zeros(3), np.zeros(3), np.ones(3), True)
    with pytest.raises(ShapeError, match="rank 2"):
        ops.batchnorm(np.ones((2, 2, 2, 3)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True)
    with pytest.raises(ShapeError, match="rank 4"):
        ops.spatial_batchnorm(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True)
    with pytest.raises(ConfigError, match="momentum"):
        ops.batchnorm(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True, momentum=1.5)
    with pytest.raises(ConfigError, match="eps"):
        ops.batchnorm(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True, eps=0)


def test_layernorm_matches_keras_and_numerical_gradients():
    rng = np.random.default_rng(6)
    x, gamma, beta = 3 * normal(rng, 4, 5) + 2, normal(rng, 5), normal(rng, 5)
    layer = tf.keras.layers.LayerNormalization(epsilon=1e-5, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([gamma, beta])
    dout = normal(rng, 4, 5)
    x_t, gamma_t, beta_t = tf.constant(x), tf.constant(gamma), tf.constant(beta)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x_t, gamma_t, beta_t])
        out, keras_out = ops.layernorm(x_t, gamma_t, beta_t), layer(x_t)
        mine, theirs = tf.reduce_sum(out * dout), tf.reduce_sum(keras_out * dout)
    np.testing.assert_allclose(out, keras_out, rtol=1e-9, atol=1e-12)
    for g, w in zip(tape.gradient(mine, [x_t, gamma_t, beta_t]),
                    tape.gradient(theirs, [x_t, layer.gamma, layer.beta])):
        np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-11)
    assert_gradcheck(ops.layernorm, [x, gamma, beta])
    with pytest.raises(ShapeError, match="beta"):
        ops.layernorm(x, gamma, np.zeros(4))
