"""The recurrent attention model: sensor, policy log-probability, REINFORCE gradient, data, learning, resume."""

import math

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.rl import ram


def test_finest_glimpse_is_the_pixels_around_the_location():
    rng = np.random.default_rng(0)
    image = rng.uniform(size=(1, 16, 16, 1)).astype(np.float32)
    model = ram.RecurrentAttention(10, 16, glimpses=1, glimpse_size=4, scales=2)
    # Location (-0.5, 0.25) is pixel (4, 10) on a 16-pixel image: the 4x4 patch spans rows 2..5, cols 8..11.
    patches = model.sense(tf.constant(image), tf.constant([[-0.5, 0.25]])).numpy().reshape(2, 4, 4)
    np.testing.assert_allclose(patches[0], image[0, 2:6, 8:12, 0], atol=1e-6)
    # The coarser patch spans 8 pixels (rows 0..7, cols 6..13) sampled at 4 points: its corners are pixels.
    assert patches[1][0, 0] == pytest.approx(image[0, 0, 6, 0], abs=1e-6)
    assert patches[1][-1, -1] == pytest.approx(image[0, 7, 13, 0], abs=1e-6)
    # A glimpse hanging over the border reads zeros outside.
    corner = model.sense(tf.constant(image), tf.constant([[-1.0, -1.0]])).numpy().reshape(2, 4, 4)
    np.testing.assert_allclose(corner[0, :2], 0.0)
    np.testing.assert_allclose(corner[0, 2:, 2:], image[0, :2, :2, 0], atol=1e-6)


def test_gaussian_log_prob_and_reinforce_gradient_closed_forms():
    x, mean, std = np.float32([[0.3, -0.2]]), np.float32([[0.1, 0.4]]), 0.15
    expected = sum(-0.5 * ((a - m) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
                   for a, m in zip(x[0], mean[0]))
    assert float(ram.gaussian_log_prob(x, mean, std)[0]) == pytest.approx(expected, rel=1e-6)
    # d/dmean of -A log pi(l | mean) = -A (l - mean) / std^2, the score-function gradient.
    m = tf.Variable(mean)
    with tf.GradientTape() as tape:
        surrogate = -0.7 * ram.gaussian_log_prob(x, m, std)
    np.testing.assert_allclose(tape.gradient(surrogate, m).numpy(), -0.7 * (x - mean) / std ** 2, rtol=1e-5)


def test_losses_use_the_reward_and_baseline():
    logits = tf.constant([[2.0, 0.0], [0.0, 1.0]])  # predicts 0, 1
    labels = tf.constant([0, 0])  # rewards 1, 0
    log_probs = tf.constant([[-1.0, -2.0]])  # T-1 = 1 decision
    baselines = tf.constant([[0.5, 0.5], [0.25, 0.75]])
    total, ce, reinforce, mse, reward = [t.numpy() for t in ram.ram_losses(logits, log_probs, baselines, labels, 2.0)]
    np.testing.assert_array_equal(reward, [1.0, 0.0])
    np.testing.assert_allclose(reinforce, [-(1 - 0.25) * -1.0, -(0 - 0.75) * -2.0])
    np.testing.assert_allclose(mse, [((1 - .5) ** 2 + (1 - .25) ** 2) / 2, ((0 - .5) ** 2 + (0 - .75) ** 2) / 2])
    np.testing.assert_allclose(total, ce + 2.0 * reinforce + mse, rtol=1e-6)


def test_cluttered_digits_hold_their_digit_and_are_deterministic():
    rng = np.random.default_rng(1)
    digits = rng.uniform(size=(5, 8, 8, 1)).astype(np.float32)
    labels = np.arange(5)
    x, y = ram.cluttered_digits(digits, labels, 20, canvas=24, digit_size=16, clutter=0, seed=3)
    assert x.shape == (20, 24, 24, 1) and set(y) <= set(labels)
    for canvas, label in zip(x, y):
        big = np.kron(digits[label, ..., 0], np.ones((2, 2)))
        hits = [(i, j) for i in range(9) for j in range(9) if np.allclose(canvas[i:i + 16, j:j + 16, 0], big)]
        assert hits and canvas.sum() == pytest.approx(big.sum(), rel=1e-5)
    cluttered, y2 = ram.cluttered_digits(digits, labels, 20, canvas=24, digit_size=16, clutter=2, seed=3)
    np.testing.assert_array_equal(cluttered, ram.cluttered_digits(digits, labels, 20, 24, 16, 2, seed=3)[0])
    ink = cluttered.reshape(20, -1).sum(1)
    digit_ink = np.array([4 * digits[label].sum() for label in y2])
    assert (ink >= digit_ink - 1e-3).all() and (ink > digit_ink + 1e-3).any()  # clutter only adds ink
    with pytest.raises(ConfigError, match="digit_size"):
        ram.cluttered_digits(digits, labels, 2, canvas=24, digit_size=12)


TINY = dict(canvas=16, digit_size=16, clutter=0, train_images=512, glimpses=3, glimpse_size=8, scales=2, hidden=64,
            batch_size=32, epochs=4, lr=3e-3, log_every=1000)


@pytest.mark.slow
def test_tiny_run_learns_and_resumes_exactly(tmp_path):
    whole = ram.train(ram.RAMConfig(**TINY), str(tmp_path / "whole"), log=None)
    assert whole.metrics["test_accuracy"] > 0.5  # chance is 0.1
    ram.train(ram.RAMConfig(**{**TINY, "epochs": 2}), str(tmp_path / "split"), log=None)
    resumed = ram.train(ram.RAMConfig(**TINY), str(tmp_path / "split"), resume=True, log=None)
    for a, b in zip(whole.task.model.get_weights(), resumed.task.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert resumed.metrics["test_accuracy"] == whole.metrics["test_accuracy"]


def test_bad_config():
    with pytest.raises(ConfigError, match="digit_size"):
        ram.RAMConfig(canvas=16, digit_size=24).validate()
    with pytest.raises(ConfigError, match="location_std"):
        ram.RAMConfig(location_std=0).validate()
