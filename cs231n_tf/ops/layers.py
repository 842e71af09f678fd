"""Fully connected layers, activation functions and dropout (lectures 4, 6, 7; assignments 1-2).

Every op's backward pass is written out by hand with ``tf.custom_gradient``.
"""

import numbers

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, ShapeError
from cs231n_tf.ops._util import branch, check_dim, check_rank, float_tensors, real_number


def affine(x, w, b):
    """Fully connected layer ``out = x_flat @ w + b``.

    Shapes: ``x (N, d1, ..., dk)`` is flattened to ``(N, D)`` with ``D = d1 * ... * dk``;
    ``w (D, M)``, ``b (M,)`` -> ``out (N, M)``. Backward: ``dx = dout @ w^T`` (reshaped back to
    ``x``'s shape), ``dw = x_flat^T @ dout``, ``db = sum_n dout``.
    """
    x, w, b = float_tensors(x, w, b)
    if x.shape.rank is None or x.shape.rank < 1:
        raise ShapeError(f"affine: x must be (N, d1, ..., dk), got shape {x.shape}")
    check_rank(w, 2, "w", "(D, M)")
    check_rank(b, 1, "b", "(M,)")
    features = x.shape[1:].num_elements()
    check_dim(features, w.shape[0], f"affine: x's features per example (x shape {x.shape}) vs w's D")
    check_dim(b.shape[0], w.shape[1], f"affine: b's length vs w's M (w shape {w.shape})")

    @tf.custom_gradient
    def _affine(x, w, b):
        x_flat = tf.reshape(x, [tf.shape(x)[0], -1])

        def grad(dout):
            dx = tf.reshape(tf.matmul(dout, w, transpose_b=True), tf.shape(x))
            dw = tf.matmul(x_flat, dout, transpose_a=True)
            return dx, dw, tf.reduce_sum(dout, 0)

        return tf.matmul(x_flat, w) + b, grad

    return _affine(x, w, b)


def relu(x):
    """ReLU ``max(0, x)``, any shape. Backward: ``dout`` where ``x > 0``, else 0 (also at 0)."""
    (x,) = float_tensors(x)

    @tf.custom_gradient
    def _relu(x):
        positive = x > 0

        def grad(dout):
            return tf.where(positive, dout, tf.zeros_like(dout))

        return tf.where(positive, x, tf.zeros_like(x)), grad

    return _relu(x)


def leaky_relu(x, alpha=0.01):
    """Leaky ReLU ``x if x > 0 else alpha * x``, any shape; ``alpha`` a fixed Python number."""
    (x,) = float_tensors(x)
    alpha = tf.constant(real_number(alpha, "alpha"), x.dtype)

    @tf.custom_gradient
    def _leaky_relu(x):
        positive = x > 0

        def grad(dout):
            return tf.where(positive, dout, alpha * dout)

        return tf.where(positive, x, alpha * x), grad

    return _leaky_relu(x)


def _sum_to_shape(grad, shape):
    """Undo broadcasting: sum ``grad`` over the axes where a ``shape``-d input was broadcast."""
    leading = grad.shape.rank - len(shape)
    axes = list(range(leading)) + [leading + i for i, d in enumerate(shape) if d == 1]
    return tf.reshape(tf.reduce_sum(grad, axes), shape)


def prelu(x, alpha):
    """Parametric ReLU (He et al. 2015): ``x if x > 0 else alpha * x`` with a learned ``alpha``.

    ``alpha`` is a scalar or any shape broadcastable to ``x`` without enlarging it, e.g. ``(C,)``
    for one slope per channel of an NHWC ``x``. Backward: ``dx = dout`` where ``x > 0`` else
    ``alpha * dout``; ``dalpha = sum of dout * x over the non-positive x``, summed over the axes
    ``alpha`` is broadcast along.
    """
    x, alpha = float_tensors(x, alpha)
    if alpha.shape.rank is None or not alpha.shape.is_fully_defined():
        raise ShapeError(f"prelu: alpha's shape must be static, got {alpha.shape}")
    try:
        broadcast = tf.broadcast_static_shape(x.shape, alpha.shape)
    except ValueError:
        broadcast = None
    if broadcast is None or broadcast.rank != x.shape.rank or not broadcast.is_compatible_with(x.shape):
        raise ShapeError(f"prelu: alpha shape {alpha.shape} must broadcast to x shape {x.shape}")
    alpha_shape = alpha.shape.as_list()

    @tf.custom_gradient
    def _prelu(x, alpha):
        positive = x > 0
        negative_part = tf.where(positive, tf.zeros_like(x), x)

        def grad(dout):
            dx = tf.where(positive, dout, alpha * dout)
            dalpha = _sum_to_shape(dout * negative_part, alpha_shape)
            return dx, dalpha

        return tf.where(positive, x, alpha * x), grad

    return _prelu(x, alpha)


