"""Learning-rate schedules (lecture 7, "learning rate decay") for any Keras optimizer.

Keras already has the decays themselves, so this module composes them rather than re-deriving
them:

- step decay every ``k`` steps is ``ExponentialDecay(staircase=True)``; at given boundaries it is
  ``PiecewiseConstantDecay``;
- exponential decay is ``ExponentialDecay``;
- cosine decay to an optional final rate is ``CosineDecay(alpha=final_lr / base_lr)``, and its own
  built-in linear warm-up is used when asked for one.

What Keras lacks, and this module adds, is a :class:`Constant` schedule and a :class:`LinearWarmup`
that puts a linear ramp in front of *any* schedule (Goyal et al., 2017, "Accurate, Large
Minibatch SGD"). All are ``LearningRateSchedule`` subclasses registered for serialisation, so an
optimizer using them survives ``get_config``/``from_config`` and ``model.save``.

Schedules are called with the optimizer's step counter, which is 0 for the first update.
"""

import numbers

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, InputTypeError

schedules = tf.keras.optimizers.schedules
_register = tf.keras.utils.register_keras_serializable(package="cs231n_tf")


@_register
class Constant(schedules.LearningRateSchedule):
    """The same learning rate at every step (lets warm-up and logging treat all runs alike)."""

    def __init__(self, learning_rate, name=None):
        super().__init__()
        self.learning_rate = validation.positive_number("learning_rate", learning_rate)
        self.name = name

    def __call__(self, step):
        return tf.constant(self.learning_rate, tf.float32, name=self.name or "Constant")

    def get_config(self):
        return {"learning_rate": self.learning_rate, "name": self.name}


@_register
class LinearWarmup(schedules.LearningRateSchedule):
    """Linear warm-up from ``initial_learning_rate`` to ``schedule(0)``, then ``schedule``.

    For ``step < warmup_steps`` the rate is
    ``initial_learning_rate + (schedule(0) - initial_learning_rate) * step / warmup_steps``;
    afterwards it is ``schedule(step - warmup_steps)``, so the wrapped schedule starts its decay
    when the warm-up ends. This is the convention of Keras's ``CosineDecay(warmup_steps=...)``,
    which the tests check it against.
    """

    def __init__(self, schedule, warmup_steps, initial_learning_rate=0.0, name=None):
        super().__init__()
        if isinstance(schedule, dict):
            schedule = schedules.deserialize(schedule)
        if not isinstance(schedule, schedules.LearningRateSchedule):
            raise InputTypeError(
                f"schedule must be a LearningRateSchedule, got {type(schedule).__name__}"
            )
        self.schedule = schedule
        self.warmup_steps = validation.positive_int("warmup_steps", warmup_steps)
        self.initial_learning_rate = validation.positive_number(
            "initial_learning_rate", initial_learning_rate, allow_zero=True)
        self.name = name

    def __call__(self, step):
        with tf.name_scope(self.name or "LinearWarmup"):
            step = tf.convert_to_tensor(step)
            target = tf.convert_to_tensor(self.schedule(0))
            dtype = target.dtype
            # The wrapped schedule gets an integer-valued step of the caller's type, as it would
            # from the optimizer; the ramp is computed in the schedule's float type.
            after = tf.cast(self.schedule(tf.maximum(step - self.warmup_steps, 0)), dtype)
            fraction = tf.cast(step, dtype) / tf.cast(self.warmup_steps, dtype)
            initial = tf.cast(self.initial_learning_rate, dtype)
            ramp = initial + (target - initial) * fraction
            return tf.where(fraction < 1, ramp, after)

    def get_config(self):
        return {
            "schedule": schedules.serialize(self.schedule),
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
            "name": self.name,
        }


