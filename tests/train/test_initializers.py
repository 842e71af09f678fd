"""Initializers by the course's names: sample standard deviations against the fan formulas."""

import math

import numpy as np
import pytest
import tensorflow as tf

import cs231n_tf  # noqa: F401
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.train.initializers import get_initializer

DENSE = (400, 100)  # fan_in 400, fan_out 100: 40,000 samples, std known to ~0.4%
CONV = (3, 3, 16, 32)  # fan_in 144, fan_out 288: 4,608 samples, std known to ~1%


@pytest.mark.parametrize("name,shape,std", [
    ("small_random", DENSE, 0.01),
    ("large_random", DENSE, 1.0),
    ("xavier", DENSE, math.sqrt(1 / 400)),
    ("he", DENSE, math.sqrt(2 / 400)),
    ("kaiming", CONV, math.sqrt(2 / 144)),
    ("xavier_normal", DENSE, math.sqrt(2 / 500)),
    ("glorot_uniform", DENSE, math.sqrt(2 / 500)),
    ("xavier_uniform", CONV, math.sqrt(2 / (144 + 288))),
    ("he_normal", DENSE, math.sqrt(2 / 400)),
    ("kaiming_uniform", CONV, math.sqrt(2 / 144)),
])
def test_sample_std_matches_the_formula(name, shape, std):
    w = get_initializer(name, seed=1)(shape).numpy()
    assert w.shape == shape
    assert abs(w.mean()) < 4 * std / math.sqrt(w.size)
    assert w.std() == pytest.approx(std, rel=0.05)


def test_lecture_forms_are_untruncated_and_keras_forms_truncated_or_bounded():
    lecture = get_initializer("he", seed=2)(DENSE).numpy() / math.sqrt(2 / 400)
    keras_normal = get_initializer("he_normal", seed=2)(DENSE).numpy() / math.sqrt(2 / 400)
    keras_uniform = get_initializer("he_uniform", seed=2)(DENSE).numpy() / math.sqrt(2 / 400)
    assert np.abs(lecture).max() > 3.0  # a Gaussian tail: 40,000 draws pass 3 sigma ~100 times
    # Truncated at 2 sigma of the underlying normal, whose sigma is 1/0.8796 of the target std.
    assert np.abs(keras_normal).max() <= 2 / 0.87962566103423978 + 1e-6
    assert np.abs(keras_uniform).max() <= math.sqrt(3) + 1e-6


def test_names_seeds_and_pass_through():
    assert isinstance(get_initializer("glorot_normal"), tf.keras.initializers.GlorotNormal)
    assert isinstance(get_initializer("Xavier_Uniform"), tf.keras.initializers.GlorotUniform)
    assert isinstance(get_initializer("zeros"), tf.keras.initializers.Zeros)
    orthogonal = get_initializer("orthogonal", seed=3)(DENSE[::-1]).numpy()
    np.testing.assert_allclose(orthogonal @ orthogonal.T, np.eye(100), atol=1e-5)
    same = [get_initializer("xavier", seed=4)((5, 5)).numpy() for _ in range(2)]
    np.testing.assert_array_equal(*same)
    other = get_initializer("xavier", seed=5)((5, 5)).numpy()
    assert not np.allclose(same[0], other)
    mine = tf.keras.initializers.Constant(0.5)
    assert get_initializer(mine) is mine


def test_bad_names():
    with pytest.raises(ConfigError, match="'msra'.*small_random"):
        get_initializer("msra")
    with pytest.raises(InputTypeError):
        get_initializer(0.01)
