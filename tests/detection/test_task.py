"""The detection task on the engine: it learns, its COCO numbers are pycocotools' on its own predictions,
empty images train and count as false positives only, resume is exact, exports keep the AP."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.detection import coco_evaluate
from cs231n_tf.detection import data as detdata
from cs231n_tf.detection import task as dettask
from cs231n_tf.detection.task import DetectionTask
from cs231n_tf.errors import ConfigError, DataError, RunDirError
from cs231n_tf.tasks import get_task_class


def quiet(_):
    pass


def weights(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "_CHECKPOINTABLE" not in k and not k.startswith("save_counter")}


@pytest.mark.slow
def test_learns_and_metrics_json_equals_coco_evaluate_of_its_predictions(trained_run, fixed_set):
    run, config, result = trained_run
    fixed = fixed_set
    m = json.load(open(os.path.join(run, "metrics.json")))
    assert get_task_class("detection") is DetectionTask
    assert json.load(open(os.path.join(run, "config.json")))["task"] == "detection"
    for key in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "loss", "class_loss", "box_loss"):
        assert f"test_{key}" in m, key
    assert m["test_examples"] == 16
    # The COCO numbers in metrics.json are pycocotools' on the run's own predictions.
    model, _, names = dettask.load_model(run)
    module = dettask.DetectionServing(model, config, dettask.anchors_of(config))
    detections = dettask.predict_detections(module, fixed.images)
    recomputed = coco_evaluate(fixed.ground_truth(), detections, categories=range(3))
    for key, value in recomputed.items():
        assert m[f"test_{key}"] == pytest.approx(value, abs=1e-9), key
    # An untrained detector of the same architecture on the same images: far lower AP.
    untrained = dettask.DetectionServing(dettask.build_model(config, 3), config, dettask.anchors_of(config))
    baseline = coco_evaluate(fixed.ground_truth(), dettask.predict_detections(untrained, fixed.images),
                             categories=range(3))
    assert m["test_AP50"] > baseline["AP50"] + 0.05 and m["test_AP"] > 3 * baseline["AP"] + 0.01
    assert m["history"][-1]["train_loss"] < m["history"][0]["train_loss"]
    # The empty images count only through their detections, as false positives: without them AP can only rise.
    assert sum(len(d["scores"]) for d in detections[-2:]) > 0
    objects = list(range(14))
    reduced = coco_evaluate([fixed.ground_truth()[i] for i in objects], [detections[i] for i in objects],
                            categories=range(3))
    assert reduced["AP"] >= recomputed["AP"] and reduced["AR100"] == pytest.approx(recomputed["AR100"])


@pytest.mark.slow
def test_resume_mid_epoch_with_augmentation_equals_uninterrupted(tmp_path, fixed_set, tiny):
    # No evaluation splits: only the training path is compared.
    config = tiny(epochs=1, augment="flip,scale", deterministic=True, fpn_filters=8)
    empty = detdata.subset(fixed_set, [])
    data = (fixed_set, empty, empty)
    dettask.train(config, str(tmp_path / "full"), data=data, log=quiet, progress=False)
    dettask.train(dataclasses.replace(config, max_steps=1), str(tmp_path / "part"), data=data, log=quiet,
                  progress=False)
    dettask.train(config, str(tmp_path / "part"), resume=True, data=data, log=quiet, progress=False)
    full, part = weights(str(tmp_path / "full")), weights(str(tmp_path / "part"))
    assert len(full) > 10
    for name, value in full.items():
        np.testing.assert_array_equal(value, part[name], err_msg=name)
    m_full = json.load(open(tmp_path / "full" / "metrics.json"))
    m_part = json.load(open(tmp_path / "part" / "metrics.json"))
    assert m_full["final_train_loss"] == m_part["final_train_loss"] and m_full["steps"] == m_part["steps"] == 2


def test_train_batches_depend_only_on_seed_and_epoch(fixed_set, tiny):
    fixed = fixed_set
    empty = detdata.subset(fixed, [])
    task = DetectionTask(tiny(batch_size=4, augment="flip,scale"), data=(fixed, empty, fixed))
    task.prepare()
    whole = list(task.train_dataset(1).as_numpy_iterator())
    again = list(task.train_dataset(1).as_numpy_iterator())
    skipped = list(task.train_dataset(1, skip_batches=2).as_numpy_iterator())
    assert len(whole) == 4 and len(skipped) == 2
    for a, b in zip(whole, again):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    for a, b in zip(whole[2:], skipped):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    other = list(task.train_dataset(2).as_numpy_iterator())
    assert not np.array_equal(whole[0][0], other[0][0])
    images, classes, boxes = whole[0]
    assert images.shape == (4, 32, 32, 3) and classes.shape == (4, len(task.anchors))
    assert (classes >= 0).any() and (classes == -1).any()


def test_padded_ground_truth_keeps_empty_images_and_leaves_crowds_out(fixed_set):
    fixed = fixed_set
    images, boxes, classes, valid = detdata.padded(fixed)
    assert images.shape == (16, 32, 32, 3) and boxes.shape[:2] == valid.shape == classes.shape
    assert not valid[-2:].any() and valid.sum() == sum(len(b) for b in fixed.boxes)
    np.testing.assert_array_equal(boxes[0][valid[0]], fixed.boxes[0])
    crowd = dataclasses.replace(fixed, iscrowd=[np.ones(len(c), bool) for c in fixed.classes])
    assert not detdata.padded(crowd)[3].any()


def test_bad_configs_and_runs(tmp_path, tiny):
    with pytest.raises(ConfigError, match="multiple of 32"):
        tiny(image_size=48).validate()
    with pytest.raises(ConfigError, match="negative_iou"):
        tiny(negative_iou=0.6, positive_iou=0.5).validate()
    with pytest.raises(ConfigError, match="dataset must be"):
        tiny(dataset="voc").validate()
    with pytest.raises(ConfigError, match="augment"):
        tiny(augment="flip,rotate").validate()
    with pytest.raises(ConfigError, match="unknown model 'resnet9'"):
        tiny(backbone="resnet9").validate()
    with pytest.raises(ConfigError, match="has no pretrained weights"):
        tiny(backbone="resnet18", backbone_weights="imagenet").validate()
    with pytest.raises(ConfigError, match="no feature map at stride"):
        dettask.build_model(tiny(backbone="small_convnet"), 3)
    other = tmp_path / "seg"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "segmentation", "config": {}}))
    with pytest.raises(RunDirError, match="segmentation"):
        dettask.load_run_config(str(other))
    with pytest.raises(DataError, match="fewer than batch_size"):
        DetectionTask(tiny(train_images=4)).prepare()
