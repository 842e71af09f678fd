"""Full-batch L-BFGS for small problems (lecture 7, "second-order optimization").

L-BFGS approximates Newton's step from the last few gradient differences, so it needs no
learning rate, but it wants exact (full-batch, noise-free) gradients: it suits small models
trained on all their data at once, such as a linear classifier or a style-transfer image.

The algorithm is SciPy's maintained L-BFGS-B (``scipy.optimize.minimize``); this module only
bridges TensorFlow variables to it: the variables are packed into one float64 vector and a
``tf.function`` returns the loss and its gradient for a given vector.
"""

import dataclasses

import numpy as np
import scipy.optimize
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import InputTypeError


@dataclasses.dataclass(frozen=True)
class LBFGSResult:
    """What :func:`lbfgs_minimize` found.

    ``converged`` is True when SciPy stopped on its tolerance (not on ``max_iters`` or a failed
    line search); ``iterations`` counts L-BFGS iterations, ``evaluations`` loss-and-gradient calls.
    """

    loss: float
    converged: bool
    iterations: int
    evaluations: int
    message: str


def lbfgs_minimize(loss_fn, variables, max_iters=100, tolerance=1e-6, memory=10):
    """Minimise ``loss_fn()`` over ``variables`` with L-BFGS; the variables end at the optimum.

    Args:
      loss_fn: callable with no arguments returning the scalar loss, computed from ``variables``
        (as for ``tf.keras.optimizers.Optimizer.minimize``). It is traced once by ``tf.function``,
        so it must compute with TensorFlow ops, not NumPy.
      variables: a ``tf.Variable`` or a non-empty list of them (e.g. ``model.trainable_variables``).
      max_iters: maximum number of L-BFGS iterations.
      tolerance: stop when the largest gradient component falls to this value (SciPy's ``gtol``).
        The run also stops when an iteration lowers the loss by less than the machine epsilon
        of the variables' dtype (relative; SciPy's ``ftol``): past that point rounding, not the
        optimiser, decides the loss, which float32 variables reach long before float64 ones.
      memory: number of past gradient pairs kept for the inverse-Hessian estimate (SciPy's
        ``maxcor``).

    Returns:
      An :class:`LBFGSResult`.
    """
    if not callable(loss_fn):
        raise InputTypeError(f"loss_fn must be a callable with no arguments, got {loss_fn!r}")
    if isinstance(variables, tf.Variable):
        variables = [variables]
    variables = list(variables)
    if not variables or not all(isinstance(v, tf.Variable) for v in variables):
        raise InputTypeError("variables must be a tf.Variable or a non-empty list of tf.Variables")
    not_float = [v.name for v in variables if not v.dtype.is_floating]
    if not_float:
        raise InputTypeError(f"variables must have floating dtypes; not so: {', '.join(not_float)}")
    max_iters = validation.positive_int("max_iters", max_iters)
    memory = validation.positive_int("memory", memory)
    tolerance = validation.positive_number("tolerance", tolerance)

    shapes = [v.shape for v in variables]
    sizes = [int(np.prod(s)) for s in shapes]

    @tf.function
    def value_and_gradient(x):
        parts = tf.split(x, sizes)
        for var, part, shape in zip(variables, parts, shapes):
            var.assign(tf.reshape(tf.cast(part, var.dtype), shape))
        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, variables)
        # A variable the loss does not use has zero gradient, not None.
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        flat = tf.concat([tf.reshape(tf.cast(g, tf.float64), [-1]) for g in grads], axis=0)
        return tf.cast(loss, tf.float64), flat

    def scipy_fn(x):
        loss, grad = value_and_gradient(tf.constant(x, tf.float64))
        return float(loss), grad.numpy()

    ftol = float(np.finfo(np.result_type(*[v.dtype.as_numpy_dtype for v in variables])).eps)
    x0 = np.concatenate([np.asarray(v.numpy(), np.float64).ravel() for v in variables])
    result = scipy.optimize.minimize(
        scipy_fn, x0, jac=True, method="L-BFGS-B",
        options={"maxiter": int(max_iters), "gtol": float(tolerance), "ftol": ftol,
                 "maxcor": int(memory)},
    )
    # SciPy's last evaluation need not be at its answer, so write the answer back explicitly.
    final_loss, _ = value_and_gradient(tf.constant(result.x, tf.float64))
    return LBFGSResult(
        loss=float(final_loss),
        converged=bool(result.success),
        iterations=int(result.nit),
        evaluations=int(result.nfev),
        message=str(result.message),
    )
