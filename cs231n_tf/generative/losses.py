"""GAN losses (tier 1): the course's definitions written out, plus WGAN-GP as the modern reference.

With ``D(x) = sigmoid(s(x))`` for the discriminator's logit ``s``:

- :func:`discriminator_loss` (Goodfellow et al. 2014): ``-E[log D(x)] - E[log(1 - D(G(z)))]``,
  the means of the sigmoid cross-entropy of real logits against 1 and fake logits against 0.
- :func:`generator_loss`: the non-saturating ``-E[log D(G(z))]`` the course (and the paper's
  practice) uses; :func:`minimax_generator_loss` is the saturating ``E[log(1 - D(G(z)))]`` of the
  minimax game, whose gradient vanishes when D rejects the samples confidently (lecture 13).
- :func:`ls_discriminator_loss` / :func:`ls_generator_loss` (Mao et al. 2017, LSGAN, on raw
  scores with the course's factors of 1/2): ``1/2 E[(s(x) - 1)^2] + 1/2 E[s(G(z))^2]`` and
  ``1/2 E[(s(G(z)) - 1)^2]``.
- :func:`wasserstein_critic_loss`, :func:`wasserstein_generator_loss` and
  :func:`gradient_penalty` (Gulrajani et al. 2017, WGAN-GP): ``E[f(G(z))] - E[f(x)] + lambda *
  E[(||grad f(x_hat)||_2 - 1)^2]`` on random interpolates ``x_hat``; ``-E[f(G(z))]`` for G.

:func:`sigmoid_cross_entropy` is the numerically stable form
``max(s, 0) - s z + log(1 + exp(-|s|))`` (the course's ``bce_loss``): exact for any finite
logit, no overflow of ``exp`` and no ``log(0)``. The tests check it against
``tf.nn.sigmoid_cross_entropy_with_logits`` and a float64 NumPy log-sum-exp.
Every loss here is a mean over the batch it is given (one replica's part inside the engine).
"""

import tensorflow as tf

from cs231n_tf.errors import ShapeError


def _float(x):
    x = tf.convert_to_tensor(x)
    return x if x.dtype.is_floating else tf.cast(x, tf.float32)


def sigmoid_cross_entropy(logits, labels):
    """Elementwise ``-z log sigmoid(s) - (1 - z) log(1 - sigmoid(s))``, stable for any logit ``s``."""
    s = _float(logits)
    z = tf.cast(labels, s.dtype)
    # tf.where, not max/abs: their subgradients at s = 0 would not add up to the true slope there.
    positive = s >= 0
    relu = tf.where(positive, s, tf.zeros_like(s))
    neg_abs = tf.where(positive, -s, s)
    return relu - s * z + tf.math.log1p(tf.exp(neg_abs))


def discriminator_loss(logits_real, logits_fake):
    """The course's ``discriminator_loss``: mean BCE of real logits vs 1 plus mean BCE of fake logits vs 0."""
    real, fake = _float(logits_real), _float(logits_fake)
    return (tf.reduce_mean(sigmoid_cross_entropy(real, tf.ones_like(real)))
            + tf.reduce_mean(sigmoid_cross_entropy(fake, tf.zeros_like(fake))))


def generator_loss(logits_fake):
    """The course's non-saturating ``generator_loss``: mean BCE of fake logits vs 1, ``-E[log D(G(z))]``."""
    fake = _float(logits_fake)
    return tf.reduce_mean(sigmoid_cross_entropy(fake, tf.ones_like(fake)))


def minimax_generator_loss(logits_fake):
    """The minimax game's generator loss ``E[log(1 - D(G(z)))]`` (saturates: see the module docstring)."""
    fake = _float(logits_fake)
    return -tf.reduce_mean(sigmoid_cross_entropy(fake, tf.zeros_like(fake)))


def ls_discriminator_loss(scores_real, scores_fake):
    """The course's LSGAN discriminator loss ``1/2 E[(s_real - 1)^2] + 1/2 E[s_fake^2]``."""
    real, fake = _float(scores_real), _float(scores_fake)
    return 0.5 * tf.reduce_mean(tf.square(real - 1)) + 0.5 * tf.reduce_mean(tf.square(fake))


def ls_generator_loss(scores_fake):
    """The course's LSGAN generator loss ``1/2 E[(s_fake - 1)^2]``."""
    return 0.5 * tf.reduce_mean(tf.square(_float(scores_fake) - 1))


def wasserstein_critic_loss(scores_real, scores_fake):
    """WGAN critic loss ``E[f(G(z))] - E[f(x)]`` (minimised: the negated Wasserstein-1 estimate)."""
    return tf.reduce_mean(_float(scores_fake)) - tf.reduce_mean(_float(scores_real))


def wasserstein_generator_loss(scores_fake):
    """WGAN generator loss ``-E[f(G(z))]``."""
    return -tf.reduce_mean(_float(scores_fake))


def interpolates(real, fake, seed):
    """``eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per example (stateless, from ``seed``)."""
    real, fake = _float(real), _float(fake)
    if real.shape.rank is not None and fake.shape.rank is not None and real.shape[1:] != fake.shape[1:]:
        raise ShapeError(f"real {real.shape.as_list()} and fake {fake.shape.as_list()} examples differ in shape")
    batch = tf.shape(real)[0]
    eps_shape = tf.concat([[batch], tf.ones([tf.rank(real) - 1], tf.int32)], 0)
    seed = tf.cast([seed, 0] if isinstance(seed, int) else seed, tf.int64)
    eps = tf.random.stateless_uniform(eps_shape, seed=seed, dtype=real.dtype)
    return eps * real + (1.0 - eps) * fake


def gradient_penalty(critic, real, fake, seed):
    """Gulrajani et al.'s penalty ``E[(||grad_x critic(x_hat)||_2 - 1)^2]`` on :func:`interpolates`.

    The norm is over each example's whole input (every axis but the batch). Differentiable in the
    critic's weights (the tape records the input gradient), so it trains the critic. ``seed``: an
    int or a ``[2]`` int tensor.
    """
    x_hat = interpolates(real, fake, seed)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = tf.cast(critic(x_hat, training=True), tf.float32)
    grads = tf.cast(tape.gradient(scores, x_hat), tf.float32)
    axes = list(range(1, grads.shape.rank))
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))
