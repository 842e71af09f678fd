"""FCN and U-Net builders: shapes, every upsampling, stable names, skips, and the input checks."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.errors import ConfigError, ShapeError
from cs231n_tf.segmentation.layers import UPSAMPLING
from cs231n_tf.segmentation.models import build_segmenter, fcn, unet


@pytest.mark.parametrize("upsampling", UPSAMPLING)
def test_every_upsampling_gives_per_pixel_logits_and_trains(upsampling):
    model = fcn((8, 8, 3), 4, upsampling=upsampling, depth=2, filters=2)
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    out = model(x, training=False)
    assert out.shape == (2, 8, 8, 4) and out.dtype == tf.float32
    names = [layer.name for layer in model.layers]
    for expected in ("enc1_conv1", "enc2_down", "bottleneck_conv2", "dec2_up", "dec1_up", "dec1_conv2", "logits"):
        assert expected in names
    assert not any(name.endswith("_skip") for name in names)
    # Every weight gets a gradient: nothing upstream is cut off by the upsampling.
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True)))
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads) == len(grads)


def test_max_unpool_restores_values_at_the_switches():
    model = fcn((8, 8, 1), 2, upsampling="max_unpool", depth=1, filters=2)
    pool = model.get_layer("enc1_down")
    unpool = model.get_layer("dec1_up")
    probe = tf.keras.Model(model.input, [pool.input, unpool.output])
    before, after = probe(np.random.default_rng(1).uniform(size=(1, 8, 8, 1)).astype(np.float32))
    # Unpooled maps are zero except at exactly one position per 2x2 window of the pooled input.
    nonzero = (after.numpy() != 0).reshape(1, 4, 2, 4, 2, 2).sum(axis=(2, 4))
    assert nonzero.max() <= 1 and before.shape == after.shape


def test_unet_has_skips_and_more_parameters():
    plain = fcn((16, 16, 3), 3, upsampling="transposed", depth=2, filters=4)
    skipped = unet((16, 16, 3), 3, depth=2, filters=4)
    assert skipped.get_layer("dec1_skip").output.shape[-1] == 4 + 4
    assert skipped.count_params() > plain.count_params()
    assert build_segmenter("unet", (16, 16, 3), 3, depth=2, filters=4).count_params() == skipped.count_params()
    strided = fcn((16, 16, 3), 3, downsampling="strided", depth=2, filters=4)
    assert isinstance(strided.get_layer("enc1_down"), tf.keras.layers.Conv2D)


def test_bad_arguments():
    with pytest.raises(ShapeError, match="divisible by 2\\*\\*depth = 8"):
        fcn((20, 16, 3), 3, depth=3)
    with pytest.raises(ConfigError, match="downsampling 'pool'"):
        fcn((16, 16, 3), 3, upsampling="max_unpool", downsampling="strided")
    with pytest.raises(ConfigError, match="unknown upsampling"):
        fcn((16, 16, 3), 3, upsampling="cubic")
    with pytest.raises(ConfigError, match="num_classes"):
        unet((16, 16, 3), 1)


def test_efficientnet_encoder_unet_handles_output_stride_32():
    from cs231n_tf.models.efficientnet_lite import INPUT_STATS, REFERENCE_PARAMS
    from cs231n_tf.segmentation.models import encoder_unet

    model = encoder_unet((32, 32, 3), 3, filters=2)
    x = np.random.default_rng(0).uniform(size=(1, 32, 32, 3)).astype(np.float32)
    assert model(x).shape == (1, 32, 32, 3)
    normalized = model.get_layer("normalize")(x).numpy()
    np.testing.assert_allclose(normalized, (x - INPUT_STATS[0][0]) / INPUT_STATS[1][0], rtol=1e-5, atol=1e-6)
    taps = model.get_layer("encoder").outputs
    assert [t.shape[1] for t in taps] == [16, 8, 4, 2, 1]  # strides 2 ... 32
    assert model.get_layer("dec2_skip").output.shape[-1] == 2 * 2 + taps[0].shape[-1]  # dec3 width + tap
    # The encoder is the registry's builder without its 1280 -> 1000 classifier (reference: trainable count).
    trainable = sum(int(np.prod(w.shape)) for w in model.get_layer("encoder").trainable_weights)
    assert trainable == REFERENCE_PARAMS - (1280 * 1000 + 1000)
    with pytest.raises(ShapeError, match="output stride 32"):
        encoder_unet((48, 48, 3), 3)
    with pytest.raises(ConfigError, match="unknown upsampling 'max_unpool'"):
        encoder_unet((32, 32, 3), 3, upsampling="max_unpool")
