"""A tiny detection run shared by the task and CLI tests (one training instead of one per file)."""

import numpy as np
import pytest

from cs231n_tf.data.coco import DetectionSet
from cs231n_tf.detection import data as detdata
from cs231n_tf.detection.task import DetectionConfig, train

TINY = dict(image_size=32, fpn_filters=16, head_depth=1, batch_size=8, train_images=16, validation_images=4,
            test_images=8, log_every=10 ** 6, keep_checkpoints=1)


def tiny_config(**overrides):
    return DetectionConfig(**{**TINY, **overrides})


def with_empty_images(data, count=2, seed=0):
    """``data`` plus ``count`` images of plain noise with no objects."""
    rng = np.random.default_rng(seed)
    size = data.images[0].shape
    extra = [rng.integers(0, 255, size, dtype=np.uint8) for _ in range(count)]
    return DetectionSet(list(data.images) + extra, list(data.boxes) + [np.zeros((0, 4), np.float32)] * count,
                        list(data.classes) + [np.zeros(0, np.int32)] * count,
                        list(data.iscrowd) + [np.zeros(0, bool)] * count, None, data.class_names, data.category_ids,
                        np.arange(1, len(data) + count + 1), [""] * (len(data) + count), data.source)


@pytest.fixture(scope="session")
def tiny():
    """``tiny(**overrides)``: a :class:`DetectionConfig` small enough for tests."""
    return tiny_config


@pytest.fixture(scope="session")
def fixed_set():
    """A fixed tiny set (14 scenes + 2 empty images) that the shared run trains and is tested on."""
    return with_empty_images(detdata.shapes_detection(14, 32, seed=5))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, fixed_set):
    """``(run_dir, config, EngineResult)``: 60 steps on the fixed set (repeated 6 times per epoch)."""
    run = str(tmp_path_factory.mktemp("det") / "run")
    config = tiny_config(epochs=5, augment="none", lr=2e-3)
    repeated = detdata.subset(fixed_set, list(range(len(fixed_set))) * 6)
    empty = detdata.subset(fixed_set, [])
    return run, config, train(config, run, data=(repeated, empty, fixed_set), log=lambda _: None, progress=False)
