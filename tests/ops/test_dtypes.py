"""Every op in float32 and float64: the dtype is kept, float32 agrees with float64, gradients too."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import errors as ops_errors, ops

rng = np.random.default_rng(0)


def _r(*shape):
    return rng.standard_normal(shape)


_LABELS = np.array([0, 2, 1])
_SEQ_LABELS = np.array([[0, 2], [1, 1], [2, 0]])
_POOLED, _ARGMAX = ops.max_pool_with_argmax(_r(1, 4, 4, 2), 2, 2, 2)

# name -> (op, float inputs); non-float arguments are bound in the op.
CASES = {
    "affine": (ops.affine, [_r(3, 2, 2), _r(4, 5), _r(5)]),
    "relu": (ops.relu, [_r(3, 4)]),
    "leaky_relu": (ops.leaky_relu, [_r(3, 4)]),
    "prelu": (ops.prelu, [_r(3, 4), _r(4)]),
    "elu": (ops.elu, [_r(3, 4)]),
    "sigmoid": (ops.sigmoid, [_r(3, 4)]),
    "tanh": (ops.tanh, [_r(3, 4)]),
    "maxout": (ops.maxout, [_r(3, 4), _r(4, 2, 3), _r(2, 3)]),
    "dropout": (lambda x: ops.dropout(x, 0.5, True, seed=1), [_r(3, 4)]),
    "conv2d_naive": (lambda x, w, b: ops.conv2d_naive(x, w, b, 2, 1), [_r(1, 5, 5, 2), _r(3, 3, 2, 3), _r(3)]),
    "conv2d_im2col": (lambda x, w, b: ops.conv2d_im2col(x, w, b, 2, 1), [_r(1, 5, 5, 2), _r(3, 3, 2, 3), _r(3)]),
    "max_pool": (lambda x: ops.max_pool(x, 2, 2, 2), [_r(1, 4, 4, 2)]),
    "avg_pool": (lambda x: ops.avg_pool(x, 2, 2, 2), [_r(1, 4, 4, 2)]),
    "batchnorm": (lambda x, g, b: ops.batchnorm(x, g, b, np.zeros(3), np.ones(3), True)[0],
                  [_r(4, 3), _r(3), _r(3)]),
    "spatial_batchnorm": (lambda x, g, b: ops.spatial_batchnorm(x, g, b, np.zeros(3), np.ones(3), False)[0],
                          [_r(2, 2, 2, 3), _r(3), _r(3)]),
    "layernorm": (ops.layernorm, [_r(4, 3), _r(3), _r(3)]),
    "svm_loss": (lambda s: ops.svm_loss(s, _LABELS), [_r(3, 4)]),
    "softmax_loss": (lambda s: ops.softmax_loss(s, _LABELS), [_r(3, 4)]),
    "temporal_softmax_loss": (lambda s: ops.temporal_softmax_loss(s, _SEQ_LABELS, _SEQ_LABELS > 0),
                              [_r(3, 2, 4)]),
    "rnn_step": (ops.rnn_step, [_r(2, 3), _r(2, 2), _r(3, 2), _r(2, 2), _r(2)]),
    "rnn": (ops.rnn, [_r(2, 3, 3), _r(2, 2), _r(3, 2), _r(2, 2), _r(2)]),
    "lstm_step": (lambda *a: ops.lstm_step(*a)[0], [_r(2, 3), _r(2, 2), _r(2, 2), _r(3, 8), _r(2, 8), _r(8)]),
    "lstm": (ops.lstm, [_r(2, 3, 3), _r(2, 2), _r(3, 8), _r(2, 8), _r(8)]),
    "word_embedding": (lambda w: ops.word_embedding(_SEQ_LABELS, w), [_r(3, 4)]),
    "temporal_affine": (ops.temporal_affine, [_r(2, 3, 3), _r(3, 4), _r(4)]),
    "nearest_upsample": (lambda x: ops.nearest_upsample(x, 2), [_r(1, 2, 2, 2)]),
    "bed_of_nails_upsample": (lambda x: ops.bed_of_nails_upsample(x, 2), [_r(1, 2, 2, 2)]),
    "max_pool_with_argmax": (lambda x: ops.max_pool_with_argmax(x, 2, 2, 2)[0], [_r(1, 4, 4, 2)]),
    "max_unpool": (lambda x: ops.max_unpool(x, _ARGMAX, (1, 4, 4, 2)), [np.asarray(_POOLED)]),
    "conv2d_transpose": (lambda x, w, b: ops.conv2d_transpose(x, w, b, 2, 1), [_r(1, 3, 3, 2), _r(3, 3, 3, 2), _r(3)]),
}


def _run(op, inputs, dtype):
    """The op's output and the gradients of ``sum(out * upstream)``, all in ``dtype``.

    The upstream weights are fixed and uneven: with all ones the dx of batchnorm and layernorm is
    identically zero, which would hide a wrong float32 path.
    """
    tensors = [tf.constant(v, dtype) for v in inputs]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        out = op(*tensors)
        upstream = np.random.default_rng(1).uniform(0.5, 1.5, out.shape)
        total = tf.reduce_sum(out * tf.constant(upstream, dtype))
    return out, tape.gradient(total, tensors)


def test_every_exported_op_is_covered():
    exported = set(ops.__all__) - {"check_gradients", "numerical_gradient", "relative_error"}
    assert exported == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_keeps_dtype_and_agrees_with_float64(name):
    op, inputs = CASES[name]
    out32, grads32 = _run(op, inputs, tf.float32)
    out64, grads64 = _run(op, inputs, tf.float64)
    assert out32.dtype == tf.float32 and out64.dtype == tf.float64
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    for g32, g64 in zip(grads32, grads64):
        assert g32.dtype == tf.float32 and g64.dtype == tf.float64
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)


def test_numpy_follows_tensor_dtype_but_two_tensor_dtypes_are_refused():
    x = tf.constant(_r(4, 3), tf.float32)
    out, mean, var = ops.batchnorm(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True)
    assert out.dtype == mean.dtype == var.dtype == tf.float32
    with pytest.raises(ops_errors.InputTypeError, match="mix floating dtypes"):
        ops.affine(x, tf.constant(_r(3, 2), tf.float64), np.zeros(2))
