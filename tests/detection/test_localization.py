"""Classification + localization: losses against closed forms, the IoU metric against detection.boxes,
the one-shape data, the COCO reduction, a tiny run that learns, exact resume."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.data.shapes import KEYPOINTS, SHAPES, shape_keypoints, shape_mask, single_shapes
from cs231n_tf.detection import localization as loc
from cs231n_tf.detection.boxes import iou
from cs231n_tf.errors import ConfigError, DataError, RunDirError
from cs231n_tf.tasks import get_task_class

TINY = dict(image_size=24, train_images=384, validation_images=32, test_images=128, batch_size=32, hidden=64,
            head_channels=16, lr=2e-3, log_every=10 ** 6)


def quiet(_):
    pass


def tiny(**overrides):
    return loc.LocalizationConfig(**{**TINY, **overrides})


def weights(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "_CHECKPOINTABLE" not in k and not k.startswith("save_counter")}


# ---- losses and metrics --------------------------------------------------------------------------


def test_regression_losses_equal_their_closed_forms():
    rng = np.random.default_rng(0)
    t, p = rng.normal(0, 2, (6, 4)), rng.normal(0, 2, (6, 4))
    d = p - t
    np.testing.assert_allclose(loc.regression_loss(t, p, "l2").numpy(), 0.5 * (d ** 2).sum(-1), rtol=1e-5)
    smooth = np.where(np.abs(d) < 1, 0.5 * d ** 2, np.abs(d) - 0.5).sum(-1)
    np.testing.assert_allclose(loc.regression_loss(t, p, "smooth_l1").numpy(), smooth, rtol=1e-5)
    small = d * 0.1  # inside |d| < 1 the two agree, so box_weight means the same for both
    np.testing.assert_allclose(loc.regression_loss(t, t + small, "smooth_l1").numpy(),
                               loc.regression_loss(t, t + small, "l2").numpy(), rtol=1e-4)
    with pytest.raises(ConfigError, match="box_loss"):
        loc.regression_loss(t, p, "l1")


def test_multitask_loss_is_class_plus_weighted_box_and_keypoints():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 3)).astype(np.float32)
    classes = np.array([0, 2, 1, 1, 0])
    boxes = np.array([[0.1, 0.2, 0.5, 0.9], [0.0, 0.0, 1.0, 1.0], [0.3, 0.3, 0.4, 0.35], [0.5, 0.1, 0.9, 0.2],
                      [0.2, 0.6, 0.8, 0.7]], np.float32)
    points = rng.uniform(0, 1, (5, 2, 2)).astype(np.float32)
    codes = rng.normal(size=(5, 4)).astype(np.float32)
    point_codes = rng.normal(size=(5, 2, 2)).astype(np.float32)
    outputs = {"class_logits": logits, "box": codes, "keypoints": point_codes}
    batch = {"classes": classes, "boxes": boxes, "keypoints": points}
    got = loc.multitask_losses(outputs, batch, "l2", box_weight=10.0, keypoint_weight=0.5)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    cross_entropy = -log_softmax[np.arange(5), classes]
    # Box targets: Fast R-CNN offsets against the whole image with SSD's variances (0.1, 0.1, 0.2, 0.2).
    cy, cx = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    targets = np.stack([(cy - 0.5) / 0.1, (cx - 0.5) / 0.1, np.log(h) / 0.2, np.log(w) / 0.2], -1)
    box = 0.5 * ((codes - targets) ** 2).sum(-1)
    keypoints = (0.5 * ((point_codes - (points - 0.5) / 0.1) ** 2).sum(-1)).mean(-1)
    np.testing.assert_allclose(got["class"].numpy(), cross_entropy, rtol=1e-5)
    np.testing.assert_allclose(got["box"].numpy(), box, rtol=1e-4)
    np.testing.assert_allclose(got["keypoints"].numpy(), keypoints, rtol=1e-4)
    np.testing.assert_allclose(got["total"].numpy(), cross_entropy + 10 * box + 0.5 * keypoints, rtol=1e-4)
    np.testing.assert_allclose(loc.decode_boxes(targets).numpy(), boxes, atol=1e-6)


def test_scores_use_detection_iou_and_need_the_right_class_for_correct():
    true = np.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.6, 0.6], [0.0, 0.0, 0.4, 0.4], [0.3, 0.3, 0.9, 0.9]],
                    np.float32)
    predicted = np.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.6, 0.3], [0.05, 0.0, 0.4, 0.45], [0.1, 0.1, 0.2, 0.2]],
                         np.float32)
    logits = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]] * 5
    outputs = {"class_logits": logits, "box": loc.encode_boxes(predicted)}
    scores = loc.localization_scores(outputs, {"classes": np.array([0, 1, 1, 0]), "boxes": true})
    expected_iou = iou(predicted, true, pairwise=False).numpy()
    np.testing.assert_allclose(scores["iou"].numpy(), expected_iou, atol=1e-5)
    np.testing.assert_allclose(expected_iou, [1.0, 0.25, 0.14 / 0.1775, 0.0], atol=1e-5)  # by hand
    assert scores["accuracy"].numpy().tolist() == [1, 1, 0, 1]
    # correct = class right and IoU >= 0.5: the second box overlaps too little, the third has the wrong class
    assert scores["localized"].numpy().tolist() == [1, 0, 0, 0]


# ---- data --------------------------------------------------------------------------------------


def test_single_shapes_boxes_are_tight_and_keypoints_lie_on_the_outline():
    data = single_shapes(12, image_size=40, seed=3, noise=0.0)
    assert data.images.shape == (12, 40, 40, 3) and data.class_names == SHAPES and data.keypoint_names == KEYPOINTS
    assert set(data.classes.tolist()) == {0, 1, 2}
    for shape, size in (("circle", 7.0), ("square", 9.0), ("triangle", 8.0)):
        centre = (20.3, 19.6)
        mask = shape_mask(shape, centre, size, 40)
        points = shape_keypoints(shape, centre, size)
        np.testing.assert_allclose(points[0], centre)
        for (y, x), (dy, dx) in zip(points[1:], ((-1, 0), (0, 1), (1, 0), (0, -1))):
            # the outline: a pixel centred just inside is in the mask, one just outside is not
            for step, expected in ((-0.6, True), (0.6, False)):
                py, px = y + step * dy, x + step * dx
                i, j = int(np.floor(py)), int(np.floor(px))
                if abs(i + 0.5 - py) < 0.45 and abs(j + 0.5 - px) < 0.45:
                    assert mask[i, j] == expected, (shape, (py, px))
    # Each image's shape, re-drawn from its keypoints (centre, and the top's distance gives the size),
    # has the stored box as its tight box, and its pixels carry one colour.
    for i in range(12):
        shape = SHAPES[data.classes[i]]
        kp = data.keypoints[i].astype(np.float64)
        size = (kp[0, 0] - kp[1, 0]) / (0.85 if shape == "square" else 1.0)
        mask = shape_mask(shape, tuple(kp[0]), size, 40)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        np.testing.assert_allclose(data.boxes[i], [rows[0], cols[0], rows[-1] + 1, cols[-1] + 1], atol=1)
        assert 0 <= data.boxes[i].min() and data.boxes[i].max() <= 40
        assert len(np.unique(data.images[i][mask], axis=0)) == 1
    again = single_shapes(12, image_size=40, seed=3, noise=0.0)
    np.testing.assert_array_equal(again.images, data.images)


def _coco(root):
    os.makedirs(root / "images", exist_ok=True)
    for image_id in (1, 2, 3):
        tf.io.write_file(str(root / "images" / f"{image_id}.png"), tf.io.encode_png(np.zeros((20, 40, 3), np.uint8)))
    obj = {"images": [{"id": i, "file_name": f"{i}.png"} for i in (1, 2, 3)],
           "categories": [{"id": 5, "name": "dog"}, {"id": 2, "name": "cat"}],
           "annotations": [
               {"id": 1, "image_id": 1, "category_id": 5, "bbox": [0, 0, 10, 10]},           # area 100
               {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 2, 20, 8]},           # area 160: largest
               {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0, 0, 40, 20], "iscrowd": 1},  # crowd: never
               {"id": 4, "image_id": 2, "category_id": 5, "bbox": [4, 4, 4, 4]},
               {"id": 5, "image_id": 3, "category_id": 5, "bbox": [0, 0, 40, 20], "iscrowd": 1}]}  # only crowd
    (root / "ann.json").write_text(json.dumps(obj))
    return f"coco:{root / 'ann.json'}:{root / 'images'}"


def test_coco_reduction_keeps_the_largest_non_crowd_object(tmp_path):
    spec = _coco(tmp_path)
    data = loc.load_dataset(spec, image_size=32)
    assert len(data) == 2 and data.class_names == ("cat", "dog") and data.keypoints is None
    assert data.images.shape == (2, 32, 32, 3)
    assert data.classes.tolist() == [0, 1]  # image 1: the cat (160 px), image 2: the dog (the crowd is skipped)
    np.testing.assert_allclose(data.boxes, [[2 / 20, 20 / 40, 10 / 20, 40 / 40], [4 / 20, 4 / 40, 8 / 20, 8 / 40]],
                               atol=1e-6)
    with pytest.raises(ConfigError, match="keypoints need the shapes"):
        tiny(dataset=spec, keypoints=True).validate()
    with pytest.raises(ConfigError, match="dataset must be"):
        tiny(dataset="voc").validate()


# ---- builders and the task -----------------------------------------------------------------------


def test_builders_on_registry_backbones():
    net = loc.localization_net((32, 32, 3), 5, backbone="resnet20", num_keypoints=3)
    out = net(np.zeros((2, 32, 32, 3), np.float32))
    assert out["class_logits"].shape == (2, 5) and out["box"].shape == (2, 4) and out["keypoints"].shape == (2, 3, 2)
    assert net.get_layer("encoder_resnet20") is not None
    pose = loc.keypoint_net((32, 32, 3), 14, backbone="three_layer_convnet")
    assert set(pose(np.zeros((1, 32, 32, 3), np.float32))) == {"keypoints"}
    with pytest.raises(ConfigError, match="unknown model"):
        loc.localization_net((32, 32, 3), 3, backbone="nope")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = str(tmp_path_factory.mktemp("loc") / "run")
    config = tiny(epochs=8, train_images=768, batch_size=16, keypoints=True)
    return run, loc.train(config, run, log=quiet, progress=False)


@pytest.mark.slow
def test_tiny_run_learns_and_metrics_json(trained):
    run, result = trained
    assert get_task_class("localization") is loc.LocalizationTask
    assert json.load(open(os.path.join(run, "config.json")))["task"] == "localization"
    m = json.load(open(os.path.join(run, "metrics.json")))
    for key in ("test_accuracy", "test_mean_iou", "test_localization_accuracy", "test_box_loss", "test_pck",
                "val_localization_accuracy"):
        assert key in m, key
    # An untrained network of the same build localizes almost nothing.
    config, names, keypoint_names = loc.load_run_config(run)
    untrained = loc.build_model(config, len(names), len(keypoint_names))
    test = result.task.test
    before = loc.localization_scores(untrained(test.batch()["images"]), test.batch())
    assert float(np.mean(before["localized"])) < 0.15
    assert m["test_localization_accuracy"] > 0.3 and m["test_mean_iou"] > 0.45 and m["test_accuracy"] > 0.5
    assert m["test_pck"] > float(np.mean(before["pck"])) + 0.3
    scored = loc.evaluate_run(run)
    for key in ("accuracy", "mean_iou", "localization_accuracy", "loss", "pck"):
        assert scored[key] == pytest.approx(m[f"test_{key}"], rel=1e-4, abs=1e-5), key


@pytest.mark.slow
def test_resume_mid_epoch_equals_uninterrupted(tmp_path):
    config = tiny(epochs=1, train_images=128, deterministic=True)
    loc.train(config, str(tmp_path / "full"), log=quiet, progress=False)
    loc.train(dataclasses.replace(config, max_steps=2), str(tmp_path / "part"), log=quiet, progress=False)
    loc.train(config, str(tmp_path / "part"), resume=True, log=quiet, progress=False)
    full, part = weights(str(tmp_path / "full")), weights(str(tmp_path / "part"))
    assert len(full) > 10
    for name, value in full.items():
        np.testing.assert_array_equal(value, part[name], err_msg=name)
    a = json.load(open(tmp_path / "full" / "metrics.json"))
    b = json.load(open(tmp_path / "part" / "metrics.json"))
    assert a["test_localization_accuracy"] == b["test_localization_accuracy"]
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]


def test_train_batches_depend_only_on_seed_and_epoch():
    task = loc.LocalizationTask(tiny(train_images=128))
    task.prepare()
    whole = list(task.train_dataset(1).as_numpy_iterator())
    skipped = list(task.train_dataset(1, skip_batches=2).as_numpy_iterator())
    assert len(whole) == 4 and len(skipped) == 2
    for a, b in zip(whole[2:], skipped):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert "keypoints" not in whole[0]


def test_bad_configs_and_runs():
    with pytest.raises(ConfigError, match="box_loss"):
        tiny(box_loss="l1").validate()
    with pytest.raises(ConfigError, match="validation_fraction"):
        tiny(validation_fraction=0.5, test_fraction=0.5).validate()
    with pytest.raises(RunDirError, match="does not exist"):
        loc.load_run_config("/nonexistent/run")
    with pytest.raises(DataError, match="not the run's"):
        loc.LocalizationTask(tiny(), class_names=("a", "b")).prepare()
