"""Optimization (lectures 3, 6-7): the course's update rules, as pure functions and as Keras optimizers.

- :mod:`~cs231n_tf.optim.rules` (tier 1): ``sgd``, ``sgd_momentum``, ``nesterov_momentum``,
  ``adagrad``, ``rmsprop``, ``adam`` with the assignment's ``rule(w, dw, config)`` signature.
- :mod:`~cs231n_tf.optim.keras` (tier 2): the same rules as ``tf.keras`` optimizers
  (``CourseSGD`` ... ``CourseAdam``) and :func:`get_optimizer`, the trainer's factory.
- :mod:`~cs231n_tf.optim.schedules`: learning-rate decay and warm-up, :func:`make_schedule`.
- :mod:`~cs231n_tf.optim.lbfgs`: full-batch L-BFGS through SciPy, :func:`lbfgs_minimize`.
"""

from cs231n_tf.optim import rules
from cs231n_tf.optim.keras import (
    OPTIMIZER_NAMES,
    CourseAdaGrad,
    CourseAdam,
    CourseNesterov,
    CourseOptimizer,
    CourseRMSProp,
    CourseSGD,
    CourseSGDMomentum,
    get_optimizer,
)
from cs231n_tf.optim.lbfgs import LBFGSResult, lbfgs_minimize
from cs231n_tf.optim.schedules import (
    SCHEDULE_NAMES,
    Constant,
    LinearWarmup,
    make_schedule,
    step_decay,
)

__all__ = [
    "OPTIMIZER_NAMES",
    "SCHEDULE_NAMES",
    "Constant",
    "CourseAdaGrad",
    "CourseAdam",
    "CourseNesterov",
    "CourseOptimizer",
    "CourseRMSProp",
    "CourseSGD",
    "CourseSGDMomentum",
    "LBFGSResult",
    "LinearWarmup",
    "get_optimizer",
    "lbfgs_minimize",
    "make_schedule",
    "rules",
    "step_decay",
]
