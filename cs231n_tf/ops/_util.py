"""Helpers shared by the ops: input conversion, argument checks, static-or-dynamic shapes."""

import numbers

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, InputTypeError, ShapeError


def _float_dtype_of(value):
    """The floating dtype ``value`` carries, or None for Python numbers/lists and non-floats."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return None
    try:
        dtype = tf.as_dtype(dtype)
    except TypeError:
        return None
    return dtype if dtype.is_floating else None


def float_tensors(*values):
    """Convert ``values`` to tensors sharing one floating dtype.

    TensorFlow tensors set the dtype; NumPy arrays follow them (so ``np.zeros(3)`` running
    statistics work beside a float32 tensor), and set it themselves when no tensor is given
    (float32 if nothing carries a floating dtype). Python numbers and integer arrays are converted
    to it. Two tensors of different floating dtypes are refused rather than silently cast, so
    float64 gradient checks stay float64.
    """
    tensor_dtypes = {_float_dtype_of(v) for v in values if tf.is_tensor(v) or isinstance(v, tf.Variable)}
    tensor_dtypes.discard(None)
    dtypes = tensor_dtypes or {d for d in map(_float_dtype_of, values) if d is not None}
    if len(dtypes) > 1:
        names = sorted(d.name for d in dtypes)
        raise InputTypeError(f"inputs mix floating dtypes {names}; pass them all as one dtype")
    dtype = dtypes.pop() if dtypes else tf.float32
    tensors = []
    for value in values:
        try:
            if getattr(value, "dtype", None) is None:
                tensor = tf.convert_to_tensor(value, dtype=dtype)
            else:
                tensor = tf.convert_to_tensor(value)
        except (TypeError, ValueError) as err:
            raise InputTypeError(f"expected a number, array or tensor, got {value!r} ({err})") from None
        if tensor.dtype != dtype:
            if tensor.dtype.is_floating and not tf.is_tensor(value):
                tensor = tf.cast(tensor, dtype)
            elif not (tensor.dtype.is_integer or tensor.dtype.is_bool):
                raise InputTypeError(f"expected numeric input, got dtype {tensor.dtype.name}")
            tensor = tf.cast(tensor, dtype)
        tensors.append(tensor)
    return tuple(tensors)


def real_number(value, name):
    """A Python/NumPy real number (a fixed hyperparameter, not a learned input) as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a real number, got {value!r}")
    return float(value)


def int_tensor(value, name):
    """Convert ``value`` to an integer tensor (int32 for Python ints), refusing floats."""
    tensor = tf.convert_to_tensor(value)
    if not tensor.dtype.is_integer:
        raise InputTypeError(f"{name} must hold integers, got dtype {tensor.dtype.name}")
    return tensor


def check_rank(x, rank, name, layout):
    if x.shape.rank != rank:
        raise ShapeError(f"{name} must have rank {rank} {layout}, got shape {x.shape}")


def check_dim(actual, expected, what):
    """Raise ShapeError if two static sizes are both known and differ."""
    if actual is not None and expected is not None and actual != expected:
        raise ShapeError(f"{what}: got {actual}, expected {expected}")


def shape_of(x):
    """``x``'s shape as a list: Python ints where static, scalar tensors where not."""
    dynamic = tf.shape(x)
    return [d if d is not None else dynamic[i] for i, d in enumerate(x.shape)]


def check_in_range(indices, upper, name, what):
    """Check ``0 <= indices < upper``: ConfigError when the values are known, else a graph assert.

    Returns the indices (with the graph assert attached as a control dependency).
    """
    values = tf.get_static_value(indices) if isinstance(upper, int) else None
    if values is not None:
        bad = (values < 0) | (values >= upper)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ConfigError(
                f"{name} must be {what} in [0, {upper}); got {values[first]} at index {first}"
            )
        return indices
    bound = upper if isinstance(upper, int) else "the dimension size"
    checks = [
        tf.debugging.assert_non_negative(indices, message=f"{name} must be {what} >= 0"),
        tf.debugging.assert_less(
            indices, tf.cast(upper, indices.dtype), message=f"{name} must be {what} below {bound}"
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(indices)


def branch(training, train_fn, test_fn):
    """Call ``train_fn`` or ``test_fn``: in Python for a bool, with ``tf.cond`` for a tensor."""
    if isinstance(training, (bool, np.bool_)):
        return train_fn() if training else test_fn()
    training = tf.convert_to_tensor(training)
    if training.dtype != tf.bool:
        raise InputTypeError(f"training must be a bool or bool tensor, got dtype {training.dtype.name}")
    if tf.executing_eagerly():
        return train_fn() if bool(training) else test_fn()
    return tf.cond(training, train_fn, test_fn)


def zeros_if_none(grad, like):
    """Upstream gradient of an unused output: TF may pass None instead of zeros."""
    return tf.zeros_like(like) if grad is None else grad
