import os
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from cs231n_tf import data
from cs231n_tf.errors import ConfigError, DataError


def test_digits_splits_are_deterministic_stratified_and_disjoint():
    a = data.load("digits", split_seed=3)
    b = data.load("digits", split_seed=3)
    c = data.load("digits", split_seed=4)
    for key in a.arrays:
        np.testing.assert_array_equal(a.arrays[key], b.arrays[key])
    assert not np.array_equal(a.arrays["y_test"], c.arrays["y_test"])
    info = a.info
    assert info.image_shape == (8, 8, 1) and info.num_classes == 10
    assert info.num_train + info.num_validation + info.num_test == 1797
    assert info.num_test == pytest.approx(0.2 * 1797, abs=10)
    # Every class appears in every split in about the same share (stratified).
    for split in ("train", "validation", "test"):
        counts = np.bincount(a.arrays[f"y_{split}"], minlength=10)
        assert counts.min() > 0 and counts.max() / counts.min() < 1.5
    # No image is in two splits.
    rows = {s: {x.tobytes() for x in a.arrays[f"x_{s}"]} for s in ("train", "test")}
    assert len(rows["train"] & rows["test"]) < 5  # digits has a handful of exact duplicates


def test_normalisation_uses_training_split_only():
    splits = data.load("digits")
    x_train = splits.arrays["x_train"] / 16.0
    assert splits.info.mean[0] == pytest.approx(x_train.mean(), rel=1e-6)
    assert splits.info.std[0] == pytest.approx(x_train.std(), rel=1e-6)
    xb = np.concatenate([x.numpy() for x, _ in splits.split("train", batch_size=500)])
    assert xb.mean() == pytest.approx(0.0, abs=1e-5)
    assert xb.std() == pytest.approx(1.0, abs=1e-4)


def test_unpacks_as_train_validation_test_info():
    train, validation, test, info = data.load("digits", batch_size=32)
    x, y = next(iter(train))
    assert x.shape == (32, 8, 8, 1) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert sum(int(tf.shape(y)[0]) for _, y in test) == info.num_test


def test_train_epoch_order_depends_only_on_seed_and_epoch_and_skip_resumes_exactly():
    splits = data.load("digits", batch_size=50)
    full = [y.numpy() for _, y in splits.train_epoch(epoch=2, seed=7)]
    again = [y.numpy() for _, y in splits.train_epoch(epoch=2, seed=7)]
    other = [y.numpy() for _, y in splits.train_epoch(epoch=3, seed=7)]
    resumed = [y.numpy() for _, y in splits.train_epoch(epoch=2, seed=7, skip_batches=5)]
    assert len(full) == splits.info.num_train // 50
    np.testing.assert_array_equal(np.concatenate(full), np.concatenate(again))
    assert not np.array_equal(np.concatenate(full), np.concatenate(other))
    np.testing.assert_array_equal(np.concatenate(full[5:]), np.concatenate(resumed))


def _write_npz(path, x_train, y_train, x_test, y_test):
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return str(path)


def test_npz_uint8_and_float(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 6, 5, 3), dtype=np.uint8)
    y = np.arange(60) % 3
    path = _write_npz(tmp_path / "u8.npz", x[:40], y[:40], x[40:], y[40:])
    splits = data.load("npz:" + path, validation_fraction=0.25)
    assert splits.info.image_shape == (6, 5, 3) and splits.info.num_classes == 3
    assert splits.info.pixel_max == 255.0 and splits.info.num_test == 20 and splits.info.num_validation == 10
    xf = (x[..., 0] / 255.0).astype(np.float32)  # (N, H, W) float in [0, 1]
    path = _write_npz(tmp_path / "f.npz", xf[:40], y[:40], xf[40:], y[40:])
    splits = data.load("npz:" + path)
    assert splits.info.image_shape == (6, 5, 1) and splits.info.pixel_max == 1.0


def test_npz_errors(tmp_path):
    x = np.zeros((4, 3, 3), np.uint8)
    y = np.zeros(4, np.int64)
    np.savez(tmp_path / "missing.npz", x_train=x, y_train=y)
    with pytest.raises(DataError, match="lacks array.*x_test"):
        data.load(f"npz:{tmp_path / 'missing.npz'}")
    np.savez(tmp_path / "labels.npz", x_train=x, y_train=y.astype(np.float32), x_test=x, y_test=y)
    with pytest.raises(DataError, match="labels must be integers"):
        data.load(f"npz:{tmp_path / 'labels.npz'}")
    np.savez(tmp_path / "objects.npz", x_train=np.array([object()] * 4), y_train=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match="cannot read"):
        data.load(f"npz:{tmp_path / 'objects.npz'}")  # never unpickled
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="cannot read"):
        data.load(f"npz:{tmp_path / 'junk.npz'}")
    with pytest.raises(DataError, match="does not exist"):
        data.load(f"npz:{tmp_path / 'nope.npz'}")


def test_folder_of_class_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        os.makedirs(tmp_path / cls)
        for i in range(10):
            img = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
            tf.io.write_file(str(tmp_path / cls / f"{i}.png"), tf.io.encode_png(img))
    splits = data.load(f"folder:{tmp_path}", validation_fraction=0.1, test_fraction=0.2)
    assert splits.info.class_names == ("cat", "dog")
    assert splits.info.image_shape == (7, 9, 3)
    assert splits.info.num_test == 4
    (tmp_path / "dog" / "broken.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot decode image .*broken.png"):
        data.load(f"folder:{tmp_path}")


def test_folder_size_mismatch_needs_image_size(tmp_path):
    for cls, size in (("a", 5), ("b", 6)):
        os.makedirs(tmp_path / cls)
        for i in range(3):
            tf.io.write_file(str(tmp_path / cls / f"{i}.png"), tf.io.encode_png(np.zeros((size, size, 1), np.uint8)))
    with pytest.raises(DataError, match="image_size"):
        data.load(f"folder:{tmp_path}")
    splits = data.load(f"folder:{tmp_path}", image_size=(4, 4), validation_fraction=0.0, test_fraction=0.34)
    assert splits.info.image_shape == (4, 4, 1)


@pytest.mark.parametrize("name,shape,classes", [("mnist", (28, 28, 1), 10), ("cifar10", (32, 32, 3), 10)])
def test_tfds_sets_through_mock_data(tmp_path, name, shape, classes):
    with tfds.testing.mock_data(num_examples=30):
        splits = data.load(name, data_dir=str(tmp_path), batch_size=8)
    assert splits.info.image_shape == shape and splits.info.num_classes == classes
    assert splits.info.num_test == 30 and splits.info.num_train + splits.info.num_validation == 30
    x, y = next(iter(splits.test))
    assert x.shape == (8,) + shape


def test_missing_tfds_set_fails_fast_naming_set_dir_and_remedy(tmp_path):
    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        data.load("cifar100", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "cifar100" in message and str(tmp_path) in message and "--download" in message


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown data set 'imagenet'"):
        data.load("imagenet")
    with pytest.raises(ConfigError, match="batch_size"):
        data.load("digits", batch_size=0)
    with pytest.raises(ConfigError, match="validation_fraction"):
        data.load("digits", validation_fraction=1.5)


def test_list_datasets_reports_offline_status(tmp_path):
    rows = {name: status for name, _, status in data.list_datasets(str(tmp_path))}
    assert rows["digits"] == "available"
    assert rows["mnist"].startswith("absent")
