"""Shared helpers for the ops tests."""

import numpy as np
import tensorflow as tf

from cs231n_tf.ops import check_gradients


def normal(rng, *shape):
    return rng.standard_normal(shape)


def away_from_zero(values, gap=0.1):
    """Shift values away from 0 so a kink (ReLU and friends) is never within a finite difference."""
    return np.sign(values) * (gap + np.abs(values))


def assert_gradcheck(op, inputs, tol=1e-7, **kwargs):
    """Every checked input's hand-written gradient matches the numerical one within ``tol``."""
    errors = check_gradients(op, inputs, **kwargs)
    assert errors and max(errors.values()) < tol, errors
    return errors


def tape_gradients(fn, inputs, upstream):
    """Gradients of ``sum(fn(*inputs) * upstream)`` with respect to every input, by GradientTape."""
    tensors = [tf.convert_to_tensor(v) for v in inputs]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        out = fn(*tensors)
        total = tf.reduce_sum(out * tf.cast(upstream, out.dtype))
    return [tf.convert_to_tensor(g) for g in tape.gradient(total, tensors)]


def assert_same_gradients(mine, reference, inputs, upstream, rtol=1e-9, atol=1e-10):
    """Hand-written gradients equal TensorFlow's autodiff of the reference op."""
    for got, want in zip(tape_gradients(mine, inputs, upstream),
                         tape_gradients(reference, inputs, upstream)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
