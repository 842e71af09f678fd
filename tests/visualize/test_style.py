"""The course's style-transfer losses against closed forms, and the optimisation on a tiny CNN."""

import numpy as np
import pytest
import tensorflow as tf

import cs231n_tf  # noqa: F401  (Keras 2)
from cs231n_tf.errors import ConfigError
from cs231n_tf.visualize.style import (content_loss, feature_extractor, gram_matrix, style_loss, style_transfer,
                                       tv_loss)


def test_gram_matrix_closed_form():
    # Channel c of a 2x2 map is the constant c + 1, so G[c, d] = 4 (c + 1)(d + 1).
    f = np.stack([np.full((2, 2), c + 1.0) for c in range(3)], axis=-1)[None].astype(np.float32)
    expected = 4.0 * np.outer([1, 2, 3], [1, 2, 3])
    np.testing.assert_allclose(gram_matrix(f, normalize=False).numpy()[0], expected)
    np.testing.assert_allclose(gram_matrix(f).numpy()[0], expected / (2 * 2 * 3), rtol=1e-6)
    np.testing.assert_allclose(gram_matrix(f[0]).numpy(), expected / 12, rtol=1e-6)


def test_gram_matrix_equals_matrix_product():
    f = np.random.default_rng(0).normal(size=(1, 3, 5, 4)).astype(np.float64)
    flat = f.reshape(-1, 4)
    np.testing.assert_allclose(gram_matrix(f).numpy()[0], flat.T @ flat / f.size, rtol=1e-12)


def test_content_and_tv_loss_numbers():
    a = np.zeros((1, 2, 2, 1), np.float32)
    b = np.array([1.0, 2.0, 0.0, -1.0], np.float32).reshape(1, 2, 2, 1)
    assert float(content_loss(0.5, b, a)) == pytest.approx(0.5 * 6.0)
    # Vertical differences -1, -3 and horizontal 1, -1: 1 + 9 + 1 + 1 = 12.
    assert float(tv_loss(b, 2.0)) == pytest.approx(24.0)


def test_style_loss_sums_weighted_gram_differences():
    rng = np.random.default_rng(1)
    feats = {"a": rng.normal(size=(1, 2, 3, 2)), "b": rng.normal(size=(1, 3, 3, 3))}
    targets = [np.eye(2), np.zeros((3, 3))]
    expected = sum(w * np.sum((f.reshape(-1, f.shape[-1]).T @ f.reshape(-1, f.shape[-1]) / f.size - t) ** 2)
                   for w, f, t in zip((2.0, 0.5), (feats["a"], feats["b"]), targets))
    assert float(style_loss(feats, ["a", "b"], targets, [2.0, 0.5])) == pytest.approx(expected, rel=1e-10)


def _tiny_cnn():
    inputs = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1",
                               kernel_initializer=tf.keras.initializers.GlorotUniform(0))(inputs)
    x = tf.keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c2",
                               kernel_initializer=tf.keras.initializers.GlorotUniform(1))(x)
    return tf.keras.Model(inputs, x, name="tiny")


def test_feature_extractor_lists_valid_layers():
    model = _tiny_cnn()
    out = feature_extractor(model, ["c1", "c2"])(np.zeros((1, 8, 8, 3), np.float32))
    assert out["c1"].shape == (1, 8, 8, 4) and out["c2"].shape == (1, 4, 4, 4)
    with pytest.raises(ConfigError, match="valid: .*c1, c2"):
        feature_extractor(model, ["conv9"])


def _problem():
    rng = np.random.default_rng(0)
    content = rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    style = rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    return feature_extractor(_tiny_cnn(), ["c1", "c2"]), content, style


def test_texture_synthesis_style_loss_falls_monotonically_with_lbfgs():
    extractor, content, style = _problem()
    result = style_transfer(extractor, content, style, content_layer="c2", content_weight=0.0,
                            style_layers=("c1", "c2"), style_weights=(1.0, 1.0), tv_weight=0.0,
                            optimizer="lbfgs", steps=20, log_every=2, init="random")
    styles = [h["style"] for h in result.history]
    assert all(b <= a for a, b in zip(styles, styles[1:]))
    assert styles[-1] < 0.05 * styles[0]


def test_adam_lowers_total_loss_and_clips():
    extractor, content, style = _problem()
    result = style_transfer(extractor, content, style, content_layer="c2", content_weight=1e-2,
                            style_layers=("c1", "c2"), style_weights=(1.0, 1.0), tv_weight=1e-3,
                            optimizer="adam", steps=30, learning_rate=0.05, clip=(-1.0, 1.0), log_every=10)
    assert result.history[-1]["total"] < result.history[0]["total"]
    assert [h["step"] for h in result.history] == [0, 10, 20, 30]
    assert result.image.min() >= -1.0 and result.image.max() <= 1.0


def test_bad_layer_and_optimizer():
    extractor, content, style = _problem()
    with pytest.raises(ConfigError, match="not an output"):
        style_transfer(extractor, content, style, content_layer="nope", style_layers=("c1",), style_weights=(1.0,))
    with pytest.raises(ConfigError, match="optimizer"):
        style_transfer(extractor, content, style, content_layer="c2", style_layers=("c1",), style_weights=(1.0,),
                       optimizer="sgd")