def elu(x, alpha=1.0):
    """ELU (Clevert et al. 2015): ``x if x > 0 else alpha * (exp(x) - 1)``, any shape.

    Backward: ``dout`` where ``x > 0``, else ``dout * alpha * exp(x) = dout * (out + alpha)``.
    """
    (x,) = float_tensors(x)
    alpha = tf.constant(real_number(alpha, "alpha"), x.dtype)

    @tf.custom_gradient
    def _elu(x):
        positive = x > 0
        # expm1 of min(x, 0): exact for small |x|, and no overflow in the discarded branch.
        out = tf.where(positive, x, alpha * tf.math.expm1(tf.minimum(x, 0)))

        def grad(dout):
            return tf.where(positive, dout, dout * (out + alpha))

        return out, grad

    return _elu(x)


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, any shape, stable for large ``|x|``.

    With ``z = exp(-|x|) <= 1`` (never overflows): ``1 / (1 + z)`` for ``x >= 0`` and
    ``z / (1 + z)`` for ``x < 0``. Backward: ``dout * s * (1 - s)``.
    """
    (x,) = float_tensors(x)

    @tf.custom_gradient
    def _sigmoid(x):
        z = tf.exp(-tf.abs(x))
        out = tf.where(x >= 0, 1 / (1 + z), z / (1 + z))

        def grad(dout):
            return dout * out * (1 - out)

        return out, grad

    return _sigmoid(x)


def tanh(x):
    """Hyperbolic tangent, any shape. Backward: ``dout * (1 - tanh(x)^2)``."""
    (x,) = float_tensors(x)

    @tf.custom_gradient
    def _tanh(x):
        out = tf.math.tanh(x)

        def grad(dout):
            return dout * (1 - tf.square(out))

        return out, grad

    return _tanh(x)


def maxout(x, w, b):
    """Maxout (Goodfellow et al. 2013): the max of ``K`` affine pieces.

    Shapes: ``x (N, D)``, ``w (D, M, K)``, ``b (M, K)`` -> ``out (N, M)`` with
    ``out[n, m] = max_k (x[n] @ w[:, m, k] + b[m, k])``. Backward: the upstream gradient goes
    to the winning piece only (the first on ties), then through its affine map.
    """
    x, w, b = float_tensors(x, w, b)
    check_rank(x, 2, "x", "(N, D)")
    check_rank(w, 3, "w", "(D, M, K)")
    check_rank(b, 2, "b", "(M, K)")
    check_dim(x.shape[1], w.shape[0], f"maxout: x's D vs w's D (w shape {w.shape})")
    check_dim(b.shape[0], w.shape[1], f"maxout: b's M vs w's M (w shape {w.shape})")
    check_dim(b.shape[1], w.shape[2], f"maxout: b's K vs w's K (w shape {w.shape})")

    @tf.custom_gradient
    def _maxout(x, w, b):
        pieces = tf.einsum("nd,dmk->nmk", x, w) + b
        # argmax's tie-breaking is unspecified; the first maximum is picked explicitly instead.
        out = tf.reduce_max(pieces, axis=2)
        pieces_count = tf.shape(pieces)[2]
        index = tf.range(pieces_count)
        first = tf.reduce_min(tf.where(pieces == out[..., None], index, pieces_count), axis=2)
        winner = tf.one_hot(first, pieces_count, dtype=x.dtype)

        def grad(dout):
            dpieces = winner * dout[..., None]
            dx = tf.einsum("nmk,dmk->nd", dpieces, w)
            dw = tf.einsum("nd,nmk->dmk", x, dpieces)
            return dx, dw, tf.reduce_sum(dpieces, 0)

        return out, grad

    return _maxout(x, w, b)


def _check_drop_rate(drop_rate):
    value = tf.get_static_value(drop_rate) if tf.is_tensor(drop_rate) else drop_rate
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if value is None or isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigError(f"dropout: drop_rate must be a number in [0, 1) known when the op is "
                          f"built, got {drop_rate!r}")
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"dropout: drop_rate must be in [0, 1), got {value!r}")
    return float(value)


def dropout(x, drop_rate, training, seed=None):
    """Inverted dropout (Srivastava et al. 2014), any shape.

    At training time each unit is zeroed with probability ``drop_rate`` and the survivors are
    scaled by ``1 / (1 - drop_rate)``, so the expected output equals ``x`` and test time is the
    identity. ``seed`` (an int) makes the mask deterministic (stateless RNG); ``None`` draws from
    TF's global generator. ``training`` is a Python bool or a bool tensor. Backward: ``dout``
    times the same scaled mask.
    """
    (x,) = float_tensors(x)
    rate = _check_drop_rate(drop_rate)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ConfigError(f"dropout: seed must be an int or None, got {seed!r}")

    def train():
        if rate == 0.0:
            return x
        # Drawn in float32 whatever x's dtype, so one seed gives one mask in float32 and float64.
        if seed is None:
            uniform = tf.random.uniform(tf.shape(x))
        else:
            uniform = tf.random.stateless_uniform(tf.shape(x), seed=[seed, 0])
        mask = tf.cast(uniform >= rate, x.dtype) / (1 - rate)
        return _apply_mask(x, mask)

    return branch(training, train, lambda: x)


@tf.custom_gradient
def _apply_mask(x, mask):
    def grad(dout):
        return dout * mask, None

    return x * mask, grad
