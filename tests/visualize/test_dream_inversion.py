"""DeepDream raises the chosen layer's activations; feature inversion of an early layer recovers the image."""

import numpy as np
import pytest
import tensorflow as tf

import cs231n_tf  # noqa: F401  (Keras 2)
from cs231n_tf.errors import ConfigError
from cs231n_tf.visualize import deep_dream, invert_features


def _tiny(size=None):
    inputs = tf.keras.Input((size, size, 3))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1",
                               kernel_initializer=tf.keras.initializers.GlorotUniform(0))(inputs)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c2",
                               kernel_initializer=tf.keras.initializers.GlorotUniform(1))(x)
    return tf.keras.Model(inputs, x, name="tiny")


def _image():
    return np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)


@pytest.mark.parametrize("size", [None, 16])  # fully convolutional, and a fixed input size
def test_deep_dream_amplifies_the_layer(size):
    model, img = _tiny(size), _image()
    sub = tf.keras.Model(model.input, model.get_layer("c2").output)
    before = np.linalg.norm(sub(img).numpy())
    out, history = deep_dream(model, img, "c2", steps=10, octaves=2, clip=(-1.0, 1.0))
    assert out.shape == img.shape and out.min() >= -1.0 and out.max() <= 1.0
    assert np.linalg.norm(sub(out).numpy()) > 1.15 * before
    # The objective is 0.5 * mean(A^2) of the full-size image after each octave, and it grows.
    assert history[-1] == pytest.approx(0.5 * np.mean(np.square(sub(out).numpy())), rel=1e-5)
    assert history[1] > history[0] > 0.5 * np.mean(np.square(sub(img).numpy()))


def test_inversion_of_an_early_layer_recovers_the_image():
    rng = np.random.default_rng(0)
    target = tf.image.resize(rng.uniform(-1, 1, (1, 4, 4, 3)), (16, 16)).numpy().astype(np.float32)
    model = _tiny(16)
    result = invert_features(model, target, "c1", steps=100, clip=(-1.0, 1.0))
    start = invert_features(model, target, "c1", steps=1, learning_rate=1e-12).image
    assert result.loss.shape == (101,) and result.loss[-1] < 0.01 * result.loss[0]
    assert np.sum((result.image - target) ** 2) < 0.05 * np.sum((start - target) ** 2)
    # loss[0] is the normalised feature distance of the start, computed here by hand.
    sub = tf.keras.Model(model.input, model.get_layer("c1").output)
    want = sub(target).numpy()
    assert result.loss[0] == pytest.approx(np.sum((sub(start).numpy() - want) ** 2) / np.sum(want ** 2), rel=1e-3)


@pytest.mark.parametrize("fn", [lambda m, x: deep_dream(m, x, "conv9", steps=1),
                                lambda m, x: invert_features(m, x, "conv9", steps=1)])
def test_unknown_layer_lists_the_valid_ones(fn):
    with pytest.raises(ConfigError, match="valid: .*c1, c2"):
        fn(_tiny(16), _image())
