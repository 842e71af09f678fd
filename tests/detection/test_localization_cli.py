"""``cs231n-tf localize train|evaluate|predict`` on a COCO detection file, the drawing, and bad input."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from cs231n_tf import cli
from cs231n_tf.data.shapes import SHAPES, single_shapes
from cs231n_tf.detection import localization as loc

CLI_TINY = ["--image-size", "24", "--batch-size", "4", "--hidden", "16", "--head-channels", "4", "--log-every", "1000",
            "--validation-fraction", "0.2", "--test-fraction", "0.2"]


def write_coco(root, n=12, seed=0, size=32):
    """``n`` one-shape images as a COCO detection file (plus a 2x2 distractor object per image)."""
    data = single_shapes(n, image_size=size, seed=seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    annotations = []
    for i, (image, box, cls) in enumerate(zip(data.images, data.boxes, data.classes)):
        Image.fromarray(image).save(os.path.join(root, "images", f"{i}.png"))
        ymin, xmin, ymax, xmax = box.tolist()
        annotations.append({"id": 2 * i, "image_id": i, "category_id": int(cls) + 1,
                            "bbox": [xmin, ymin, xmax - xmin, ymax - ymin]})
        annotations.append({"id": 2 * i + 1, "image_id": i, "category_id": 1, "bbox": [0, 0, 2, 2]})
    obj = {"images": [{"id": i, "file_name": f"{i}.png"} for i in range(n)], "annotations": annotations,
           "categories": [{"id": k + 1, "name": name} for k, name in enumerate(SHAPES)]}
    path = os.path.join(root, "ann.json")
    with open(path, "w") as f:
        json.dump(obj, f)
    return f"coco:{path}:{os.path.join(root, 'images')}", data


def one_line_error(capsys, argv):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_draw_prediction_puts_the_box_where_it_belongs():
    image = np.full((100, 80, 3), 30, np.uint8)
    drawn = loc.draw_prediction(image, [0.5, 0.25, 0.9, 0.75], "circle 0.93")
    red = np.all(drawn == (255, 40, 40), axis=-1)
    assert red[50:90, 20].all() and red[50:90, 59].all() and red[89, 20:60].all()  # left, right, bottom edges
    assert not red[51:89, 21:59].any() and not red[91:].any()  # inside and below the box untouched
    assert red[35:50, 20:40].any()  # the label's background, above the box
    assert (drawn[red.shape[0] // 4, -1] == image[0, 0]).all()


@pytest.mark.slow
def test_cli_train_evaluate_predict_on_coco(tmp_path, capsys):
    spec, _ = write_coco(str(tmp_path / "train"))
    run = str(tmp_path / "run")
    assert cli.main(["localize", "train", "--dataset", spec, *CLI_TINY, "--max-steps", "3", "--out", run]) == 0
    assert "test_localization_accuracy=" in capsys.readouterr().out
    m = json.load(open(os.path.join(run, "metrics.json")))
    assert m["steps"] == 3 and m["class_names"] == list(SHAPES)
    held, data = write_coco(str(tmp_path / "held"), n=5, seed=7)
    assert cli.main(["localize", "evaluate", "--run", run, "--dataset", held]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.load(open(os.path.join(run, "evaluation.json")))
    assert printed["examples"] == 5
    # The held-out set's largest objects are the shapes: score them by hand with the run's model.
    model, config, names, _ = loc.load_model(run)
    held_data = loc.load_dataset(held, image_size=24)
    np.testing.assert_array_equal(held_data.classes, data.classes)
    scores = loc.localization_scores(model(held_data.batch()["images"], training=False), held_data.batch())
    assert printed["mean_iou"] == pytest.approx(float(np.mean(scores["iou"])), abs=1e-5)
    assert printed["localization_accuracy"] == pytest.approx(float(np.mean(scores["localized"])), abs=1e-6)
    # The generic command hands a localization run to `localize evaluate`.
    assert cli.main(["evaluate", "--run", run, "--dataset", held]) == 0
    assert json.loads(capsys.readouterr().out) == printed
    # predict: a PNG of the image's own size with the predicted box and class drawn on it.
    photo = str(tmp_path / "held" / "images" / "0.png")
    assert cli.main(["localize", "predict", "--run", run, "--image", photo, "--out", str(tmp_path / "pred")]) == 0
    assert "0.png ->" in capsys.readouterr().out
    drawn, original = np.array(Image.open(tmp_path / "pred" / "0.png")), np.array(Image.open(photo))
    assert drawn.shape == original.shape and (drawn != original).any()
    found = loc.predict(model, held_data.batch()["images"][:1])
    expected = loc.draw_prediction(original, found["boxes"][0],
                                   f"{names[found['classes'][0]]} {found['scores'][0]:.2f}")
    np.testing.assert_array_equal(drawn, expected)


def test_cli_bad_inputs_are_one_line_errors(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert "dataset must be" in one_line_error(capsys, ["localize", "train", "--dataset", "voc", "--out", out])
    assert "invalid choice" in one_line_error(capsys, ["localize", "train", "--box-loss", "l1", "--out", out])
    spec, _ = write_coco(str(tmp_path / "c"), n=3)
    err = one_line_error(capsys, ["localize", "train", "--dataset", spec, "--keypoints", "--out", out])
    assert "keypoints need the shapes" in err
    err = one_line_error(capsys, ["localize", "train", "--dataset", spec + "x", *CLI_TINY, "--out", out])
    assert "does not exist" in err and not os.path.exists(os.path.join(out, "config.json"))
    err = one_line_error(capsys, ["localize", "train", "--backbone", "nope", *CLI_TINY, "--train-images", "8",
                                  "--out", out])
    assert "unknown model 'nope'" in err and not os.path.exists(out)
    assert "does not exist" in one_line_error(capsys, ["localize", "evaluate", "--run", str(tmp_path / "nowhere")])
    assert "--run" in one_line_error(capsys, ["localize", "predict", "--image", "x.png", "--out", out])