def step_decay(base_lr, factor=0.1, every=None, boundaries=None):
    """Multiply the rate by ``factor`` every ``every`` steps, or at each step in ``boundaries``.

    The drop happens *at* the step: with ``every=10`` (or ``boundaries=[10]``) steps 0-9 use
    ``base_lr`` and step 10 uses ``base_lr * factor``.

    Exactly one of ``every`` / ``boundaries`` must be given. Returns Keras's
    ``ExponentialDecay(staircase=True)`` or ``PiecewiseConstantDecay``.
    """
    base_lr = validation.positive_number("base_lr", base_lr)
    factor = validation.positive_number("factor", factor)
    if (every is None) == (boundaries is None):
        raise ConfigError(
            f"step decay needs exactly one of every= or boundaries=, got every={every!r}, "
            f"boundaries={boundaries!r}"
        )
    if every is not None:
        every = validation.positive_int("every", every)
        return schedules.ExponentialDecay(base_lr, every, factor, staircase=True)
    boundaries = list(boundaries)
    if (not boundaries
            or any(isinstance(b, bool) or not isinstance(b, numbers.Integral) for b in boundaries)
            or any(b <= a for a, b in zip(boundaries, boundaries[1:])) or boundaries[0] < 1):
        raise ConfigError(
            f"boundaries must be strictly increasing positive ints, got {boundaries!r}"
        )
    boundaries = [int(b) for b in boundaries]
    values = [float(base_lr) * factor**i for i in range(len(boundaries) + 1)]
    # PiecewiseConstantDecay keeps a value while step <= boundary; shifting by one makes the rate
    # drop *at* each boundary step, as it does at multiples of ``every``.
    return schedules.PiecewiseConstantDecay([b - 1 for b in boundaries], values)


SCHEDULE_NAMES = ("constant", "step", "exponential", "cosine")


def make_schedule(name, base_lr, total_steps, warmup_steps=0, **options):
    """Make a learning-rate schedule for a run of ``total_steps`` optimizer steps.

    Args:
      name: ``constant``; ``step`` (options ``factor`` = 0.1 and ``every`` or ``boundaries``;
        default: drop at 50% and 75% of the decay phase); ``exponential`` (option ``final_lr``,
        default ``base_lr / 100``, reached at ``total_steps``); ``cosine`` (option
        ``final_lr``, default 0).
      base_lr: the peak rate, reached after the warm-up.
      total_steps: length of the run; the decay phase is ``total_steps - warmup_steps``.
      warmup_steps: linear warm-up from 0 over this many steps (0 = none).

    Returns:
      A ``tf.keras.optimizers.schedules.LearningRateSchedule``.
    """
    base_lr = validation.positive_number("base_lr", base_lr)
    total_steps = validation.positive_int("total_steps", total_steps)
    warmup_steps = validation.non_negative_int("warmup_steps", warmup_steps)
    if warmup_steps >= total_steps:
        raise ConfigError(
            f"warmup_steps must be an int in [0, total_steps={total_steps}), got {warmup_steps!r}"
        )
    accepted = {"constant": set(), "step": {"factor", "every", "boundaries"},
                "exponential": {"final_lr"}, "cosine": {"final_lr"}}
    if name not in accepted:
        raise ConfigError(f"unknown schedule {name!r}; accepted: {', '.join(SCHEDULE_NAMES)}")
    unknown = sorted(set(options) - accepted[name])
    if unknown:
        raise ConfigError(
            f"schedule {name!r} does not accept {', '.join(unknown)}; accepted: "
            f"{', '.join(sorted(accepted[name])) or 'no options'}"
        )
    decay_steps = total_steps - warmup_steps

    if name == "cosine":
        final_lr = validation.positive_number("final_lr", options.get("final_lr", 0.0), allow_zero=True)
        alpha = final_lr / base_lr
        if warmup_steps:
            # Keras's CosineDecay has this exact warm-up built in.
            return schedules.CosineDecay(0.0, decay_steps, alpha=alpha, warmup_target=base_lr,
                                         warmup_steps=warmup_steps)
        return schedules.CosineDecay(base_lr, decay_steps, alpha=alpha)

    if name == "constant":
        schedule = Constant(base_lr)
    elif name == "exponential":
        final_lr = validation.positive_number("final_lr", options.get("final_lr", base_lr / 100))
        schedule = schedules.ExponentialDecay(base_lr, decay_steps, final_lr / base_lr)
    else:
        if "every" not in options and "boundaries" not in options:
            options["boundaries"] = sorted({max(1, decay_steps // 2), max(2, 3 * decay_steps // 4)})
        schedule = step_decay(base_lr, **options)
    return LinearWarmup(schedule, warmup_steps) if warmup_steps else schedule
