"""Input checking shared by the classic classifiers and networks.

Every public entry point accepts NumPy arrays, Python sequences or tensors; these helpers turn them
into tensors of a known dtype and shape, or raise the package's errors naming the bad value.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, DataError, InputTypeError, ShapeError

_FLOATS = (tf.float16, tf.bfloat16, tf.float32, tf.float64)


def as_float_tensor(x, name, dtype=None):
    """``x`` as a floating tensor: float64 stays float64, every other numeric dtype becomes float32.

    ``dtype`` forces the result's dtype instead.
    """
    if isinstance(x, (tf.Tensor, tf.Variable)):
        t = tf.convert_to_tensor(x)
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"{name} must be a numeric array or tensor, got {type(x).__name__}: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise InputTypeError(
                f"{name} must be a numeric array or tensor, got dtype {arr.dtype} ({type(x).__name__})"
            )
        t = tf.convert_to_tensor(arr)
    if not (t.dtype.is_floating or t.dtype.is_integer or t.dtype == tf.bool):
        raise InputTypeError(f"{name} must be numeric, got a tensor of dtype {t.dtype.name}")
    if dtype is None:
        dtype = tf.float64 if t.dtype == tf.float64 else tf.float32
    return tf.cast(t, dtype)


def as_features(x, name="x", dtype=None):
    """``x`` of shape ``(N, d1, d2, ...)`` flattened to a float tensor of shape ``(N, D)``."""
    t = as_float_tensor(x, name, dtype)
    if t.shape.rank is None or t.shape.rank < 2:
        raise ShapeError(
            f"{name} must have shape (N, D) or (N, d1, d2, ...) with one row per example, "
            f"got shape {tuple(t.shape)}"
        )
    return tf.reshape(t, [tf.shape(t)[0], -1])


def as_labels(y, num_examples, name="y"):
    """Integer class labels ``y`` of shape ``(N,)`` as an int32 tensor, checked against ``N``."""
    if isinstance(y, (tf.Tensor, tf.Variable)):
        t = tf.convert_to_tensor(y)
        ok = t.dtype.is_integer
        kind = t.dtype.name
    else:
        try:
            arr = np.asarray(y)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"{name} must be an array of integer class labels: {exc}") from None
        ok = arr.dtype.kind in "iu"
        kind = str(arr.dtype)
        t = tf.convert_to_tensor(arr) if ok else None
    if not ok:
        raise InputTypeError(f"{name} must hold integer class labels, got dtype {kind}")
    if t.shape.rank != 1:
        raise ShapeError(f"{name} must have shape (N,), got shape {tuple(t.shape)}")
    if t.shape[0] != num_examples:
        raise ShapeError(f"{name} has {t.shape[0]} labels but there are {num_examples} examples")
    if num_examples and int(tf.reduce_min(t)) < 0:
        raise DataError(f"{name} must be non-negative class labels, got minimum {int(tf.reduce_min(t))}")
    return tf.cast(t, tf.int32)


def check_finite(t, name):
    """Raise :class:`DataError` if ``t`` holds NaN or Inf (training on them silently yields NaN)."""
    if not bool(tf.reduce_all(tf.math.is_finite(t))):
        raise DataError(f"{name} contains NaN or Inf values; clean or impute them before training")


def non_negative_float(name, value):
    """``value`` as a finite float >= 0."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}") from None
    if not np.isfinite(f) or f < 0:
        raise ConfigError(f"{name} must be a finite non-negative number, got {value!r}")
    return f


def choice(name, value, accepted):
    """``value`` if it is one of ``accepted``, else :class:`ConfigError` listing them."""
    if value not in accepted:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, accepted))}; got {value!r}")
    return value
