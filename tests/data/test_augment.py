"""Augmentations: each transform checked against its definition, seeded and resume-exact."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import data
from cs231n_tf.data import augment
from cs231n_tf.errors import ConfigError

SEED = tf.constant([3, 7], tf.int64)


def images(n=16, h=6, w=5, c=3, seed=0):
    # Distinct values everywhere, so a crop can be located uniquely in the padded image.
    return np.random.default_rng(seed).permutation(n * h * w * c).reshape(n, h, w, c).astype(np.float32) / (n * h * w * c)


def test_flip_is_exact_reversal_per_image_and_seeded():
    x = images(32)
    out = augment.horizontal_flip(x, SEED).numpy()
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    kept = [np.array_equal(o, i) for o, i in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept))  # each image exactly one of the two
    assert 4 < sum(flipped) < 28  # per image, not one coin for the batch
    np.testing.assert_array_equal(out, augment.horizontal_flip(x, SEED).numpy())
    assert not np.array_equal(out, augment.horizontal_flip(x, SEED + 1).numpy())


def test_pad_and_crop_keeps_shape_and_takes_a_window_of_the_padded_image():
    x, p = images(24), 2
    out = augment.pad_and_crop(x, SEED, padding=p).numpy()
    assert out.shape == x.shape
    padded = np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)])
    offsets = set()
    for o, pad in zip(out, padded):
        hits = [(oy, ox) for oy in range(2 * p + 1) for ox in range(2 * p + 1)
                if np.array_equal(o, pad[oy:oy + x.shape[1], ox:ox + x.shape[2]])]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 5  # offsets drawn per image
    np.testing.assert_array_equal(augment.pad_and_crop(x, SEED, padding=0).numpy(), x)


def test_random_resized_crop_shape_range_and_identity_box():
    x = images(8, 10, 10)
    out = augment.random_resized_crop(x, SEED, min_area=0.3).numpy()
    assert out.shape == x.shape
    # Bilinear resampling of a sub-box: every output pixel is a convex combination of input pixels.
    assert (out.min(axis=(1, 2, 3)) >= x.min(axis=(1, 2, 3)) - 1e-6).all()
    assert (out.max(axis=(1, 2, 3)) <= x.max(axis=(1, 2, 3)) + 1e-6).all()
    assert not np.allclose(out, x)
    # Full area with aspect ratio 1 is the box [0, 0, 1, 1]: the image itself.
    same = augment.random_resized_crop(x, SEED, min_area=1.0, ratio=(1.0, 1.0)).numpy()
    np.testing.assert_allclose(same, x, atol=1e-6)


def test_color_jitter_brightness_contrast_saturation():
    x = 0.4 + 0.2 * images(8)  # stays inside [0, 1] after mild jitter: no clipping in play
    only_b = augment.color_jitter(x, SEED, brightness=0.1, contrast=0.0, saturation=0.0).numpy()
    shift = only_b - x
    np.testing.assert_allclose(shift, shift[:, :1, :1, :1] * np.ones_like(shift), atol=1e-6)  # one offset per image
    assert np.abs(shift[:, 0, 0, 0]).max() <= 0.1 and np.ptp(shift[:, 0, 0, 0]) > 0
    only_c = augment.color_jitter(x, SEED, brightness=0.0, contrast=0.3, saturation=0.0).numpy()
    np.testing.assert_allclose(only_c.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=1e-6)  # channel means kept
    ratio = (only_c - x.mean(axis=(1, 2), keepdims=True)) / (x - x.mean(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(ratio, np.median(ratio, axis=(1, 2, 3), keepdims=True) * np.ones_like(ratio), rtol=1e-3)
    only_s = augment.color_jitter(x, SEED, brightness=0.0, contrast=0.0, saturation=0.5).numpy()
    grey = tf.image.rgb_to_grayscale
    # Blending with the grey image keeps the grey image (to 1e-4: tf's luma weights sum to 0.9999).
    np.testing.assert_allclose(grey(only_s).numpy(), grey(x).numpy(), atol=1e-4)
    assert not np.allclose(only_s, x)
    full = augment.color_jitter(images(8), SEED).numpy()
    assert full.min() >= 0.0 and full.max() <= 1.0


def test_pca_lighting_uses_the_covariance_eigenvectors():
    rng = np.random.default_rng(1)
    mix = np.array([[1.0, 0.8, 0.3], [0.0, 0.5, 0.2], [0.0, 0.0, 0.1]])
    x = np.clip(0.5 + 0.15 * rng.standard_normal((400, 4, 4, 3)) @ mix, 0, 1).astype(np.float32)
    values, vectors = augment.pca_basis((x * 255).astype(np.float64), pixel_max=255.0, chunk=37)
    px = x.reshape(-1, 3).astype(np.float64)
    ref_values, ref_vectors = np.linalg.eigh(np.cov(px.T, bias=True))
    np.testing.assert_allclose(values, ref_values, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(np.abs(vectors.T @ ref_vectors), np.eye(3), atol=1e-6)  # same up to sign
    std = 0.1
    out = augment.pca_lighting(x, SEED, values, vectors, std=std).numpy()
    shift = (out - x)[:, 0, 0, :]
    np.testing.assert_allclose(out - x, np.broadcast_to(shift[:, None, None, :], x.shape), atol=1e-6)
    # Each shift is V @ (alpha * lambda): its coordinates in the eigenbasis, over lambda, are alpha ~ N(0, std).
    alpha = (shift @ vectors) / values
    assert alpha.std(axis=0) == pytest.approx([std] * 3, rel=0.2)
    assert np.abs(alpha.mean(axis=0)).max() < 3 * std / np.sqrt(len(x))


def test_tta_equals_the_manual_average_of_ten_views():
    x = images(6, 8, 8, 3)
    model = tf.keras.Sequential([tf.keras.layers.Flatten(input_shape=(8, 8, 3)), tf.keras.layers.Dense(4)])
    p = 2
    padded = np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)])
    views = [padded[:, oy:oy + 8, ox:ox + 8] for oy, ox in ((p, p), (0, 0), (0, 2 * p), (2 * p, 0), (2 * p, 2 * p))]
    views += [v[:, :, ::-1] for v in views]
    np.testing.assert_array_equal(views[0], x)
    logits = [model(v).numpy() for v in views]
    probs = np.mean([tf.nn.softmax(l).numpy() for l in logits], axis=0)
    np.testing.assert_allclose(augment.tta_predict(model, x, padding=p, batch_size=4), probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(augment.tta_predict(model, x, padding=p, average="logits"), np.mean(logits, axis=0),
                               rtol=1e-5, atol=1e-6)
    five = augment.tta_predict(model, x, padding=p, flips=False, preprocess=lambda v: v * 2.0, average="logits")
    np.testing.assert_allclose(five, np.mean([model(2.0 * v).numpy() for v in views[:5]], axis=0), rtol=1e-5, atol=1e-6)


def test_parse_augment_and_errors():
    assert augment.parse_augment("flip,crop:2") == [("flip", None), ("crop", 2)]
    assert augment.parse_augment(["resized_crop", "color:0.2", "pca_lighting"]) == [
        ("resized_crop", 0.08), ("color", 0.2), ("pca_lighting", 0.1)]
    for bad, message in (("flop", "unknown augmentation 'flop'"), ("crop:x", "int >= 0"), ("flip:1", "takes no value"),
                         ("flip,flip", "listed twice"), ("resized_crop:0", "(0, 1]"), ("color:2", "[0, 1]")):
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
            augment.parse_augment(bad)
    with pytest.raises(Exception, match="needs train_images"):
        augment.Augmenter(["pca_lighting"])


def test_train_pipeline_augments_train_batches_deterministically_and_resumes_exactly():
    splits = data.load("digits", batch_size=32)
    aug = augment.Augmenter(["flip", "crop:1", "pca_lighting"], train_images=splits.arrays["x_train"],
                            pixel_max=splits.info.pixel_max)
    full = [x.numpy() for x, _ in splits.train_epoch(2, seed=5, augment=aug)]
    plain = [x.numpy() for x, _ in splits.train_epoch(2, seed=5)]
    assert len(full) == len(plain) == splits.steps_per_epoch(32)
    assert all(a.shape == b.shape and not np.allclose(a, b) for a, b in zip(full, plain))
    again = [x.numpy() for x, _ in splits.train_epoch(2, seed=5, augment=aug)]
    resumed = [x.numpy() for x, _ in splits.train_epoch(2, seed=5, skip_batches=7, augment=aug)]
    for a, b in zip(full, again):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(full[7:], resumed):
        np.testing.assert_array_equal(a, b)  # batch seeds count from the epoch start
    other_epoch = next(iter(splits.train_epoch(3, seed=5, augment=aug)))[0].numpy()
    assert not np.allclose(other_epoch, full[0])


def test_mean_image_preprocessing():
    splits = data.load("digits", batch_size=64, preprocessing="mean_image")
    unit = splits.arrays["x_train"].astype(np.float64) / splits.info.pixel_max
    mean_image = np.asarray(splits.info.mean)
    assert mean_image.shape == splits.info.image_shape
    np.testing.assert_allclose(mean_image, unit.mean(axis=0), atol=1e-12)
    assert splits.info.std == (1.0,) and splits.info.preprocessing == "mean_image"
    xb = np.concatenate([x.numpy() for x, _ in splits.split("train")])
    np.testing.assert_allclose(xb, unit - mean_image, atol=1e-6)
    np.testing.assert_allclose(xb.mean(axis=0), 0.0, atol=1e-6)  # every pixel centred, not just channels
    with pytest.raises(ConfigError, match="preprocessing must be one of channel, mean_image"):
        data.load("digits", preprocessing="zca")


def test_gaussian_noise_statistics_and_clipping():
    x = np.full((64, 8, 8, 1), 0.5, np.float32)
    out = augment.gaussian_noise(x, SEED, std=0.05).numpy()
    noise = out - x
    assert abs(noise.mean()) < 0.005 and abs(noise.std() - 0.05) < 0.005
    np.testing.assert_array_equal(augment.gaussian_noise(x, SEED, std=0.05).numpy(), out)  # stateless
    clipped = augment.gaussian_noise(np.ones((4, 8, 8, 1), np.float32), SEED, std=1.0).numpy()
    assert clipped.max() == 1.0 and clipped.min() >= 0.0
    assert augment.parse_augment("noise:0.2") == [("noise", 0.2)]
    np.testing.assert_array_equal(augment.Augmenter("noise:0.05")(x, SEED).numpy().shape, x.shape)
