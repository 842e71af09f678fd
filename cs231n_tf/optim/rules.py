"""The course's first-order update rules as pure functions (lecture 7, assignment 2 ``optim.py``).

Every rule has the assignment's signature::

    next_w, config = rule(w, dw, config=None)

``w`` are the weights, ``dw`` the gradient of the loss with respect to them (same shape), and
``config`` a dict holding both the hyperparameters and the rule's state, under the assignment's
keys (``learning_rate``, ``momentum``, ``velocity``, ``cache``, ``decay_rate``, ``epsilon``,
``beta1``, ``beta2``, ``m``, ``v``, ``t``). Missing hyperparameters get the course's defaults and
missing state starts at zero, so a training loop keeps one config per parameter and passes it back
on every step.

Unlike the assignment the rules never modify ``w`` in place: they return a new array. They work on
NumPy arrays and on TensorFlow tensors and return the same kind as ``w``; the state stored in
``config`` is of that kind too. Inside a ``tf.function``, which may not mutate its arguments, pass
the rule a copy of the config (``rule(w, dw, dict(config))``) and return the new one.

The Keras optimizers in :mod:`cs231n_tf.optim.keras` implement the same arithmetic, and the tests
prove the two agree step for step.
"""

import numbers
import types

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, InputTypeError, ShapeError


def _prepare(w, dw, config):
    """Check the arguments and return ``(w, dw, config, ops)`` with ``dw`` of the same kind as ``w``.

    ``ops`` holds the ``zeros_like`` and ``sqrt`` of ``w``'s kind (NumPy or TensorFlow) and
    ``w``'s dtype.
    """
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise InputTypeError(f"config must be a dict or None, got {type(config).__name__}")
    if tf.is_tensor(w):
        w = tf.convert_to_tensor(w)
        if not w.dtype.is_floating:
            raise InputTypeError(f"w must have a floating dtype, got {w.dtype.name}")
        dw = tf.convert_to_tensor(dw, dtype=w.dtype)
        ops = types.SimpleNamespace(zeros_like=tf.zeros_like, sqrt=tf.sqrt, dtype=w.dtype)
    else:
        w = np.asarray(w)
        if not np.issubdtype(w.dtype, np.floating):
            raise InputTypeError(f"w must have a floating dtype, got {w.dtype}")
        dw = np.asarray(dw, dtype=w.dtype)
        ops = types.SimpleNamespace(zeros_like=np.zeros_like, sqrt=np.sqrt, dtype=w.dtype)
    if tuple(w.shape) != tuple(dw.shape):
        raise ShapeError(f"dw must have the shape of w {tuple(w.shape)}, got {tuple(dw.shape)}")
    return w, dw, config, ops


def _hyper(config, key, default, ops, low, high=None, high_open=False):
    """Fill in ``config[key]`` with ``default`` and check it lies in ``[low, high]`` / ``[.., ..)``."""
    value = config.setdefault(key, default)
    if tf.is_tensor(value):
        # A tensor hyperparameter (a scheduled rate, or a config returned by a tf.function) has
        # no Python value to check; it only needs the weights' dtype.
        return tf.cast(value, ops.dtype)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ConfigError(f"config[{key!r}] must be a real number, got {value!r}")
    too_high = high is not None and (value >= high if high_open else value > high)
    if value < low or too_high:
        accepted = f">= {low}" if high is None else f"in [{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"config[{key!r}] must be {accepted}, got {value!r}")
    return value


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w -= learning_rate * dw``.

    config: ``learning_rate`` (default 1e-2).
    """
    w, dw, config, ops = _prepare(w, dw, config)
    lr = _hyper(config, "learning_rate", 1e-2, ops, 0.0)
    return w - lr * dw, config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: ``v = momentum * v - learning_rate * dw; w += v``.

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), state ``velocity`` (zeros).
    """
    w, dw, config, ops = _prepare(w, dw, config)
    lr = _hyper(config, "learning_rate", 1e-2, ops, 0.0)
    mu = _hyper(config, "momentum", 0.9, ops, 0.0, 1.0, high_open=True)
    v = config.get("velocity")
    v = ops.zeros_like(w) if v is None else v
    v = mu * v - lr * dw
    config["velocity"] = v
    return w + v, config


