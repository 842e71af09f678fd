"""Learning-rate schedules against their closed forms."""

import math

import pytest
import tensorflow as tf

import cs231n_tf  # noqa: F401
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.optim import schedules

keras_schedules = tf.keras.optimizers.schedules


def values(schedule, steps):
    return [float(schedule(tf.constant(s, tf.int64))) for s in steps]


def test_step_decay_every_k_steps():
    schedule = schedules.step_decay(0.1, factor=0.5, every=10)
    assert isinstance(schedule, keras_schedules.ExponentialDecay)
    assert values(schedule, [0, 9, 10, 19, 20, 35]) == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125])


def test_step_decay_at_boundaries_drops_at_the_boundary_step():
    schedule = schedules.step_decay(0.1, factor=0.1, boundaries=[5, 8])
    assert values(schedule, [0, 4, 5, 7, 8, 100]) == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_exponential_reaches_final_lr_at_total_steps():
    schedule = schedules.make_schedule("exponential", 0.1, 100, final_lr=0.001)
    # lr(t) = 0.1 * 0.01^(t/100)
    assert values(schedule, [0, 50, 100]) == pytest.approx([0.1, 0.01, 0.001], rel=1e-5)


def test_cosine_with_final_lr():
    schedule = schedules.make_schedule("cosine", 0.1, 100, final_lr=0.01)
    # lr(t) = final + (base - final) (1 + cos(pi t / T)) / 2, held at final after T.
    closed = [0.01 + 0.5 * 0.09 * (1 + math.cos(math.pi * min(t, 100) / 100))
              for t in (0, 25, 50, 100, 150)]
    assert values(schedule, [0, 25, 50, 100, 150]) == pytest.approx(closed, rel=1e-5)


def test_constant_and_warmup_ramp():
    schedule = schedules.make_schedule("constant", 0.2, 100, warmup_steps=4)
    assert isinstance(schedule, schedules.LinearWarmup)
    assert values(schedule, [0, 1, 2, 3, 4, 50]) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.2])
    from_half = schedules.LinearWarmup(schedules.Constant(0.2), 4, initial_learning_rate=0.1)
    assert values(from_half, [0, 2, 4]) == pytest.approx([0.1, 0.15, 0.2])


def test_warmup_then_step_decay_counts_steps_after_warmup():
    schedule = schedules.make_schedule("step", 1.0, 110, warmup_steps=10, every=50, factor=0.1)
    assert values(schedule, [5, 10, 59, 60, 109]) == pytest.approx([0.5, 1.0, 1.0, 0.1, 0.1])


def test_default_step_boundaries_at_half_and_three_quarters():
    schedule = schedules.make_schedule("step", 1.0, 100)
    assert values(schedule, [49, 50, 74, 75]) == pytest.approx([1.0, 0.1, 0.1, 0.01])


def test_linear_warmup_matches_keras_cosine_warmup():
    """Our generic wrapper and Keras's built-in cosine warm-up follow the same convention."""
    wrapped = schedules.LinearWarmup(keras_schedules.CosineDecay(0.3, 40, alpha=0.1), 10)
    builtin = keras_schedules.CosineDecay(0.0, 40, alpha=0.1, warmup_target=0.3, warmup_steps=10)
    steps = list(range(0, 60, 3))
    assert values(wrapped, steps) == pytest.approx(values(builtin, steps), rel=1e-6, abs=1e-7)
    made = schedules.make_schedule("cosine", 0.3, 50, warmup_steps=10, final_lr=0.03)
    assert values(made, steps) == pytest.approx(values(builtin, steps), rel=1e-6, abs=1e-7)


def test_serialisation_round_trip():
    schedule = schedules.make_schedule("step", 0.5, 100, warmup_steps=5, boundaries=[30, 60])
    clone = keras_schedules.deserialize(keras_schedules.serialize(schedule))
    assert isinstance(clone, schedules.LinearWarmup)
    steps = [0, 3, 5, 34, 35, 64, 65, 99]
    assert values(clone, steps) == pytest.approx(values(schedule, steps))


def test_bad_arguments():
    with pytest.raises(ConfigError, match="'linear'.*constant, step, exponential, cosine"):
        schedules.make_schedule("linear", 0.1, 10)
    with pytest.raises(ConfigError, match="warmup_steps"):
        schedules.make_schedule("cosine", 0.1, 10, warmup_steps=10)
    with pytest.raises(ConfigError, match="final_lr"):
        schedules.make_schedule("constant", 0.1, 10, final_lr=0.01)
    with pytest.raises(ConfigError, match="exactly one"):
        schedules.step_decay(0.1, every=5, boundaries=[3])
    with pytest.raises(ConfigError, match="boundaries"):
        schedules.step_decay(0.1, boundaries=[5, 5])
    with pytest.raises(ConfigError, match="base_lr"):
        schedules.make_schedule("cosine", -0.1, 10)
    with pytest.raises(InputTypeError, match="LearningRateSchedule"):
        schedules.LinearWarmup(0.1, 5)
