"""Saliency, SmoothGrad's building block, guided backpropagation and Grad-CAM equal tf-keras-vis's on the same
model (the maintained library's ``ReplaceToLinear`` scores the pre-softmax output, as ours does)."""

import numpy as np
import pytest
import tensorflow as tf

import cs231n_tf  # noqa: F401  (Keras 2, before tf-keras-vis imports TensorFlow)
from cs231n_tf import visualize

tf_keras_vis = pytest.importorskip("tf_keras_vis")
from tf_keras_vis.gradcam import Gradcam  # noqa: E402
from tf_keras_vis.saliency import Saliency  # noqa: E402
from tf_keras_vis.utils.model_modifiers import GuidedBackpropagation, ReplaceToLinear  # noqa: E402
from tf_keras_vis.utils.scores import CategoricalScore  # noqa: E402


def _model():
    tf.keras.utils.set_random_seed(0)
    # "same" padding keeps c2 at the input's size, so Grad-CAM's upsampling is the identity in both libraries.
    return tf.keras.Sequential([
        tf.keras.Input((8, 8, 3)),
        tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1"),
        tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c2"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(3, activation="softmax", name="scores"),
    ])


X = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
Y = [0, 2]


def test_saliency_equals_tf_keras_vis():
    model = _model()
    theirs = Saliency(model, model_modifier=ReplaceToLinear(), clone=True)(CategoricalScore(Y), X, smooth_samples=0,
                                                                          normalize_map=False)
    np.testing.assert_allclose(visualize.saliency(model, X, Y), theirs, rtol=1e-6, atol=1e-9)
    assert theirs.max() > 0


def test_guided_backprop_equals_tf_keras_vis():
    model = _model()
    theirs = Saliency(model, model_modifier=[ReplaceToLinear(), GuidedBackpropagation()], clone=True)(
        CategoricalScore(Y), X, smooth_samples=0, normalize_map=False)
    ours = np.abs(visualize.guided_backprop(model, X, Y)).max(-1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def test_gradcam_equals_tf_keras_vis():
    model = _model()
    theirs = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)(
        CategoricalScore(Y), X, penultimate_layer="c2", seek_penultimate_conv_layer=False, normalize_cam=False)
    np.testing.assert_allclose(visualize.gradcam(model, X, Y, "c2"), theirs, rtol=1e-5, atol=1e-9)
    assert theirs.max() > 0
