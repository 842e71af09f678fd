"""RNN and LSTM (step and sequence), word embeddings and temporal affine against Keras/TF."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import ops
from cs231n_tf.errors import ConfigError, ShapeError

from .util import assert_gradcheck, assert_same_gradients, normal

N, T, D, H = 2, 3, 4, 3


def _lstm_weights(rng, input_dim):
    """``wx (D, 4H)``, ``wh (H, 4H)``, ``b (4H,)`` scaled by 1/sqrt(fan-in), as LSTMs are initialised.

    This keeps the gates out of saturation. With unscaled N(0, 1) weights the pre-activations have
    a standard deviation near 3, some gradient entries fall to ~1e-6, and the rounding error of
    centred differences at h = 1e-5 (~1e-11) alone is then above a 1e-7 relative error.
    """
    return (normal(rng, input_dim, 4 * H) / np.sqrt(input_dim), normal(rng, H, 4 * H) / np.sqrt(H),
            0.5 * normal(rng, 4 * H))


def _keras_lstm_order(w):
    """Columns i, f, o, g (ours) -> i, f, g, o (Keras calls g the candidate c)."""
    i, f, o, g = np.split(w, 4, axis=-1)
    return np.concatenate([i, f, g, o], axis=-1)


def _compare_with_keras(mine, layer, call_keras, inputs, weights, upstream):
    """Forward and gradients of ``mine(*inputs, *weights)`` against a Keras layer holding ``weights``.

    ``call_keras(layer, *inputs)`` returns the Keras output; the layer's weights must be in the
    same order as ``weights``.
    """
    tensors = [tf.constant(v) for v in inputs]
    weight_tensors = [tf.constant(w) for w in weights]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(tensors + weight_tensors)
        out = mine(*tensors, *weight_tensors)
        keras_out = call_keras(layer, *tensors)
        total, keras_total = tf.reduce_sum(out * upstream), tf.reduce_sum(keras_out * upstream)
    np.testing.assert_allclose(out, keras_out, rtol=1e-10, atol=1e-12)
    got = tape.gradient(total, tensors + weight_tensors)
    want = tape.gradient(keras_total, tensors + layer.trainable_weights)
    return got, want


def _assert_all_close(got, want, transform=None):
    for k, (g, w) in enumerate(zip(got, want)):
        w = np.asarray(w)
        if transform is not None and k >= len(got) - 3:
            w = transform(w)
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


def test_rnn_step_matches_keras_simple_rnn_cell():
    rng = np.random.default_rng(0)
    x, h = normal(rng, N, D), normal(rng, N, H)
    wx, wh, b = normal(rng, D, H), normal(rng, H, H), normal(rng, H)
    cell = tf.keras.layers.SimpleRNNCell(H, dtype="float64")
    cell.build((N, D))
    cell.set_weights([wx, wh, b])
    got, want = _compare_with_keras(ops.rnn_step, cell, lambda c, x, h: c(x, [h])[0], [x, h],
                                    [wx, wh, b], normal(rng, N, H))
    _assert_all_close(got, want)
    assert_gradcheck(ops.rnn_step, [x, h, wx, wh, b])


def test_rnn_matches_keras_simple_rnn():
    rng = np.random.default_rng(1)
    x, h0 = normal(rng, N, T, D), normal(rng, N, H)
    wx, wh, b = normal(rng, D, H), normal(rng, H, H), normal(rng, H)
    layer = tf.keras.layers.SimpleRNN(H, return_sequences=True, dtype="float64")
    layer.build((N, T, D))
    layer.set_weights([wx, wh, b])
    got, want = _compare_with_keras(ops.rnn, layer, lambda l, x, h0: l(x, initial_state=[h0]),
                                    [x, h0], [wx, wh, b], normal(rng, N, T, H))
    _assert_all_close(got, want)
    assert_gradcheck(ops.rnn, [x, h0, wx, wh, b])


def test_lstm_step_matches_keras_lstm_cell_with_gates_reordered():
    rng = np.random.default_rng(2)
    x, h, c = normal(rng, N, D), normal(rng, N, H), normal(rng, N, H)
    wx, wh, b = _lstm_weights(rng, D)
    cell = tf.keras.layers.LSTMCell(H, dtype="float64")
    cell.build((N, D))
    cell.set_weights([_keras_lstm_order(wx), _keras_lstm_order(wh), _keras_lstm_order(b)])
    dh, dc = normal(rng, N, H), normal(rng, N, H)
    tensors = [tf.constant(v) for v in (x, h, c, wx, wh, b)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(tensors)
        next_h, next_c = ops.lstm_step(*tensors)
        keras_h, (_, keras_c) = cell(tensors[0], [tensors[1], tensors[2]])
        total = tf.reduce_sum(next_h * dh) + tf.reduce_sum(next_c * dc)
        keras_total = tf.reduce_sum(keras_h * dh) + tf.reduce_sum(keras_c * dc)
    np.testing.assert_allclose(next_h, keras_h, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(next_c, keras_c, rtol=1e-10, atol=1e-12)
    got = tape.gradient(total, tensors)
    want = tape.gradient(keras_total, tensors[:3] + cell.trainable_weights)
    _assert_all_close(got, want, transform=_keras_lstm_order_inverse)
    assert_gradcheck(ops.lstm_step, [x, h, c, wx, wh, b])


def _keras_lstm_order_inverse(w):
    i, f, g, o = np.split(w, 4, axis=-1)
    return np.concatenate([i, f, o, g], axis=-1)


def test_lstm_step_gradient_through_next_h_only():
    rng = np.random.default_rng(3)
    inputs = [normal(rng, N, D), normal(rng, N, H), normal(rng, N, H), *_lstm_weights(rng, D)]
    assert_gradcheck(lambda *a: ops.lstm_step(*a)[0], inputs)


def test_lstm_matches_keras_lstm_with_zero_initial_cell():
    rng = np.random.default_rng(4)
    x, h0 = normal(rng, N, T, D), normal(rng, N, H)
    wx, wh, b = _lstm_weights(rng, D)
    layer = tf.keras.layers.LSTM(H, return_sequences=True, dtype="float64")
    layer.build((N, T, D))
    layer.set_weights([_keras_lstm_order(wx), _keras_lstm_order(wh), _keras_lstm_order(b)])
    got, want = _compare_with_keras(
        ops.lstm, layer, lambda l, x, h0: l(x, initial_state=[h0, tf.zeros_like(h0)]),
        [x, h0], [wx, wh, b], normal(rng, N, T, H),
    )
    _assert_all_close(got, want, transform=_keras_lstm_order_inverse)
    assert_gradcheck(ops.lstm, [x, h0, wx, wh, b])


@pytest.mark.parametrize("op, gates", [(ops.rnn, 1), (ops.lstm, 4)])
def test_recurrent_layers_accept_unknown_batch_and_time_in_tf_function(op, gates):
    rng = np.random.default_rng(5)
    wx, wh, b = (normal(rng, D, gates * H).astype(np.float32), normal(rng, H, gates * H).astype(np.float32),
                 normal(rng, gates * H).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, None, D], tf.float32),
                                  tf.TensorSpec([None, H], tf.float32)])
    def run(x, h0):
        with tf.GradientTape() as tape:
            tape.watch(x)
            h = op(x, h0, wx, wh, b)
        return h, tape.gradient(h, x)

    x, h0 = normal(rng, 3, 5, D).astype(np.float32), normal(rng, 3, H).astype(np.float32)
    h, dx = run(x, h0)
    eager_x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(eager_x)
        eager_h = op(eager_x, h0, wx, wh, b)
    np.testing.assert_allclose(h, eager_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, tape.gradient(eager_h, eager_x), rtol=1e-5, atol=1e-6)


def test_recurrent_shape_errors():
    rng = np.random.default_rng(6)
    x, h0 = normal(rng, N, T, D), normal(rng, N, H)
    with pytest.raises(ShapeError, match="wx"):
        ops.rnn(x, h0, normal(rng, D + 1, H), normal(rng, H, H), normal(rng, H))
    with pytest.raises(ShapeError, match="4 x H"):
        ops.lstm(x, h0, normal(rng, D, 3 * H), normal(rng, H, 4 * H), normal(rng, 4 * H))
    with pytest.raises(ShapeError, match="rank 3"):
        ops.rnn(x[:, 0], h0, normal(rng, D, H), normal(rng, H, H), normal(rng, H))


def test_word_embedding_matches_embedding_lookup_and_scatters_gradients():
    rng = np.random.default_rng(7)
    w = normal(rng, 5, 3)
    x = np.array([[0, 2, 2], [4, 1, 0]])
    np.testing.assert_array_equal(ops.word_embedding(x, w), tf.nn.embedding_lookup(w, x))
    assert_same_gradients(lambda w: ops.word_embedding(x, w), lambda w: tf.nn.embedding_lookup(w, x),
                          [w], normal(rng, 2, 3, 3))
    w_t = tf.constant(w)
    with tf.GradientTape() as tape:
        tape.watch(w_t)
        out = tf.reduce_sum(ops.word_embedding(x, w_t))
    # Row 2 and row 0 are used twice, row 3 never.
    np.testing.assert_array_equal(tape.gradient(out, w_t)[:, 0], [2, 1, 2, 0, 1])
    assert_gradcheck(lambda w: ops.word_embedding(x, w), [w])
    with pytest.raises(ConfigError, match=r"\[0, 5\); got 5"):
        ops.word_embedding([[5]], w)


def test_temporal_affine_matches_einsum_and_numerical_gradients():
    rng = np.random.default_rng(8)
    x, w, b = normal(rng, N, T, D), normal(rng, D, 5), normal(rng, 5)
    reference = lambda x, w, b: tf.einsum("ntd,dm->ntm", x, w) + b  # noqa: E731
    np.testing.assert_allclose(ops.temporal_affine(x, w, b), reference(x, w, b), rtol=1e-12)
    assert_same_gradients(ops.temporal_affine, reference, [x, w, b], normal(rng, N, T, 5))
    # Linear in each input: exact centred differences for any h.
    assert_gradcheck(ops.temporal_affine, [x, w, b], h=1e-3)
    with pytest.raises(ShapeError):
        ops.temporal_affine(x, normal(rng, D + 1, 5), b)
