"""Saliency, SmoothGrad, guided backprop, Grad-CAM, occlusion and fooling images on hand-built models.

The "object" model sees a bright square on a dark 16x16 image: a 3x3 averaging conv with a negative
bias (ReLU is active only on the object), global average pooling and a dense layer whose class 1
score grows with the object's evidence. Every map must put its mass on the square.
"""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import visualize
from cs231n_tf.errors import ConfigError, DataError

BOX = (slice(2, 7), slice(9, 14))
NEAR_BOX = (slice(1, 8), slice(8, 15))  # the box and the 3x3 conv's one-pixel reach around it: 19% of the image


def _object_model(softmax=False):
    inp = tf.keras.Input((16, 16, 1))
    conv = tf.keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")
    h = conv(inp)
    h = tf.keras.layers.GlobalAveragePooling2D(name="gap")(h)
    dense = tf.keras.layers.Dense(2, activation="softmax" if softmax else None, name="head")
    out = dense(h)
    model = tf.keras.Model(inp, out)
    k = np.zeros((3, 3, 1, 2), np.float32)
    k[..., 0, 0] = 1.0 / 9
    k[..., 0, 1] = -1.0 / 9
    conv.set_weights([k, np.array([-0.5, 0.0], np.float32)])
    dense.set_weights([np.array([[-1.0, 1.0], [0.0, 0.0]], np.float32), np.zeros(2, np.float32)])
    return model


def _image():
    rng = np.random.default_rng(0)
    x = np.zeros((1, 16, 16, 1), np.float32) + 0.05 * rng.random((1, 16, 16, 1), dtype=np.float32)
    x[0, BOX[0], BOX[1]] = 1.0
    return x


def _mass_in_box(m, box=NEAR_BOX):
    m = np.abs(m[0])
    return m[box].sum() / m.sum()


def test_saliency_is_the_abs_max_over_channels_of_the_score_gradient():
    model = _object_model()
    x = _image()
    s = visualize.compute_saliency_maps(x, np.array([1]), model)
    assert s.shape == (1, 16, 16)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        score = model(xt)[0, 1]
    np.testing.assert_allclose(s, np.abs(tape.gradient(score, xt).numpy()).max(-1), rtol=1e-6)
    assert _mass_in_box(s) > 0.9


def test_softmax_model_uses_the_pre_softmax_score():
    np.testing.assert_allclose(visualize.saliency(_object_model(True), _image(), [1]),
                               visualize.saliency(_object_model(False), _image(), [1]), rtol=1e-6)
    np.testing.assert_allclose(visualize.gradcam(_object_model(True), _image(), [1]),
                               visualize.gradcam(_object_model(False), _image(), [1]), rtol=1e-6)


def test_smoothgrad_concentrates_on_the_object_and_zero_noise_is_saliency():
    model = _object_model()
    x = _image()
    assert _mass_in_box(visualize.smoothgrad(model, x, [1], samples=8, noise=0.05)) > 0.8
    np.testing.assert_allclose(visualize.smoothgrad(model, x, [1], samples=2, noise=0.0),
                               visualize.saliency(model, x, [1]), rtol=1e-6)


def test_guided_backprop_passes_only_positive_gradients_through_relus():
    rng = np.random.default_rng(1)
    inp = tf.keras.Input((2, 2, 1))
    hidden = tf.keras.layers.Dense(6, activation="relu")
    out = tf.keras.layers.Dense(3)(hidden(tf.keras.layers.Flatten()(inp)))
    model = tf.keras.Model(inp, out)
    model.set_weights([w + 0.3 * rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()])
    x = rng.standard_normal((4, 2, 2, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    W1, b1, W2, _ = model.get_weights()
    active = (x.reshape(4, 4) @ W1 + b1) > 0
    upstream = W2[:, y].T  # d score / d hidden activation, (N, 6)
    expected = ((active * (upstream > 0) * upstream) @ W1.T).reshape(x.shape)
    plain = ((active * upstream) @ W1.T).reshape(x.shape)
    got = visualize.guided_backprop(model, x, y)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, plain)
    # The copy keeps the weights and the forward pass.
    np.testing.assert_allclose(visualize.guided_model(model)(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_gradcam_on_the_last_conv_layer_covers_the_object():
    cam = visualize.gradcam(_object_model(), _image(), [1])
    assert cam.shape == (1, 16, 16) and cam.min() >= 0
    assert _mass_in_box(cam) > 0.7


def test_gradcam_errors_name_the_valid_layers_and_refuse_dense_models():
    with pytest.raises(ConfigError, match="layers with feature maps: conv"):
        visualize.gradcam(_object_model(), _image(), [1], layer="nope")
    dense = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    with pytest.raises(ConfigError, match="no convolutional layer"):
        visualize.gradcam(dense, np.zeros((1, 4), np.float32), [0])
    with pytest.raises(DataError, match="0..1"):
        visualize.saliency(_object_model(), _image(), [2])


def test_occluding_the_object_lowers_the_class_score():
    model = _object_model()
    x = _image()
    m = visualize.occlusion(model, x, [1], patch=4, stride=2)
    assert m.shape == (1, 16, 16)
    outside = np.ones((16, 16), bool)
    outside[0:10, 5:16] = False  # the box and the 4x4 patch's reach around it
    assert m[0][BOX].mean() > 0.01 and m[0][BOX].mean() > 10 * np.abs(m[0][outside]).mean()
    # The drop where the object is, measured directly.
    covered = x.copy()
    covered[0, 2:6, 10:14] = 0
    assert model(covered).numpy()[0, 1] < model(x).numpy()[0, 1]


def test_fooling_image_flips_the_prediction_and_reports_its_size():
    model = _object_model()
    x = np.concatenate([_image(), 0.8 * _image()])
    pred = model(x).numpy().argmax(1)
    target = 1 - pred
    out = visualize.make_fooling_image(x, target, model, learning_rate=0.5, max_steps=200)
    assert out["success"].all()
    np.testing.assert_array_equal(model(out["images"]).numpy().argmax(1), target)
    delta = (out["images"] - x).reshape(2, -1)
    np.testing.assert_allclose(out["linf"], np.abs(delta).max(1), rtol=1e-5)
    np.testing.assert_allclose(out["l2"], np.linalg.norm(delta, axis=1), rtol=1e-5)
    assert (out["steps"] >= 1).all() and (out["steps"] <= 200).all()


def test_class_visualization_raises_the_target_score_and_draws_the_object_pattern():
    model = _object_model()
    img, scores = visualize.create_class_visualization(1, model, l2_reg=1e-3, learning_rate=0.5, num_iterations=30,
                                                       blur_every=10, max_jitter=2, clip_min=0.0, clip_max=1.0,
                                                       init=0.6 * _image())
    assert img.shape == (1, 16, 16, 1) and img.min() >= 0 and img.max() <= 1
    assert scores[-1] > float(model(0.6 * _image()).numpy()[0, 1]) and scores[-1] > scores[0] - 1e-6
