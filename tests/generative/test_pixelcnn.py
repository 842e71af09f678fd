"""PixelCNN: exact masks, causality by gradients, an exactly normalised likelihood, sampling, the engine task."""

import dataclasses
import itertools
import json
import math
import os

import numpy as np
import pytest

import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from cs231n_tf.errors import ConfigError, RunDirError
from cs231n_tf.export import export_module
from cs231n_tf.generative.data import GANImages, load_images, quantize
from cs231n_tf.generative.pixelcnn import (
    PixelCNNConfig, bits_per_dim_per_image, causal_mask, independent_pixel_bits_per_dim, load_model, pixelcnn, sample,
    sampler, train,
)


def quiet(_):
    pass


def test_masks_exactly():
    a = causal_mask(3, 1, 1, "A")[..., 0, 0]
    b = causal_mask(3, 1, 1, "B")[..., 0, 0]
    np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    five = causal_mask(5, 2, 4, "A")
    assert five[:2].all() and five[2, :2].all() and not five[2, 2:].any() and not five[3:].any()
    # Three colours (R, G, B): at the centre, A lets colour c see colours < c, B colours <= c.
    centre_a = causal_mask(3, 3, 6, "A", colors=3)[1, 1]
    centre_b = causal_mask(3, 6, 6, "B", colors=3)[1, 1]
    np.testing.assert_array_equal(centre_a, [[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(centre_b, np.repeat(np.repeat(np.triu(np.ones((3, 3))), 2, 0), 2, 1))
    with pytest.raises(ConfigError):
        causal_mask(4, 1, 1, "A")


@pytest.mark.parametrize("colors", [1, 3])
def test_output_never_depends_on_its_own_or_later_inputs(colors):
    tf.keras.utils.set_random_seed(0)
    h = w = 5
    model = pixelcnn((h, w, colors), levels=4, filters=6, layers=2, first_kernel=3)
    x = tf.Variable(tf.random.uniform([1, h, w, colors], 0, 3))
    with tf.GradientTape() as tape:
        logits = model(x)
    jac = tape.jacobian(logits, x).numpy()[0].sum(axis=3)[..., 0, :, :, :]  # [h, w, C_out, h, w, C_in]
    order = np.arange(h * w * colors).reshape(h, w, colors)  # raster, then channel
    seen_past = 0
    for r, c, k in itertools.product(range(h), range(w), range(colors)):
        grad = jac[r, c, k]
        future = order >= order[r, c, k]
        assert np.all(grad[future] == 0.0), (r, c, k)
        seen_past += np.count_nonzero(grad[~future])
    assert seen_past > 0
    if colors == 3:  # blue sees red and green of its own pixel (somewhere: ReLUs may be off at one pixel)
        same_pixel = np.array([jac[r, c, 2][r, c, :2] for r in range(h) for c in range(w)])
        assert np.all(np.any(same_pixel != 0.0, axis=0))


def test_bits_per_dim_is_the_exact_normalised_likelihood():
    tf.keras.utils.set_random_seed(1)
    model = pixelcnn((2, 2, 1), levels=3, filters=4, layers=1, first_kernel=3)
    images = np.array(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2, 1)  # all 81 images
    bpd = bits_per_dim_per_image(model, images, batch_size=10)  # 9 batches
    # By hand: each pixel's softmax probability of its value, -log2, averaged over the 4 dimensions.
    logits = model(images.astype(np.float32)).numpy().astype(np.float64)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    picked = np.take_along_axis(p, images[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(bpd, -np.log2(picked).reshape(81, -1).sum(1) / 4, rtol=1e-5)
    # A causal product of conditionals is a distribution: the 81 probabilities sum to one.
    assert np.sum(2.0 ** (-4 * bpd)) == pytest.approx(1.0, abs=1e-5)


def test_compiled_sampler_draws_from_the_model():
    tf.keras.utils.set_random_seed(2)
    model = pixelcnn((2, 2, 1), levels=2, filters=4, layers=1, first_kernel=3)
    images = np.array(list(itertools.product(range(2), repeat=4))).reshape(-1, 2, 2, 1)
    exact = 2.0 ** (-4 * bits_per_dim_per_image(model, images))
    draw = sampler(model)
    drawn = draw(6000, tf.constant([3, 0], tf.int64)).numpy()
    codes = (drawn.reshape(-1, 4) * np.array([8, 4, 2, 1])).sum(1)
    freq = np.bincount(codes, minlength=16) / len(codes)
    stderr = np.sqrt(exact * (1 - exact) / len(codes))
    assert np.all(np.abs(freq - exact) < 5 * stderr + 1e-3), (freq, exact)
    again = draw(6000, tf.constant([3, 0], tf.int64)).numpy()
    np.testing.assert_array_equal(drawn, again)


def test_independent_pixel_baseline_by_hand():
    train_levels = np.array([[[0, 1]], [[0, 1]], [[1, 1]]])  # 3 images of 1x2
    test_levels = np.array([[[0, 0]]])
    # Pixel 0: counts (2, 1) + 1 -> p(0) = 3/5; pixel 1: counts (0, 3) + 1 -> p(0) = 1/5.
    expected = -(math.log2(3 / 5) + math.log2(1 / 5)) / 2
    assert independent_pixel_bits_per_dim(train_levels, test_levels, 2) == pytest.approx(expected)


@pytest.fixture(scope="module")
def small():
    data = load_images("digits")
    return GANImages(data.x_train[:192], data.y_train[:192], data.x_test[:48], data.y_test[:48], data.source)


def tiny(**overrides):
    return PixelCNNConfig(**{**dict(batch_size=32, epochs=1, log_every=10 ** 6, levels=4, filters=8, layers=1,
                                    first_kernel=3), **overrides})


def weights(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "_CHECKPOINTABLE" not in k and not k.startswith("save_counter")}


def test_task_resume_metrics_samples_and_export(tmp_path, small):
    config = tiny(epochs=2, checkpoint_every=2, sample_every=4, sample_count=4)
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    result = train(dataclasses.replace(config, max_steps=4), full, images=small, log=quiet, progress=False)
    train(dataclasses.replace(config, max_steps=2), part, images=small, log=quiet, progress=False)
    train(dataclasses.replace(config, max_steps=4), part, resume=True, images=small, log=quiet, progress=False)
    a, b = weights(full), weights(part)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    m = json.load(open(os.path.join(full, "metrics.json")))
    _, model = load_model(full)
    expected = bits_per_dim_per_image(model, quantize(small.x_test, 4)).mean()
    assert m["test_bits_per_dim"] == pytest.approx(expected, rel=1e-5)
    assert m["test_nll_nats"] == pytest.approx(expected * 64 * math.log(2), rel=1e-5)
    assert os.listdir(os.path.join(full, "samples")) == ["step-0000004.png"]
    png = tf.io.decode_png(tf.io.read_file(sample(full, 3, str(tmp_path / "s"), seed=5))).numpy()
    assert png.shape == (16, 16, 1) and set(np.unique(png)) <= {0, 85, 170, 255}
    module = result.task.serving_module()
    levels = quantize(small.x_test[:3], 4).astype(np.float32)
    report = export_module(module, str(tmp_path / "saved_model"), {"levels": levels})
    assert report["max_abs_diff"]["log_probs"] < 1e-5
    with pytest.raises(ConfigError, match="first_kernel"):
        tiny(first_kernel=4).validate()
    with pytest.raises(RunDirError, match="'pixelcnn' run"):
        from cs231n_tf.generative.autoencoder import load_models

        load_models(full)


def test_mixed_precision_and_strategies_come_from_the_engine(small):
    from cs231n_tf.generative import autoencoder

    result = train(tiny(max_steps=2, mixed_precision="mixed_float16"), images=small, log=quiet, progress=False)
    assert isinstance(result.task.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    assert result.task.model.get_layer("masked_a").compute_dtype == "float16"
    assert np.isfinite(result.metrics["test_bits_per_dim"])
    vae_config = autoencoder.AutoencoderConfig(max_steps=2, batch_size=32, filters=4, hidden=8, latent_dim=2,
                                               strategy="mirrored", log_every=10 ** 6)
    result = autoencoder.train(vae_config, images=small, log=quiet, progress=False)
    assert result.metrics["replicas"] == 2 and np.isfinite(result.metrics["test_bits_per_dim"])
