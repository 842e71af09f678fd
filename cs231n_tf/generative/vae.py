"""Convolutional autoencoder and variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

Likelihood: **Bernoulli** on pixels in [0, 1]. The decoder outputs one logit per pixel and the
reconstruction term is the summed sigmoid cross-entropy ``-sum_i [x_i log p_i + (1-x_i) log(1-p_i)]``
in nats. On binarised images (``binarize``) this is the exact negative log-likelihood of the
image, so the negative ELBO is an upper bound on ``-log p(x)`` and converts to bits/dim; on
grey-level pixels it is the usual cross-entropy surrogate, not a normalised density of the data.

``negative_elbo = reconstruction + KL(q(z|x) || N(0, I))`` with the encoder's diagonal Gaussian
``q(z|x) = N(mean, exp(log_var))``; the KL term has the closed form of Kingma & Welling's
appendix B, :func:`gaussian_kl`. Sampling ``z = mean + exp(log_var / 2) * eps`` is the
reparameterisation trick (:func:`reparameterize`), which lets the gradient reach the encoder.

Builders (Keras functional): :func:`conv_encoder` (two stride-2 3x3 convs, a dense layer, the
code, or ``2 * latent_dim`` outputs ``[mean, log_var]`` for the VAE) and :func:`conv_decoder`
(the mirror image with transposed convs, per-pixel logits); image sides must be multiples of 4.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ShapeError


def check_image_shape(image_shape):
    """``(H, W, C)`` with ``H`` and ``W`` multiples of 4 (two stride-2 stages), else :class:`ShapeError`."""
    shape = tuple(int(d) for d in image_shape)
    if len(shape) != 3 or shape[0] % 4 or shape[1] % 4 or min(shape) < 1:
        raise ShapeError(f"the conv autoencoder needs HxWxC images with H and W multiples of 4, got "
                         f"{'x'.join(map(str, shape))}")
    return shape


def conv_encoder(image_shape, outputs, filters=32, hidden=128, name="encoder"):
    """``[b, H, W, C] -> [b, outputs]``: conv(filters, s2), conv(2 filters, s2), dense(hidden), dense(outputs)."""
    h, w, c = check_image_shape(image_shape)
    x = inputs = tf.keras.Input((h, w, c), name="images")
    x = tf.keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name="conv1")(x)
    x = tf.keras.layers.Conv2D(2 * filters, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = tf.keras.layers.Dense(hidden, activation="relu", name="hidden")(x)
    out = tf.keras.layers.Dense(outputs, name="code", dtype="float32")(x)
    return tf.keras.Model(inputs, out, name=name)


def conv_decoder(image_shape, latent_dim, filters=32, hidden=128, name="decoder"):
    """``[b, latent_dim] -> [b, H, W, C]`` per-pixel Bernoulli logits (the mirror of :func:`conv_encoder`)."""
    h, w, c = check_image_shape(image_shape)
    z = inputs = tf.keras.Input((int(latent_dim),), name="latent")
    z = tf.keras.layers.Dense(hidden, activation="relu", name="hidden")(z)
    z = tf.keras.layers.Dense(h // 4 * w // 4 * 2 * filters, activation="relu", name="project")(z)
    z = tf.keras.layers.Reshape((h // 4, w // 4, 2 * filters), name="reshape")(z)
    z = tf.keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu", name="up1")(z)
    out = tf.keras.layers.Conv2DTranspose(c, 3, strides=2, padding="same", name="logits", dtype="float32")(z)
    return tf.keras.Model(inputs, out, name=name)


def split_moments(encoded):
    """The VAE encoder's ``[b, 2k]`` output -> ``(mean [b, k], log_var [b, k])``."""
    mean, log_var = tf.split(tf.cast(encoded, tf.float32), 2, axis=-1)
    return mean, log_var


def reparameterize(mean, log_var, eps):
    """``z = mean + exp(log_var / 2) * eps`` with ``eps ~ N(0, I)`` drawn by the caller."""
    return mean + tf.exp(0.5 * log_var) * eps


def gaussian_kl(mean, log_var):
    """``KL(N(mean, diag(exp(log_var))) || N(0, I))`` per example, in nats:
    ``1/2 sum_j (exp(log_var_j) + mean_j^2 - 1 - log_var_j)``."""
    return 0.5 * tf.reduce_sum(tf.exp(log_var) + tf.square(mean) - 1.0 - log_var, axis=-1)


def bernoulli_nll(logits, targets):
    """``-log p(targets | logits)`` per example, in nats, summed over pixels (targets in [0, 1])."""
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(targets, tf.float32),
                                                 logits=tf.cast(logits, tf.float32))
    return tf.reduce_sum(tf.reshape(ce, [tf.shape(ce)[0], -1]), axis=-1)


def negative_elbo(logits, targets, mean, log_var):
    """``(reconstruction, kl)`` per example in nats; their sum is the negative ELBO."""
    return bernoulli_nll(logits, targets), gaussian_kl(mean, log_var)


def interpolate(z0, z1, steps):
    """``steps`` codes on the straight line from ``z0`` to ``z1`` (both included): ``[steps, k]``."""
    t = np.linspace(0.0, 1.0, int(steps), dtype=np.float32)[:, None]
    return (1.0 - t) * np.asarray(z0, np.float32)[None] + t * np.asarray(z1, np.float32)[None]


def manifold_codes(n, low=0.05, high=0.95):
    """An ``n x n`` grid of 2-D codes at the standard normal's quantiles ``linspace(low, high, n)``,
    row-major from the top left (Kingma & Welling's figure 4): ``[n * n, 2]``."""
    from scipy.stats import norm

    q = norm.ppf(np.linspace(low, high, int(n))).astype(np.float32)
    rows, cols = np.meshgrid(q[::-1], q, indexing="ij")
    return np.stack([cols.ravel(), rows.ravel()], axis=1)