def nesterov_momentum(w, dw, config=None):
    """Nesterov momentum in the course's change of variables (lecture 7).

    ``dw`` is the gradient at the stored weights, which play the role of the look-ahead point::

        v_prev = v
        v = momentum * v - learning_rate * dw
        w += -momentum * v_prev + (1 + momentum) * v

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), state ``velocity`` (zeros).
    """
    w, dw, config, ops = _prepare(w, dw, config)
    lr = _hyper(config, "learning_rate", 1e-2, ops, 0.0)
    mu = _hyper(config, "momentum", 0.9, ops, 0.0, 1.0, high_open=True)
    v_prev = config.get("velocity")
    v_prev = ops.zeros_like(w) if v_prev is None else v_prev
    v = mu * v_prev - lr * dw
    config["velocity"] = v
    return w - mu * v_prev + (1 + mu) * v, config


def adagrad(w, dw, config=None):
    """AdaGrad (Duchi et al., 2011): per-parameter step scaled by the root of summed squared grads.

    ``cache += dw**2; w -= learning_rate * dw / (sqrt(cache) + epsilon)``.

    config: ``learning_rate`` (1e-2), ``epsilon`` (1e-7, the lecture's), state ``cache`` (zeros).
    """
    w, dw, config, ops = _prepare(w, dw, config)
    lr = _hyper(config, "learning_rate", 1e-2, ops, 0.0)
    eps = _hyper(config, "epsilon", 1e-7, ops, 0.0)
    cache = config.get("cache")
    cache = (ops.zeros_like(w) if cache is None else cache) + dw * dw
    config["cache"] = cache
    return w - lr * dw / (ops.sqrt(cache) + eps), config


def rmsprop(w, dw, config=None):
    """RMSProp (Tieleman & Hinton, 2012): AdaGrad with a leaky, moving-average cache.

    ``cache = decay_rate * cache + (1 - decay_rate) * dw**2;
    w -= learning_rate * dw / (sqrt(cache) + epsilon)``.

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8), state ``cache``.
    """
    w, dw, config, ops = _prepare(w, dw, config)
    lr = _hyper(config, "learning_rate", 1e-2, ops, 0.0)
    rho = _hyper(config, "decay_rate", 0.99, ops, 0.0, 1.0)
    eps = _hyper(config, "epsilon", 1e-8, ops, 0.0)
    cache = config.get("cache")
    cache = ops.zeros_like(w) if cache is None else cache
    cache = rho * cache + (1 - rho) * dw * dw
    config["cache"] = cache
    return w - lr * dw / (ops.sqrt(cache) + eps), config


def adam(w, dw, config=None):
    """Adam (Kingma & Ba, 2015): momentum on the gradient and RMSProp on its square, bias-corrected.

    ``t`` is incremented *before* the bias correction, so the first step uses ``t = 1``::

        t += 1
        m = beta1 * m + (1 - beta1) * dw
        v = beta2 * v + (1 - beta2) * dw**2
        w -= learning_rate * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + epsilon)

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999), ``epsilon`` (1e-8),
    state ``m``, ``v`` (zeros) and ``t`` (0).
    """
    w, dw, config, ops = _prepare(w, dw, config)
    lr = _hyper(config, "learning_rate", 1e-3, ops, 0.0)
    beta1 = _hyper(config, "beta1", 0.9, ops, 0.0, 1.0, high_open=True)
    beta2 = _hyper(config, "beta2", 0.999, ops, 0.0, 1.0, high_open=True)
    eps = _hyper(config, "epsilon", 1e-8, ops, 0.0)
    m = config.get("m")
    v = config.get("v")
    m = ops.zeros_like(w) if m is None else m
    v = ops.zeros_like(w) if v is None else v
    t = config.get("t", 0) + 1
    power = tf.cast(t, ops.dtype) if tf.is_tensor(t) else t
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw * dw
    m_hat = m / (1 - beta1**power)
    v_hat = v / (1 - beta2**power)
    config.update(m=m, v=v, t=t)
    return w - lr * m_hat / (ops.sqrt(v_hat) + eps), config


RULES = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "nesterov_momentum": nesterov_momentum,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
}
"""Rule name (the assignment's ``update_rule`` string) -> function."""
