"""Argument checks shared by the library: one definition of "a positive int" and friends.

Each raises :class:`~cs231n_tf.errors.ConfigError` naming the argument and the value it got.
"""

import math
import numbers

from cs231n_tf.errors import ConfigError


def positive_int(name, value, allow_zero=False):
    """``value`` as an int >= 1 (>= 0 with ``allow_zero``); bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < (0 if allow_zero else 1):
        raise ConfigError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} int, got {value!r}")
    return int(value)


def optional_positive_int(name, value):
    """``None``, or ``value`` as a positive int (see :func:`positive_int`)."""
    return None if value is None else positive_int(name, value)


def non_negative_int(name, value):
    """``value`` as an int >= 0: :func:`positive_int` with ``allow_zero=True``."""
    return positive_int(name, value, allow_zero=True)


def int_in(name, value, low, high=None):
    """``value`` as an int in ``low..high``, both inclusive (no upper bound if ``high`` is None).

    Like :func:`positive_int`, bools and floats are refused and numpy ints accepted.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low \
            or (high is not None and value > high):
        wanted = f">= {low}" if high is None else f"in {low}..{high}"
        raise ConfigError(f"{name} must be an int {wanted}, got {value!r}")
    return int(value)


def positive_number(name, value, allow_zero=False):
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or not (value >= 0 if allow_zero else value > 0):
        raise ConfigError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")
    return float(value)


def one_of(name, value, choices):
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        shown = ", ".join("none" if c is None else str(c) for c in choices)
        raise ConfigError(f"unknown {name} {value!r}; choose one of {shown}")
    return value
