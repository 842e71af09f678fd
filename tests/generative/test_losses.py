"""The GAN losses against closed forms in float64 NumPy, TensorFlow's own ops and their gradients."""

import numpy as np
import pytest

import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from cs231n_tf.errors import ShapeError
from cs231n_tf.generative import losses


def np_softplus(x):
    return np.logaddexp(0.0, x)  # log(1 + e^x), float64 log-sum-exp


def np_bce(logits, labels):
    # -z log sigmoid(s) - (1 - z) log(1 - sigmoid(s)) = z softplus(-s) + (1 - z) softplus(s)
    return labels * np_softplus(-logits) + (1 - labels) * np_softplus(logits)


RNG = np.random.default_rng(0)
REAL = RNG.normal(size=(64, 1)) * 3
FAKE = RNG.normal(size=(64, 1)) * 3 - 1
HUGE = np.array([[-1e4], [-300.0], [-80.0], [0.0], [80.0], [300.0], [1e4]])


def test_sigmoid_cross_entropy_matches_tf_and_float64_for_any_logit():
    for logits in (REAL, HUGE):
        for z in (0.0, 1.0, 0.3):
            labels = np.full_like(logits, z)
            got = losses.sigmoid_cross_entropy(tf.constant(logits, tf.float32), labels).numpy()
            assert np.all(np.isfinite(got))
            np.testing.assert_allclose(got, np_bce(logits, labels), rtol=1e-5, atol=1e-6)
            tf_ref = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.constant(labels, tf.float32),
                                                             logits=tf.constant(logits, tf.float32)).numpy()
            np.testing.assert_allclose(got, tf_ref, rtol=1e-6, atol=1e-6)


def test_course_losses_closed_forms():
    real, fake = tf.constant(REAL, tf.float32), tf.constant(FAKE, tf.float32)
    expected_d = np.mean(np_softplus(-REAL)) + np.mean(np_softplus(FAKE))  # -log D(x) - log(1 - D(G(z)))
    assert losses.discriminator_loss(real, fake).numpy() == pytest.approx(expected_d, rel=1e-5)
    assert losses.generator_loss(fake).numpy() == pytest.approx(np.mean(np_softplus(-FAKE)), rel=1e-5)
    assert losses.minimax_generator_loss(fake).numpy() == pytest.approx(-np.mean(np_softplus(FAKE)), rel=1e-5)
    assert losses.ls_discriminator_loss(real, fake).numpy() == pytest.approx(
        0.5 * np.mean((REAL - 1) ** 2) + 0.5 * np.mean(FAKE ** 2), rel=1e-5)
    assert losses.ls_generator_loss(fake).numpy() == pytest.approx(0.5 * np.mean((FAKE - 1) ** 2), rel=1e-5)
    assert losses.wasserstein_critic_loss(real, fake).numpy() == pytest.approx(FAKE.mean() - REAL.mean(), abs=1e-5)
    assert losses.wasserstein_generator_loss(fake).numpy() == pytest.approx(-FAKE.mean(), abs=1e-6)
    # The course's sanity values: a perfect discriminator has zero loss, and 2 log 2 at D = 1/2.
    assert losses.discriminator_loss(tf.zeros((4, 1)), tf.zeros((4, 1))).numpy() == pytest.approx(2 * np.log(2))


def test_losses_stable_for_huge_logits():
    h = tf.constant(HUGE, tf.float32)
    d = losses.discriminator_loss(h, -h).numpy()
    assert d == pytest.approx(np.mean(np_softplus(-HUGE)) + np.mean(np_softplus(-HUGE)), rel=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(h)
        g = losses.generator_loss(h)
    grad = tape.gradient(g, h).numpy()
    # d/ds softplus(-s) / n = -sigmoid(-s) / n, finite everywhere.
    np.testing.assert_allclose(grad, -0.5 * (1 - np.tanh(HUGE / 2)) / len(HUGE), atol=1e-7)  # -sigmoid(-s) / n


def test_non_saturating_generator_keeps_its_gradient():
    # Samples the discriminator rejects with confidence (logit -10): the minimax loss' gradient
    # vanishes like sigmoid(s), the course's non-saturating loss' stays near -1 per example.
    s = tf.constant([[-10.0]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(s)
        minimax, non_saturating = losses.minimax_generator_loss(s), losses.generator_loss(s)
    assert abs(tape.gradient(minimax, s).numpy()[0, 0]) == pytest.approx(1 / (1 + np.exp(10)), rel=1e-4)
    assert tape.gradient(non_saturating, s).numpy()[0, 0] == pytest.approx(-1 / (1 + np.exp(-10)), rel=1e-5)


def test_gradients_match_numerical_gradients_float64():
    real = tf.constant(REAL[:8], tf.float64)
    fake = tf.constant(FAKE[:8], tf.float64)
    for fn in (lambda f: losses.discriminator_loss(real, f), losses.generator_loss, losses.ls_generator_loss,
               lambda f: losses.ls_discriminator_loss(real, f)):
        theoretical, numerical = tf.test.compute_gradient(fn, [fake])
        np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-7)


def linear_critic(w, b=0.3):
    inputs = tf.keras.Input((len(w),))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(inputs))
    model.layers[-1].set_weights([np.asarray(w, np.float32)[:, None], np.array([b], np.float32)])
    return model


def test_gradient_penalty_linear_critic():
    real = tf.constant(RNG.normal(size=(16, 4)), tf.float32)
    fake = tf.constant(RNG.normal(size=(16, 4)), tf.float32)
    w = np.array([1.0, 2.0, -2.0, 4.0]) / 5.0  # unit norm: the gradient everywhere
    assert losses.gradient_penalty(linear_critic(w), real, fake, seed=0).numpy() == pytest.approx(0.0, abs=1e-6)
    # ||grad|| = 3 everywhere: (3 - 1)^2.
    assert losses.gradient_penalty(linear_critic(3 * w), real, fake, seed=0).numpy() == pytest.approx(4.0, rel=1e-5)


def test_gradient_penalty_quadratic_critic_closed_form_and_weight_gradient():
    # f(x) = a * ||x||^2 / 2: grad = a x_hat, penalty = mean((a ||x_hat|| - 1)^2).
    class Quadratic(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.a = tf.Variable(0.7)

        def call(self, x, training=False):
            return 0.5 * self.a * tf.reduce_sum(tf.square(tf.reshape(x, [tf.shape(x)[0], -1])), 1, keepdims=True)

    critic = Quadratic()
    real = tf.constant(RNG.normal(size=(8, 3, 3, 2)), tf.float32)
    fake = tf.constant(RNG.normal(size=(8, 3, 3, 2)), tf.float32)
    x_hat = losses.interpolates(real, fake, seed=5).numpy()
    eps = (x_hat - fake.numpy()) / (real.numpy() - fake.numpy())
    assert np.allclose(eps, eps[:, :1, :1, :1], atol=1e-4) and np.all((eps >= 0) & (eps <= 1))  # one eps per example
    norms = np.linalg.norm(x_hat.reshape(8, -1), axis=1)
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(critic, real, fake, seed=5)
    assert penalty.numpy() == pytest.approx(np.mean((0.7 * norms - 1) ** 2), rel=1e-5)
    # d/da mean((a n - 1)^2) = mean(2 (a n - 1) n): the penalty trains the critic.
    assert tape.gradient(penalty, critic.a).numpy() == pytest.approx(np.mean(2 * (0.7 * norms - 1) * norms), rel=1e-4)
    with pytest.raises(ShapeError, match="differ in shape"):
        losses.interpolates(tf.zeros((2, 3)), tf.zeros((2, 4)), seed=0)
