"""``masks:IMAGE_DIR:MASK_DIR`` data and the ``cs231n-tf segment`` commands, bad input included."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix

from cs231n_tf import cli
from cs231n_tf.data.shapes import shape_scenes
from cs231n_tf.errors import DataError
from cs231n_tf.segmentation import data as segdata
from cs231n_tf.segmentation.predict import voc_colormap

CLI_TINY = ["--image-size", "16", "--depth", "1", "--filters", "4", "--batch-size", "4", "--log-every", "1000",
            "--validation-fraction", "0.2", "--test-fraction", "0.2"]


def write_masks_set(root, n=10, seed=0, size=16, palette=True):
    """``n`` scenes as ``root/images/*.png`` + ``root/masks/*.png`` (palette PNGs, 255 on the border)."""
    scenes = shape_scenes(n, image_size=size, seed=seed)
    images, masks = os.path.join(root, "images"), os.path.join(root, "masks")
    os.makedirs(images, exist_ok=True)
    os.makedirs(masks, exist_ok=True)
    labels = scenes.masks.copy()
    labels[:, 0, :] = 255  # VOC's void border
    for i, (image, mask) in enumerate(zip(scenes.images, labels)):
        Image.fromarray(image).save(os.path.join(images, f"img_{i:03d}.png"))
        m = Image.frombytes("P" if palette else "L", (size, size), mask.tobytes())
        if palette:
            m.putpalette(voc_colormap(256).ravel().tolist())
        m.save(os.path.join(masks, f"img_{i:03d}.png"))
    return images, masks, scenes.images, labels


def one_line_error(capsys, argv):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_masks_format_round_trips_palette_pngs(tmp_path):
    images, masks, x, y = write_masks_set(str(tmp_path))
    assert Image.open(os.path.join(masks, "img_000.png")).mode == "P"
    data = segdata.load_masks(images, masks)
    np.testing.assert_array_equal(data.images, x)
    np.testing.assert_array_equal(data.masks, y)  # palette indices, not colours; 255 kept
    assert data.class_names == ("class_0", "class_1", "class_2", "class_3")
    names = tmp_path / "names.txt"
    names.write_text("bg\ncircle\nsquare\ntriangle\n")
    assert segdata.load_masks(images, masks, segdata.read_class_names(str(names))).class_names[1] == "circle"
    resized = segdata.load_masks(images, masks, image_size=8)
    assert resized.images.shape == (10, 8, 8, 3) and set(np.unique(resized.masks)) <= set(np.unique(y))
    train, val, test = segdata.split_data(data, 0.2, 0.2, seed=0)
    assert (len(train), len(val), len(test)) == (6, 2, 2)


def test_masks_format_errors(tmp_path):
    images, masks, _, _ = write_masks_set(str(tmp_path / "a"), n=3)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(os.path.join(masks, "img_001.png"))
    with pytest.raises(DataError, match="img_001.png' is 5x5 but its image"):
        segdata.load_masks(images, masks)
    images, masks, _, _ = write_masks_set(str(tmp_path / "b"), n=3)
    os.remove(os.path.join(masks, "img_002.png"))
    with pytest.raises(DataError, match="1 image\\(s\\).*have no mask.*img_002.png"):
        segdata.load_masks(images, masks)
    images, masks, _, _ = write_masks_set(str(tmp_path / "c"), n=3)
    with pytest.raises(DataError, match="label\\(s\\) \\[2, 3\\] outside the 2 classes"):
        segdata.load_masks(images, masks, class_names=("bg", "circle"))
    (tmp_path / "dup.txt").write_text("a\nb\na\n")
    with pytest.raises(DataError, match="names a more than once"):
        segdata.read_class_names(str(tmp_path / "dup.txt"))
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(os.path.join(masks, "img_000.png"))
    with pytest.raises(DataError, match="8-bit grayscale or palette"):
        segdata.load_masks(images, masks)


@pytest.mark.slow
def test_cli_train_evaluate_predict(tmp_path, capsys):
    images, masks, _, _ = write_masks_set(str(tmp_path / "train"), n=20)
    run = str(tmp_path / "run")
    spec = f"masks:{images}:{masks}"
    assert cli.main(["segment", "train", "--dataset", spec, *CLI_TINY, "--max-steps", "4", "--out", run]) == 0
    assert "test_mean_iou=" in capsys.readouterr().out
    assert json.load(open(os.path.join(run, "metrics.json")))["steps"] == 4
    # A held-out set in the same format, scored on all of it.
    h_images, h_masks, _, h_y = write_masks_set(str(tmp_path / "held"), n=6, seed=9)
    assert cli.main(["segment", "evaluate", "--run", run, "--dataset", f"masks:{h_images}:{h_masks}"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.load(open(os.path.join(run, "evaluation.json")))
    assert printed["examples"] == 6 and set(printed) >= {"mean_iou", "per_class_iou", "pixel_accuracy"}
    # The generic command reads the run's task and hands it to `segment evaluate`, flags included.
    assert cli.main(["evaluate", "--run", run, "--dataset", f"masks:{h_images}:{h_masks}"]) == 0
    assert json.loads(capsys.readouterr().out) == printed
    err = one_line_error(capsys, ["evaluate", "--run", run, "--split", "validation", "--checkpoint", "nowhere"])
    assert err.startswith("cs231n-tf segment:")
    from cs231n_tf.segmentation.task import load_model, predict_labels

    model, _, _ = load_model(run)
    x = segdata.load_masks(h_images, h_masks).images.astype(np.float32) / 255
    pred = predict_labels(model, x)
    valid = h_y != 255
    cm = confusion_matrix(h_y[valid], pred[valid], labels=range(4))
    assert printed["pixel_accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-6)
    # predict: an overlay PNG of the image's own size, background pixels unchanged.
    photo = os.path.join(images, "img_000.png")
    assert cli.main(["segment", "predict", "--run", run, "--image", photo, "--out", str(tmp_path / "pred")]) == 0
    drawn = np.array(Image.open(tmp_path / "pred" / "img_000.png"))
    labels = np.array(Image.open(tmp_path / "pred" / "img_000_labels.png"))
    original = np.array(Image.open(photo))
    assert drawn.shape == original.shape and labels.shape == original.shape[:2]
    np.testing.assert_array_equal(drawn[labels == 0], original[labels == 0])
    np.testing.assert_array_equal(labels, predict_labels(model, original[None].astype(np.float32) / 255)[0])


def test_cli_bad_inputs_are_one_line_errors(tmp_path, capsys):
    images, masks, _, _ = write_masks_set(str(tmp_path / "d"), n=4)
    os.remove(os.path.join(masks, "img_003.png"))
    out = str(tmp_path / "out")
    err = one_line_error(capsys, ["segment", "train", "--dataset", f"masks:{images}:{masks}", *CLI_TINY, "--out", out])
    assert "have no mask" in err and not os.path.exists(os.path.join(out, "config.json"))
    images, masks, _, _ = write_masks_set(str(tmp_path / "e"), n=4)
    names = tmp_path / "names.txt"
    names.write_text("bg\nthing\n")
    err = one_line_error(capsys, ["segment", "train", "--dataset", f"masks:{images}:{masks}", "--class-names",
                                  str(names), *CLI_TINY, "--out", out])
    assert "outside the 2 classes" in err
    assert "dataset must be" in one_line_error(capsys, ["segment", "train", "--dataset", "voc", "--out", out])
    assert "does not exist" in one_line_error(capsys, ["segment", "evaluate", "--run", str(tmp_path / "nowhere")])
    assert "invalid choice" in one_line_error(capsys, ["segment", "train", "--upsampling", "cubic", "--out", out])
    assert "--run" in one_line_error(capsys, ["segment", "predict", "--image", "x.png", "--out", out])
    assert "TFLite only" in one_line_error(capsys, ["segment", "export", "--run", out, "--quantize", "int8"])
    assert "goes with --dataset" in one_line_error(capsys, ["segment", "evaluate", "--run", out, "--class-names",
                                                            str(names)])
