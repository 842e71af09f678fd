"""Normalization layers (lecture 6, assignment 2): batch, spatial batch and layer normalization.

All three standardise ``x`` over some axes, ``xhat = (x - mean) / sqrt(var + eps)`` with the
biased variance, then scale and shift per feature: ``out = gamma * xhat + beta``. The backward
pass is the course's simplified closed form: with ``dxhat = dout * gamma`` and means over the
``m`` standardised values,

    dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)
"""

import numbers

import tensorflow as tf

from cs231n_tf.errors import ConfigError, ShapeError
from cs231n_tf.ops._util import branch, check_dim, check_rank, float_tensors


def _standardize(x, axes, eps):
    """``(xhat, inv_std)`` of ``x`` over ``axes`` (biased variance), keeping dims."""
    mean = tf.reduce_mean(x, axes, keepdims=True)
    centred = x - mean
    inv_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axes, keepdims=True) + eps)
    return centred * inv_std, inv_std


def _standardize_backward(dxhat, xhat, inv_std, axes):
    """dx of :func:`_standardize` given ``dxhat`` (the simplified closed form)."""
    return inv_std * (
        dxhat
        - tf.reduce_mean(dxhat, axes, keepdims=True)
        - xhat * tf.reduce_mean(dxhat * xhat, axes, keepdims=True)
    )


def _number(value, name, low, high, low_inclusive=True):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        ok = (low <= value if low_inclusive else low < value) and value <= high
    if not ok:
        bracket = "[" if low_inclusive else "("
        raise ConfigError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")
    return float(value)


def _batchnorm(op, layout, x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """Batch normalization over every axis but the last; see :func:`batchnorm`."""
    momentum = _number(momentum, "momentum", 0.0, 1.0)
    eps = _number(eps, "eps", 0.0, float("inf"), low_inclusive=False)
    x, gamma, beta, running_mean, running_var = float_tensors(x, gamma, beta, running_mean, running_var)
    check_rank(x, len(layout.split(",")), "x", layout)
    features = x.shape[-1]
    for name, param in (("gamma", gamma), ("beta", beta),
                        ("running_mean", running_mean), ("running_var", running_var)):
        check_rank(param, 1, name, "(D,)")
        check_dim(param.shape[0], features, f"{op}: {name}'s length vs x's last axis (x shape {x.shape})")
    axes = list(range(x.shape.rank - 1))

    @tf.custom_gradient
    def _train(x, gamma, beta):
        xhat, inv_std = _standardize(x, axes, eps)

        def grad(dout):
            dx = _standardize_backward(dout * gamma, xhat, inv_std, axes)
            return dx, tf.reduce_sum(dout * xhat, axes), tf.reduce_sum(dout, axes)

        return gamma * xhat + beta, grad

    @tf.custom_gradient
    def _test(x, gamma, beta):
        inv_std = tf.math.rsqrt(running_var + eps)
        xhat = (x - running_mean) * inv_std

        def grad(dout):
            return dout * gamma * inv_std, tf.reduce_sum(dout * xhat, axes), tf.reduce_sum(dout, axes)

        return gamma * xhat + beta, grad

    def train():
        # Running statistics are state, not parameters: no gradient flows through them.
        batch_mean, batch_var = tf.nn.moments(tf.stop_gradient(x), axes)
        new_mean = momentum * running_mean + (1 - momentum) * batch_mean
        new_var = momentum * running_var + (1 - momentum) * batch_var
        return _train(x, gamma, beta), new_mean, new_var

    def test():
        return _test(x, gamma, beta), tf.identity(running_mean), tf.identity(running_var)

    out, new_mean, new_var = branch(training, train, test)
    return out, tf.stop_gradient(new_mean), tf.stop_gradient(new_var)


def batchnorm(x, gamma, beta, running_mean, running_var, training, momentum=0.9, eps=1e-5):
    """Batch normalization (Ioffe & Szegedy 2015) of ``x (N, D)``.

    ``gamma``, ``beta``, ``running_mean``, ``running_var`` are ``(D,)``. Returns
    ``(out (N, D), new_running_mean, new_running_var)``.

    Training (``training`` a Python bool or bool tensor): standardise with the batch mean and
    biased batch variance, and update ``running = momentum * running + (1 - momentum) * batch``.
    Test: standardise with the running statistics, which are returned unchanged. The running
    statistics receive no gradient.
    """
    return _batchnorm("batchnorm", "(N, D)", x, gamma, beta, running_mean, running_var, training, momentum, eps)


def spatial_batchnorm(x, gamma, beta, running_mean, running_var, training, momentum=0.9, eps=1e-5):
    """Spatial batch normalization of NHWC ``x (N, H, W, C)``: statistics per channel over
    N, H and W. Parameters and running statistics are ``(C,)``; otherwise as :func:`batchnorm`.
    """
    return _batchnorm("spatial_batchnorm", "(N, H, W, C)", x, gamma, beta, running_mean, running_var, training,
                      momentum, eps)


def layernorm(x, gamma, beta, eps=1e-5):
    """Layer normalization (Ba et al. 2016) of ``x (N, D)`` over its features (the last axis).

    ``gamma``, ``beta`` are ``(D,)``; same statistics at training and test time. Leading axes
    beyond N (e.g. ``(N, T, D)``) are treated like N.
    """
    eps = _number(eps, "eps", 0.0, float("inf"), low_inclusive=False)
    x, gamma, beta = float_tensors(x, gamma, beta)
    if x.shape.rank is None or x.shape.rank < 2:
        raise ShapeError(f"layernorm: x must be (N, D), got shape {x.shape}")
    for name, param in (("gamma", gamma), ("beta", beta)):
        check_rank(param, 1, name, "(D,)")
        check_dim(param.shape[0], x.shape[-1], f"layernorm: {name}'s length vs x's D (x shape {x.shape})")
    batch_axes = list(range(x.shape.rank - 1))

    @tf.custom_gradient
    def _layernorm(x, gamma, beta):
        xhat, inv_std = _standardize(x, [-1], eps)

        def grad(dout):
            dx = _standardize_backward(dout * gamma, xhat, inv_std, [-1])
            return dx, tf.reduce_sum(dout * xhat, batch_axes), tf.reduce_sum(dout, batch_axes)

        return gamma * xhat + beta, grad

    return _layernorm(x, gamma, beta)
