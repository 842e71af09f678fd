"""``cs231n-tf detect`` through the CLI's main(): evaluate, predict, export, a COCO-format run, bad input."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.cli.main import main


def _coco(root, annotations=None, categories=None, missing_image=False, text=None):
    """A three-image COCO detection set (image 3 has no objects) in ``root``; returns the spec."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in (1, 2, 3):
        if missing_image and i == 3:
            continue
        pixels = rng.integers(0, 60, (40, 48, 3), dtype=np.uint8)
        pixels[5:25, 10:30] = (230, 40, 40)
        tf.io.write_file(str(images / f"{i}.png"), tf.io.encode_png(pixels))
    obj = {"images": [{"id": i, "file_name": f"{i}.png", "height": 40, "width": 48} for i in (1, 2, 3)],
           "categories": categories or [{"id": 1, "name": "square"}, {"id": 4, "name": "blob"}],
           "annotations": annotations or [
               {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 5, 20, 20]},
               {"id": 2, "image_id": 2, "category_id": 4, "bbox": [10, 5, 20, 20]}]}
    path = root / "instances.json"
    path.write_text(text if text is not None else json.dumps(obj))
    return f"coco:{path}:{images}"


def _one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


@pytest.mark.slow
def test_evaluate_prints_the_coco_table_and_writes_json(trained_run, capsys):
    run, _, _ = trained_run
    # The generic `evaluate --run` hands a detection run to `detect evaluate` (default output RUN/evaluation.json).
    assert main(["evaluate", "--run", run, "--split", "validation"]) == 0
    printed = capsys.readouterr().out
    report = json.load(open(os.path.join(run, "evaluation.json")))
    assert "AP @[IoU=0.50:0.95 | area=all | maxDets=100]" in printed and f"{report['AP50']:6.3f}" in printed
    assert report["split"] == "validation" and report["examples"] == 4 and {"AP", "AP75", "AR100"} <= set(report)


@pytest.mark.slow
def test_predict_draws_detections_on_photos_and_files(trained_run, capsys, tmp_path):
    run, _, _ = trained_run
    from cs231n_tf.data.photos import load_photo

    image = tmp_path / "scene.png"
    tf.io.write_file(str(image), tf.io.encode_png(np.full((50, 70, 3), 30, np.uint8)))
    assert main(["detect", "predict", "--run", run, "--image", "photo:coffee", "--image", str(image), "--out",
                 str(tmp_path / "drawn"), "--min-score", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    drawn = tf.io.decode_png(tf.io.read_file(str(tmp_path / "drawn" / "coffee.png"))).numpy()
    assert drawn.shape == load_photo("coffee").shape
    detections = json.loads(lines[1])
    assert detections and {"class", "score", "box"} <= set(detections[0])
    # Boxes are in the photo's own pixels.
    h, w = drawn.shape[:2]
    assert all(0 <= d["box"][0] <= d["box"][2] <= h and 0 <= d["box"][1] <= d["box"][3] <= w for d in detections)
    assert (tmp_path / "drawn" / "scene.png").is_file()
    _one_line_error(capsys, ["detect", "predict", "--run", run, "--image", str(tmp_path / "nope.png"), "--out",
                             str(tmp_path)], "nope.png")


@pytest.mark.slow
def test_export_saved_model_and_tflite_keep_the_ap(trained_run, capsys, tmp_path):
    run, _, _ = trained_run
    out = str(tmp_path / "exp")
    assert main(["detect", "export", "--run", run, "--out", out]) == 0
    saved = json.load(open(os.path.join(out, "saved_model.report.json")))
    assert saved["AP"] == saved["keras_AP"] and saved["max_abs_diff"]["boxes"] < 1e-3
    assert saved["inputs"]["images"]["shape"] == [None, 32, 32, 3]
    assert saved["outputs"]["boxes"]["shape"] == [None, 100, 4] and saved["outputs"]["classes"]["dtype"] == "int32"
    # Through the generic export verb, forwarded to `detect export`.
    assert main(["export", "--run", run, "--format", "tflite", "--out", out]) == 0
    lite = json.load(open(os.path.join(out, "model_none.tflite.report.json")))
    # Float TFLite detects as Keras does; its post-processing is the SavedModel's rule (the same AP up to
    # boxes at the score threshold).
    assert lite["AP"] == pytest.approx(lite["keras_AP"], abs=0.01)
    assert lite["keras_AP"] == pytest.approx(saved["keras_AP"], abs=0.01)
    assert abs(lite["detections"] - lite["keras_detections"]) <= 0.02 * lite["keras_detections"] + 1


@pytest.mark.slow
def test_trains_and_evaluates_on_coco_json_with_an_empty_image(tmp_path, capsys):
    spec = _coco(tmp_path / "coco")
    run = str(tmp_path / "run")
    assert main(["detect", "train", "--dataset", spec, "--out", run, "--image-size", "32", "--batch-size", "1",
                 "--validation-fraction", "0", "--test-fraction", "0.34", "--epochs", "1", "--fpn-filters", "8",
                 "--head-depth", "1", "--keep-checkpoints", "1"]) == 0
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["class_names"] == ["square", "blob"] and config["category_ids"] == [1, 4]
    assert config["data"] == {"source": spec, "train": 2, "validation": 0, "test": 1}
    assert main(["detect", "evaluate", "--run", run, "--dataset", spec]) == 0
    assert json.load(open(os.path.join(run, "evaluation.json")))["examples"] == 3
    other = _coco(tmp_path / "other", categories=[{"id": 1, "name": "square"}, {"id": 4, "name": "kite"}])
    _one_line_error(capsys, ["detect", "evaluate", "--run", run, "--dataset", other], "not the run's")


@pytest.mark.parametrize("case,match", [
    ("xmax_below_xmin", "w or h <= 0"),
    ("outside", "outside"),
    ("unknown_category", "not in 'categories'"),
    ("missing_image", "does not exist"),
    ("malformed", "not valid JSON"),
])
def test_bad_coco_input_is_one_line_exit_2(tmp_path, capsys, case, match):
    ann = {"xmax_below_xmin": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [30, 5, -20, 10]}],
           "outside": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 5, 20, 10]}],
           "unknown_category": [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [10, 5, 20, 10]}]}.get(case)
    spec = _coco(tmp_path, annotations=ann, missing_image=case == "missing_image",
                 text="{\"images\": [" if case == "malformed" else None)
    _one_line_error(capsys, ["detect", "train", "--dataset", spec, "--out", str(tmp_path / "run"), "--image-size",
                             "32"], match)
    assert not (tmp_path / "run").exists()


def test_runs_of_other_tasks_and_bad_flags_are_one_line_exit_2(tmp_path, capsys):
    other = tmp_path / "seg"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "segmentation", "config": {}}))
    _one_line_error(capsys, ["detect", "evaluate", "--run", str(other)], "segmentation")
    _one_line_error(capsys, ["detect", "export", "--run", str(other)], "segmentation")
    _one_line_error(capsys, ["detect", "train", "--out", str(tmp_path / "r"), "--image-size", "40"], "multiple of 32")
    _one_line_error(capsys, ["detect", "train", "--out", str(tmp_path / "r"), "--dataset", "voc"], "dataset must be")
