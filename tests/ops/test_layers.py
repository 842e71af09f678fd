"""Affine, activations, maxout and dropout (cs231n_tf.ops.layers)."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import ops
from cs231n_tf.errors import ConfigError, InputTypeError, ShapeError

from .util import assert_gradcheck, assert_same_gradients, away_from_zero, normal


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_affine_matches_matmul_and_its_gradients(rng):
    x, w, b = normal(rng, 2, 3, 4), normal(rng, 12, 5), normal(rng, 5)
    out = ops.affine(x, w, b)
    np.testing.assert_allclose(out, x.reshape(2, 12) @ w + b, rtol=1e-12)
    reference = lambda x, w, b: tf.matmul(tf.reshape(x, [2, -1]), w) + b  # noqa: E731
    assert_same_gradients(ops.affine, reference, [x, w, b], normal(rng, 2, 5))
    # Linear in each input: centred differences are exact, so a larger h only cuts rounding.
    assert_gradcheck(ops.affine, [x, w, b], h=1e-3)


def test_affine_rejects_mismatched_weights(rng):
    with pytest.raises(ShapeError, match="12"):
        ops.affine(normal(rng, 2, 3, 4), normal(rng, 10, 5), normal(rng, 5))
    with pytest.raises(ShapeError):
        ops.affine(normal(rng, 2, 4), normal(rng, 4, 5), normal(rng, 3))


@pytest.mark.parametrize("op, reference", [
    (ops.relu, tf.nn.relu),
    # tf.nn.leaky_relu holds alpha as a float32 attribute, so compare it at a slope float32 holds
    # exactly; the default slope against the closed form.
    (ops.leaky_relu, lambda x: tf.where(x > 0, x, 0.01 * x)),
    (lambda x: ops.leaky_relu(x, alpha=0.25), lambda x: tf.nn.leaky_relu(x, alpha=0.25)),
    (ops.elu, tf.nn.elu),
    (lambda x: ops.elu(x, alpha=0.5), tf.keras.layers.ELU(alpha=0.5, dtype="float64")),
    (ops.sigmoid, tf.math.sigmoid),
    (ops.tanh, tf.math.tanh),
])
def test_activation_matches_tensorflow_forward_gradient_and_numerically(rng, op, reference):
    x = away_from_zero(normal(rng, 4, 5))
    np.testing.assert_allclose(op(x), reference(tf.constant(x)), rtol=1e-12, atol=1e-15)
    assert_same_gradients(op, reference, [x], normal(rng, 4, 5), rtol=1e-12, atol=1e-15)
    assert_gradcheck(op, [x])


def test_relu_gradient_is_zero_at_and_below_zero():
    x = tf.constant([-2.0, 0.0, 3.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = ops.relu(x)
    np.testing.assert_array_equal(tape.gradient(out, x), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_large_inputs(dtype):
    x = tf.constant([-1000.0, -80.0, -1.0, 0.0, 1.0, 80.0, 1000.0], dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = ops.sigmoid(x)
    grad = tape.gradient(out, x)
    assert out.dtype == dtype
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(out, tf.math.sigmoid(x), rtol=1e-6, atol=0)
    assert out[0] >= 0 and out[-1] == 1.0 and grad[0] == 0.0 and grad[-1] == 0.0


def test_prelu_per_channel_matches_keras_prelu(rng):
    x = away_from_zero(normal(rng, 2, 3, 3, 4))
    alpha = rng.uniform(0.05, 0.5, size=4)
    layer = tf.keras.layers.PReLU(shared_axes=[1, 2], dtype="float64")
    layer.build(x.shape)
    layer.set_weights([alpha.reshape(1, 1, 4)])
    dout = normal(rng, 2, 3, 3, 4)
    x_t = tf.constant(x)
    alpha_t = tf.constant(alpha)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x_t, alpha_t])
        mine = ops.prelu(x_t, alpha_t)
        keras = layer(x_t)
        mine_total, keras_total = tf.reduce_sum(mine * dout), tf.reduce_sum(keras * dout)
    np.testing.assert_allclose(mine, keras, rtol=1e-12)
    np.testing.assert_allclose(tape.gradient(mine_total, x_t), tape.gradient(keras_total, x_t), rtol=1e-12)
    np.testing.assert_allclose(tape.gradient(mine_total, alpha_t),
                               tf.reshape(tape.gradient(keras_total, layer.alpha), [4]), rtol=1e-12)
    assert_gradcheck(ops.prelu, [x, alpha])


def test_prelu_scalar_alpha_and_a_variable(rng):
    x = away_from_zero(normal(rng, 3, 4))
    np.testing.assert_allclose(ops.prelu(x, 0.25), np.where(x > 0, x, 0.25 * x), rtol=1e-12)
    assert_gradcheck(ops.prelu, [x, np.array(0.3)])
    alpha = tf.Variable(0.3, dtype=tf.float64)
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(ops.prelu(x, alpha))
    np.testing.assert_allclose(tape.gradient(out, alpha), np.sum(np.minimum(x, 0)), rtol=1e-12)


def test_prelu_rejects_alpha_that_does_not_broadcast(rng):
    with pytest.raises(ShapeError, match="alpha"):
        ops.prelu(normal(rng, 2, 4), np.ones(3))
    with pytest.raises(ShapeError, match="alpha"):
        ops.prelu(normal(rng, 4), np.ones((2, 4)))


def test_maxout_is_the_max_of_affine_pieces(rng):
    x, w, b = normal(rng, 3, 4), normal(rng, 4, 3, 2), normal(rng, 3, 2)
    pieces = np.einsum("nd,dmk->nmk", x, w) + b
    np.testing.assert_allclose(ops.maxout(x, w, b), pieces.max(axis=2), rtol=1e-12)
    reference = lambda x, w, b: tf.reduce_max(tf.einsum("nd,dmk->nmk", x, w) + b, 2)  # noqa: E731
    assert_same_gradients(ops.maxout, reference, [x, w, b], normal(rng, 3, 3))
    assert_gradcheck(ops.maxout, [x, w, b])
    with pytest.raises(ShapeError):
        ops.maxout(x, w, normal(rng, 3, 3))


def test_maxout_gradient_goes_to_the_first_piece_on_ties():
    x = tf.constant([[1.0]])
    w = tf.constant([[[2.0, 2.0]]])
    b = tf.zeros([1, 2])
    with tf.GradientTape() as tape:
        tape.watch(w)
        out = ops.maxout(x, w, b)
    np.testing.assert_array_equal(tape.gradient(out, w), [[[1.0, 0.0]]])


def test_dtypes_are_kept_and_python_numbers_become_float32(rng):
    assert ops.relu(np.ones(3)).dtype == tf.float64
    assert ops.relu(np.ones(3, np.float32)).dtype == tf.float32
    assert ops.relu([1.0, -1.0]).dtype == tf.float32
    assert ops.affine(np.ones((2, 3)), [[1.0]] * 3, [0.0]).dtype == tf.float64
    with pytest.raises(InputTypeError, match="float32"):
        ops.affine(np.ones((2, 3), np.float32), np.ones((3, 1)), np.zeros(1))


def test_ops_run_inside_tf_function_with_gradients(rng):
    x, w, b = normal(rng, 4, 3).astype(np.float32), normal(rng, 3, 2).astype(np.float32), np.zeros(2, np.float32)

    @tf.function
    def step(x, w, b):
        with tf.GradientTape() as tape:
            tape.watch(w)
            out = tf.reduce_sum(ops.sigmoid(ops.relu(ops.affine(x, w, b))))
        return out, tape.gradient(out, w)

    out, grad = step(x, w, b)
    with tf.GradientTape() as tape:
        w_t = tf.constant(w)
        tape.watch(w_t)
        ref = tf.reduce_sum(tf.math.sigmoid(tf.nn.relu(x @ w_t + b)))
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    np.testing.assert_allclose(grad, tape.gradient(ref, w_t), rtol=1e-5, atol=1e-7)


def test_dropout_keeps_the_mean_and_scales_survivors():
    x = np.full((200, 100), 2.0)
    out = np.asarray(ops.dropout(x, 0.3, training=True, seed=1))
    kept = out != 0
    # 20,000 Bernoulli(0.7) draws: the kept fraction is within 0.01 of 0.7 with overwhelming odds.
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out[kept], 2.0 / 0.7, rtol=1e-12)
    assert abs(out.mean() - 2.0) < 0.03


def test_dropout_equals_tensorflow_stateless_dropout():
    # Same stateless generator, same seed, same keep rule (uniform >= rate) and scale 1/(1-rate):
    # TF's own inverted dropout gives the identical float32 output.
    x = tf.constant(np.random.default_rng(9).standard_normal((30, 40)), tf.float32)
    for rate, seed in ((0.3, 5), (0.75, 11)):
        expected = tf.nn.experimental.stateless_dropout(x, rate, seed=[seed, 0])
        np.testing.assert_array_equal(ops.dropout(x, rate, training=True, seed=seed), expected)


def test_dropout_is_identity_at_test_time_and_when_rate_is_zero(rng):
    x = normal(rng, 5, 6)
    np.testing.assert_array_equal(ops.dropout(x, 0.5, training=False), x)
    np.testing.assert_array_equal(ops.dropout(x, 0.0, training=True), x)
    np.testing.assert_array_equal(ops.dropout(x, 0.5, training=tf.constant(False)), x)


def test_dropout_gradient_uses_the_same_mask_and_seed_is_deterministic(rng):
    x = tf.constant(normal(rng, 6, 7))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = ops.dropout(x, 0.4, training=True, seed=7)
    grad = tape.gradient(out, x)
    np.testing.assert_allclose(grad, np.asarray(out) / np.asarray(x), rtol=1e-12)
    np.testing.assert_array_equal(out, ops.dropout(x, 0.4, training=True, seed=7))
    assert_gradcheck(lambda x: ops.dropout(x, 0.4, True, seed=7), [np.asarray(x)])


def test_dropout_with_a_training_tensor_in_tf_function():
    fn = tf.function(lambda x, training: ops.dropout(x, 0.5, training, seed=3))
    x = tf.ones([50, 40])
    np.testing.assert_array_equal(fn(x, tf.constant(False)), x)
    out = fn(x, tf.constant(True)).numpy()
    assert set(np.unique(out)) == {0.0, 2.0}


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_rejects_rates_outside_zero_to_one(rate):
    with pytest.raises(ConfigError, match="drop_rate"):
        ops.dropout(np.ones(3), rate, training=True)


def test_dropout_rejects_non_numbers():
    with pytest.raises(ConfigError, match="drop_rate"):
        ops.dropout(np.ones(3), "0.5", training=True)
