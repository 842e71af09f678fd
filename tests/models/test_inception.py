"""Inception-v4 and Inception-ResNet-v2: parameter counts against Keras and the quoted figures,
grid shapes, multiply-adds against the published counts, the residual scaling, a forward pass
and a training step on the smallest input, and option / input-size errors.
"""

import re

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import models
from cs231n_tf.errors import ConfigError
from cs231n_tf.models import complexity
from cs231n_tf.models import inception

# timm model cards (inception_v4.tf_in1k, inception_resnet_v2.tf_in1k): "GMACs: 12.3" and "13.2"
# at 299x299, the TF-slim networks' single forward pass.
PUBLISHED_GMACS = {"inception_v4": 12.3, "inception_resnet_v2": 13.2}


def trainable_params(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def grid(model, layer):
    return tuple(model.get_layer(layer).output_shape[1:])


def test_inception_resnet_v2_is_keras_inception_resnet_v2(zero_init):
    spec = models.get_spec("inception_resnet_v2")
    assert spec.reference_params == 55_813_192
    ours = models.build("inception_resnet_v2")
    assert trainable_params(ours) == spec.reference_params
    # Same weights, created in the same order: every kernel, bias and beta has Keras's shape.
    keras = tf.keras.applications.InceptionResNetV2(weights=None, input_shape=(75, 75, 3))
    assert trainable_params(keras) == spec.reference_params
    assert [tuple(v.shape) for v in ours.trainable_weights] == [tuple(v.shape) for v in keras.trainable_weights]
    # Moving statistics too: batchnorm without gamma everywhere, as in Keras.
    assert ours.count_params() == keras.count_params() == 55_873_736
    assert grid(ours, "mixed_5b_concat") == (35, 35, 320)
    assert grid(ours, "reduction_a_concat") == (17, 17, 1088)
    assert grid(ours, "reduction_b_concat") == (8, 8, 2080)
    assert grid(ours, "conv_7b_relu") == (8, 8, 1536)
    # 10 + 20 + 9 scaled blocks with Keras's scales; the last block8 is unscaled.
    scales = [layer.scale for layer in ours.layers if isinstance(layer, tf.keras.layers.Rescaling)]
    assert scales == pytest.approx([0.17] * 10 + [0.1] * 20 + [0.2] * 9)
    assert "block8_10_relu" not in [layer.name for layer in ours.layers]
    prof = complexity.profile(ours)
    assert prof.unknown_layers == ()
    assert prof.multiply_adds == pytest.approx(PUBLISHED_GMACS["inception_resnet_v2"] * 1e9, rel=0.05)


def test_inception_v4_counts_and_grids(zero_init):
    model = models.build("inception_v4")
    assert models.get_spec("inception_v4").reference_params is None
    assert trainable_params(model) == 42_648_232
    assert [grid(model, n) for n in ("stem4_concat", "stem5_concat", "stem6_concat", "reduction_a_concat",
                                     "reduction_b_concat", "inception_c3_concat")] == [
        (73, 73, 160), (71, 71, 192), (35, 35, 384), (17, 17, 1024), (8, 8, 1536), (8, 8, 1536)]
    blocks = [layer.name[:11] for layer in model.layers if re.fullmatch(r"inception_[abc]\d_concat", layer.name)]
    assert [blocks.count(f"inception_{k}") for k in "abc"] == [4, 7, 3]
    bn_channels = sum(layer.beta.shape[0] for layer in model.layers
                      if isinstance(layer, tf.keras.layers.BatchNormalization))
    assert bn_channels == 31_584
    # The quoted 42.7M (pytorchcv InceptionV4, keras-hub inception_v4_imagenet) has affine batchnorm.
    assert trainable_params(models.build("inception_v4", batchnorm_scale=True)) == 42_648_232 + bn_channels \
        == 42_679_816
    prof = complexity.profile(model)
    assert prof.unknown_layers == ()
    assert prof.multiply_adds == pytest.approx(PUBLISHED_GMACS["inception_v4"] * 1e9, rel=0.05)
    # The classifier is the only dense layer: 1536 * 1000 + 1000.
    assert sum(r.params for r in prof.layers if r.kind == "dense") == 1_537_000


def sgd_step(model, x, num_classes):
    """One plain-SGD step; returns the loss and whether the first conv and the logits moved."""
    labels = np.arange(len(x)) % num_classes
    variables = model.trainable_variables
    watched = [variables[0], variables[-2]]
    before = [v.numpy().copy() for v in watched]
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    grads = tape.gradient(loss, variables)
    assert all(g is not None for g in grads)
    tf.keras.optimizers.SGD(0.01).apply_gradients(zip(grads, variables))
    return float(loss), [not np.array_equal(b, v.numpy()) for b, v in zip(before, watched)]


@pytest.mark.parametrize("name", ["inception_v4", "inception_resnet_v2"])
def test_forward_and_training_step_on_the_smallest_input(name):
    tf.keras.utils.set_random_seed(0)
    size = inception.INCEPTION_MIN_SIZE
    model = models.build(name, (size, size, 3), 7)
    x = np.random.RandomState(0).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    logits = model(x, training=False).numpy()
    assert logits.shape == (2, 7) and np.isfinite(logits).all()
    # Inference is deterministic (dropout off, batchnorm on its moving statistics).
    np.testing.assert_array_equal(model(x, training=False).numpy(), logits)
    # The last reduction leaves a 1x1 grid at the minimum size.
    assert grid(model, "reduction_b_concat")[:2] == (1, 1)
    loss, moved = sgd_step(model, x, 7)
    assert np.isfinite(loss) and loss > 0
    assert moved == [True, True]


def test_residual_block_adds_the_scaled_branch():
    tf.keras.utils.set_random_seed(1)
    model = inception.inception_resnet_v2((75, 75, 3), 5, residual_scales=(0.3, 0.1, 0.2))
    block_input = model.get_layer("block35_1_add").input[0]
    probe = tf.keras.Model(model.input, [block_input, model.get_layer("block35_1_up").output,
                                         model.get_layer("block35_1_relu").output])
    x = np.random.RandomState(2).uniform(-1, 1, (1, 75, 75, 3)).astype(np.float32)
    identity, up, out = (t.numpy() for t in probe(x, training=False))
    assert np.abs(up).max() > 0
    np.testing.assert_allclose(out, np.maximum(identity + 0.3 * up, 0.0), rtol=1e-5, atol=1e-5)
    assert model.get_layer("block17_1_scale").scale == pytest.approx(0.1)


def test_mixed_precision_forward():
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = models.build("inception_resnet_v2", (75, 75, 3), 3)
        logits = model(np.zeros((1, 75, 75, 3), np.float32), training=False)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("block35_1_scale").compute_dtype == "float16"
    assert logits.shape == (1, 3) and np.isfinite(logits.numpy()).all()


@pytest.mark.parametrize("name", ["inception_v4", "inception_resnet_v2"])
@pytest.mark.parametrize("shape", [(74, 74, 3), (299, 74, 3), (75, 75), (0, 75, 3)])
def test_too_small_or_malformed_input_is_rejected(name, shape):
    with pytest.raises(ConfigError, match="input_shape"):
        models.build(name, shape, 10)


@pytest.mark.parametrize("name, options, match", [
    ("inception_v4", {"dropout": 1.0}, "dropout"),
    ("inception_v4", {"dropout": -0.1}, "dropout"),
    ("inception_v4", {"batchnorm_scale": "yes"}, "batchnorm_scale"),
    ("inception_v4", {"residual_scales": (0.1, 0.1, 0.1)}, "accepted: batchnorm_scale, dropout"),
    ("inception_resnet_v2", {"residual_scales": (0.1, 0.2)}, "residual_scales"),
    ("inception_resnet_v2", {"residual_scales": (0.0, 0.1, 0.2)}, "residual_scales"),
    ("inception_resnet_v2", {"residual_scales": (0.1, 0.1, 1.5)}, "residual_scales"),
    ("inception_resnet_v2", {"residual_scales": "abc"}, "residual_scales"),
    ("inception_resnet_v2", {"batchnorm_scale": 1}, "batchnorm_scale"),
])
def test_bad_options_are_rejected(name, options, match):
    with pytest.raises(ConfigError, match=match):
        models.build(name, (75, 75, 3), 10, **options)
