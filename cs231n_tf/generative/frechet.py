"""The Fréchet distance between two sets of features, each summarised as a Gaussian.

``d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})`` (Dowson & Landau 1982), the formula
of Heusel et al.'s FID. Applied here to the features of a small classifier the package trains on
the same data, it is NOT the Inception FID: numbers are comparable only between runs scored with
the same feature classifier.

``Tr((S_1 S_2)^{1/2})`` is computed as the sum of the square roots of the eigenvalues of the
symmetric positive semi-definite ``A S_2 A`` with ``A = S_1^{1/2}`` (same eigenvalues as
``S_1 S_2``), in float64: no complex square roots of a non-symmetric product.
"""

import numpy as np

from cs231n_tf.errors import ShapeError

FEATURES = 64  # width of the feature classifier's penultimate layer


def _sqrt_psd(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def gaussian_frechet_distance(mu1, sigma1, mu2, sigma2):
    """The squared Fréchet (2-Wasserstein) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ShapeError(f"means {mu1.shape}, {mu2.shape} and covariances {sigma1.shape}, {sigma2.shape} do not match")
    root = _sqrt_psd(sigma1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ sigma2 @ root), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * cross)


def frechet_distance(features1, features2):
    """Fréchet distance of two feature sets ``[n, d]`` (their means and sample covariances)."""
    a, b = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ShapeError(f"features must be [n, d] arrays with the same d and n >= 2, got {a.shape} and {b.shape}")
    return gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def feature_classifier(x_train, y_train, seed=0, epochs=5, batch_size=64):
    """A small CNN classifier trained on the engine (``train_model``); returns ``(features_model, classifier)``.

    ``x_train [n, H, W, C]`` in [-1, 1], ``y_train [n]`` ints. Two 3x3 conv + max-pool blocks, a
    ``FEATURES``-unit ReLU layer (the features the Fréchet distance compares) and a softmax
    layer. Deterministic for a ``seed``.
    """
    import tensorflow as tf

    from cs231n_tf.tasks.classification import train_model

    layers = tf.keras.layers
    num_classes = int(np.max(y_train)) + 1
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input(x_train.shape[1:], name="images")
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPool2D(2, padding="same")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPool2D(2, padding="same")(x)
    features = layers.Dense(FEATURES, activation="relu", name="features")(layers.Flatten()(x))
    classifier = tf.keras.Model(inputs, layers.Dense(num_classes, name="logits")(features))

    def epoch_data(epoch):
        order = np.random.default_rng([seed, epoch]).permutation(len(x_train))
        return tf.data.Dataset.from_tensor_slices((x_train[order], y_train[order])).batch(batch_size,
                                                                                           drop_remainder=True)

    train_model(classifier, epoch_data, epochs, tf.keras.optimizers.Adam(1e-3), seed=seed, batch_size=batch_size)
    return tf.keras.Model(inputs, features, name="frechet_features"), classifier


def generator_frechet_distance(generate, images, samples=None, seed=0, epochs=5):
    """Fréchet distance between ``generate(noise_seed, n)``'s images and the test images of ``images``.

    ``images``: a :class:`~cs231n_tf.generative.data.GANImages`; ``generate(n, seed) -> [n, H, W, C]``.
    The feature classifier (:func:`feature_classifier`) is trained on ``images``' training split.
    ``samples`` generated images (default: as many as test images) are compared with the test split.
    """
    features, _ = feature_classifier(images.x_train, images.y_train, seed=seed, epochs=epochs)
    n = samples or len(images.x_test)
    fake = np.asarray(generate(n, seed))
    real_f = features.predict(images.x_test, batch_size=256, verbose=0)
    fake_f = features.predict(fake.reshape(-1, *images.image_shape), batch_size=256, verbose=0)
    return frechet_distance(real_f, fake_f)
