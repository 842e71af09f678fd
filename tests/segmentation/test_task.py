"""The segmentation task on the engine: it learns, its metrics agree with scikit-learn, resume is exact."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import confusion_matrix

from cs231n_tf.engine import Engine
from cs231n_tf.errors import ConfigError, DataError, RunDirError
from cs231n_tf.segmentation import task as segtask
from cs231n_tf.segmentation.task import SegmentationConfig, SegmentationTask
from cs231n_tf.tasks import get_task_class

TINY = dict(image_size=16, depth=1, filters=4, train_images=32, validation_images=8, test_images=16, batch_size=8,
            log_every=10 ** 6)


def quiet(_):
    pass


def tiny(**overrides):
    return SegmentationConfig(**{**TINY, **overrides})


def weights(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "_CHECKPOINTABLE" not in k and not k.startswith("save_counter")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = str(tmp_path_factory.mktemp("seg") / "run")
    config = tiny(depth=2, filters=8, train_images=48, epochs=3, lr=5e-3)
    return run, segtask.train(config, run, log=quiet, progress=False)


def test_learns_and_metrics_json_matches_scikit_learn(trained):
    run, result = trained
    m = json.load(open(os.path.join(run, "metrics.json")))
    assert get_task_class("segmentation") is SegmentationTask
    assert json.load(open(os.path.join(run, "config.json")))["task"] == "segmentation"
    for key in ("test_mean_iou", "test_per_class_iou", "test_pixel_accuracy", "val_mean_iou", "val_per_class_iou",
                "val_pixel_accuracy", "test_loss"):
        assert key in m, key
    assert set(m["test_per_class_iou"]) == {"background", "circle", "square", "triangle"}
    history = m["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"] and m["test_loss"] < np.log(4)
    # The streamed test metrics equal a confusion matrix of the model's own predictions.
    model, config, names = segtask.load_model(run)
    test = segtask.load_splits(config)[2]
    pred = segtask.predict_labels(model, test.images.astype(np.float32) / 255)
    cm = confusion_matrix(test.masks.ravel(), pred.ravel(), labels=range(4))
    tp = np.diag(cm)
    with np.errstate(invalid="ignore"):
        iou = tp / (cm.sum(0) + cm.sum(1) - tp)
    assert m["test_mean_iou"] == pytest.approx(np.nanmean(iou), abs=1e-6)
    assert m["test_pixel_accuracy"] == pytest.approx(tp.sum() / cm.sum(), abs=1e-6)
    for name, value in zip(names, iou):
        assert m["test_per_class_iou"][name] == pytest.approx(value, abs=1e-6)
    scored = segtask.evaluate_run(run)
    assert scored["mean_iou"] == pytest.approx(m["test_mean_iou"], abs=1e-6)
    assert scored["loss"] == pytest.approx(m["test_loss"], rel=1e-4)


@pytest.mark.slow
def test_resume_mid_epoch_with_augmentation_equals_uninterrupted(tmp_path):
    config = tiny(epochs=1, augment="flip,scale,crop", deterministic=True)
    segtask.train(config, str(tmp_path / "full"), log=quiet, progress=False)
    segtask.train(dataclasses.replace(config, max_steps=3), str(tmp_path / "part"), log=quiet, progress=False)
    segtask.train(config, str(tmp_path / "part"), resume=True, log=quiet, progress=False)
    full, part = weights(str(tmp_path / "full")), weights(str(tmp_path / "part"))
    assert len(full) > 10
    for name, value in full.items():
        np.testing.assert_array_equal(value, part[name], err_msg=name)
    a = json.load(open(tmp_path / "full" / "metrics.json"))
    b = json.load(open(tmp_path / "part" / "metrics.json"))
    assert a["test_mean_iou"] == b["test_mean_iou"] and a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]


def test_train_batches_depend_only_on_seed_and_epoch():
    task = SegmentationTask(tiny(augment="flip,scale"))
    task.prepare()
    whole = list(task.train_dataset(1).as_numpy_iterator())
    skipped = list(task.train_dataset(1, skip_batches=2).as_numpy_iterator())
    assert len(whole) == 4 and len(skipped) == 2
    for (x, y), (u, v) in zip(whole[2:], skipped):
        np.testing.assert_array_equal(x, u)
        np.testing.assert_array_equal(y, v)
    other = next(task.train_dataset(2).as_numpy_iterator())
    assert not np.array_equal(other[0], whole[0][0])


def test_bad_configs():
    with pytest.raises(ConfigError, match="divisible by 2\\*\\*depth"):
        tiny(image_size=18, depth=2).validate()
    with pytest.raises(ConfigError, match="max_unpool"):
        tiny(upsampling="max_unpool", downsampling="strided").validate()
    with pytest.raises(ConfigError, match="output stride 32"):
        tiny(encoder="efficientnet_lite0").validate()
    with pytest.raises(ConfigError, match="encoder_weights needs an encoder"):
        tiny(encoder_weights="imagenet").validate()
    with pytest.raises(ConfigError, match="dataset must be"):
        tiny(dataset="voc").validate()
    with pytest.raises(ConfigError, match="class_weights has 2 values"):
        SegmentationTask(tiny(class_weights=[1.0, 2.0])).prepare()
    with pytest.raises(RunDirError, match="does not exist"):
        segtask.load_run_config("/nonexistent/run")
    with pytest.raises(DataError, match="not the run's"):
        SegmentationTask(tiny(), class_names=("a", "b")).prepare()


@pytest.mark.slow
def test_export_saved_model_and_int8_tflite_verified_by_mean_iou(trained, tmp_path):
    from cs231n_tf.segmentation.export import export_segmentation

    run, result = trained
    m = json.load(open(os.path.join(run, "metrics.json")))
    saved = export_segmentation(run, "saved_model", out=str(tmp_path))
    assert saved["max_abs_diff"]["logits"] < 1e-5 and saved["max_abs_diff"]["labels"] == 0
    x = result.task.test.images[:4].astype(np.float32) / 255
    served = tf.saved_model.load(saved["path"]).signatures["serving_default"](images=tf.constant(x))
    assert served["logits"].shape == (4, 16, 16, 4) and served["labels"].dtype == tf.int32
    np.testing.assert_array_equal(served["labels"].numpy(), served["logits"].numpy().argmax(-1))
    assert saved["keras_mean_iou"] == pytest.approx(m["test_mean_iou"], abs=1e-6)
    assert saved["mean_iou"] == saved["keras_mean_iou"] and saved["label_agreement"] == 1.0
    int8 = export_segmentation(run, "tflite", "int8", out=str(tmp_path))
    assert int8["path"].endswith("model_int8.tflite") and int8["size_bytes"] < saved["size_bytes"]
    assert int8["label_agreement"] > 0.95 and abs(int8["mean_iou"] - int8["keras_mean_iou"]) < 0.05
    on_disk = json.load(open(int8["path"] + ".report.json"))
    assert on_disk["mean_iou"] == int8["mean_iou"] and on_disk["quantize"] == "int8"
    # The written file itself reproduces the reported labels' agreement.
    from cs231n_tf.export.exporter import TFLiteRunner

    got = TFLiteRunner(model_path=int8["path"])(x)
    assert got["logits"].shape == (4, 16, 16, 4)
    with pytest.raises(ConfigError, match="TFLite only"):
        export_segmentation(run, "saved_model", "int8", out=str(tmp_path))
