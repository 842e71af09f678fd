"""The shared argument checks of cs231n_tf.validation."""

import math

import numpy as np
import pytest

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError


def test_positive_and_non_negative_ints():
    assert validation.positive_int("n", 3) == 3
    value = validation.positive_int("n", np.int64(4))
    assert value == 4 and type(value) is int
    assert validation.positive_int("n", 0, allow_zero=True) == 0
    assert validation.non_negative_int("n", 0) == 0
    assert validation.optional_positive_int("n", None) is None
    for bad in (0, -1, 2.0, True, "3", None):
        with pytest.raises(ConfigError, match=f"n must be a positive int, got {bad!r}"):
            validation.positive_int("n", bad)
    with pytest.raises(ConfigError, match="pad must be a non-negative int, got -1"):
        validation.non_negative_int("pad", -1)


def test_int_in():
    assert validation.int_in("k", 2, 2) == 2
    assert validation.int_in("bits", np.int32(32), 2, 32) == 32
    with pytest.raises(ConfigError, match="k must be an int >= 2, got 1"):
        validation.int_in("k", 1, 2)
    with pytest.raises(ConfigError, match=r"bits must be an int in 2\.\.32, got 33"):
        validation.int_in("bits", 33, 2, 32)
    for bad in (False, 4.0, "4"):
        with pytest.raises(ConfigError, match="bits"):
            validation.int_in("bits", bad, 2, 32)


def test_positive_number():
    assert validation.positive_number("lr", 1) == 1.0
    assert validation.positive_number("decay", 0, allow_zero=True) == 0.0
    for bad in (0, -0.1, math.inf, math.nan, True, "0.1"):
        with pytest.raises(ConfigError, match="lr must be a positive number"):
            validation.positive_number("lr", bad)
