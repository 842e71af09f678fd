"""Numerical gradient checking (lecture 4, every assignment).

A hand-written backward pass is trusted once it agrees with centred differences,
``df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / 2h``, to a small relative error. Run checks in
float64: in float32 the rounding error of the differences alone is about 1e-3.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, InputTypeError


def _weighted_difference(plus, minus, upstream):
    """``sum_k sum((plus_k - minus_k) * upstream_k)`` over the floating outputs.

    Subtracting before weighting means outputs the perturbation did not touch cancel exactly
    instead of adding their rounding error to every element's estimate.
    """
    total = 0.0
    for out_plus, out_minus, dout in zip(
        tf.nest.flatten(plus), tf.nest.flatten(minus), tf.nest.flatten(upstream)
    ):
        if dout is not None:
            diff = np.asarray(out_plus, dtype=np.float64) - np.asarray(out_minus, dtype=np.float64)
            total += float(np.sum(diff * dout))
    return total


def _default_upstream(outputs, make):
    """One upstream array per floating output (None for integer outputs such as an argmax)."""
    def one(out):
        out = tf.convert_to_tensor(out)
        return make(out.shape) if out.dtype.is_floating else None

    return tf.nest.map_structure(one, outputs)


def numerical_gradient(f, x, h=1e-5, upstream=None):
    """Centred-difference gradient of ``sum(f(x) * upstream)`` with respect to ``x``.

    ``f`` maps an array shaped like ``x`` to a tensor, or to a tuple/list of tensors with
    ``upstream`` of the same structure. ``upstream=None`` means all ones, i.e. the gradient of
    ``sum(f(x))``. ``x`` keeps its dtype (pass float64). Calls ``f`` twice per element of ``x``.
    Returns a NumPy array shaped like ``x``.
    """
    x = np.array(x, copy=True)
    if not np.issubdtype(x.dtype, np.floating):
        raise InputTypeError(f"numerical_gradient needs a floating x, got dtype {x.dtype}")
    if upstream is None:
        upstream = _default_upstream(f(x.copy()), np.ones)
    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        plus = f(x.copy())
        x[index] = original - h
        minus = f(x.copy())
        x[index] = original
        grad[index] = _weighted_difference(plus, minus, upstream) / (2 * h)
    return grad.astype(x.dtype)


def relative_error(a, b):
    """``max |a - b| / max(1e-8, |a| + |b|)``, elementwise then the worst element (0 if empty)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0 and b.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _is_float_array(value):
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return False
    try:
        return tf.as_dtype(dtype).is_floating
    except TypeError:
        return False


def check_gradients(op, inputs, upstream=None, argnums=None, h=1e-5, *, use_tf_function=True):
    """Compare ``op``'s gradients (``tf.GradientTape``) with numerical ones, input by input.

    ``inputs`` is a sequence of positional arguments or a dict of keyword arguments. ``argnums``
    picks which to check (indices or names; default: every floating array or tensor, Python
    numbers are treated as fixed). The scalar differentiated is ``sum(op(*inputs) * upstream)``
    over the op's floating outputs; ``upstream=None`` draws fixed-seed standard normals, since an
    all-ones upstream hides some errors (e.g. batchnorm's dx is zero for it).
    The analytic gradient is taken eagerly; the many forward calls of the numerical gradient run
    through one ``tf.function`` per checked input (``use_tf_function=False`` runs them eagerly,
    for ops that cannot be traced), which also exercises the op in graph mode.
    Returns ``{index or name: relative error}``.
    """
    named = isinstance(inputs, dict)
    keys = list(inputs) if named else list(range(len(inputs)))
    values = dict(inputs) if named else dict(enumerate(inputs))
    if argnums is None:
        checked = [k for k in keys if _is_float_array(values[k])]
    else:
        checked = [argnums] if isinstance(argnums, (int, str)) else list(argnums)
        unknown = [k for k in checked if k not in values]
        if unknown:
            raise ConfigError(f"argnums {unknown} are not among the inputs {keys}")
    if not checked:
        raise ConfigError("check_gradients found no floating inputs to check; pass argnums")

    def call(replaced):
        args = {**values, **replaced}
        return op(**args) if named else op(*[args[k] for k in keys])

    if upstream is None:
        rng = np.random.default_rng(0)
        upstream = _default_upstream(call({}), lambda shape: rng.standard_normal(shape))

    watched = {k: tf.convert_to_tensor(values[k]) for k in checked}
    with tf.GradientTape() as tape:
        tape.watch(list(watched.values()))
        outputs = call(watched)
        total = tf.add_n([
            tf.reduce_sum(out * tf.cast(dout, out.dtype))
            for out, dout in zip(tf.nest.flatten(outputs), tf.nest.flatten(upstream))
            if dout is not None
        ])
    analytic = tape.gradient(total, watched)

    errors = {}
    for k in checked:
        def forward(v, k=k):
            return call({k: v})

        if use_tf_function:
            forward = tf.function(forward, autograph=False)
        numeric = numerical_gradient(
            lambda v, forward=forward: forward(tf.constant(v)), np.asarray(values[k]), h=h,
            upstream=upstream,
        )
        grad = analytic[k]
        grad = np.zeros_like(numeric) if grad is None else np.asarray(grad)
        errors[k] = relative_error(grad, numeric)
    return errors
