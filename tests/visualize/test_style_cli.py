"""`cs231n-tf style transfer` on the pretrained EfficientNet-Lite0 (offline weights) and its bad input."""

import json

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import cli

BASE = ["style", "transfer", "--model", "efficientnet_lite0", "--image-size", "64", "--steps", "4", "--log-every", "2"]


def test_transfer_writes_png_and_falling_history(tmp_path):
    out = tmp_path / "o"
    assert cli.main(BASE + ["--content", "photo:chelsea", "--style", "photo:coffee", "--out", str(out),
                            "--optimizer", "lbfgs"]) == 0
    report = json.loads((out / "style_transfer.json").read_text())
    totals = [h["total"] for h in report["history"]]
    assert [h["step"] for h in report["history"]] == [0, 2, 4]
    assert totals[-1] < totals[0]
    image = tf.io.decode_png((out / "stylized.png").read_bytes()).numpy()
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


@pytest.mark.parametrize("extra, message", [
    (["--content", "missing.png", "--style", "photo:coffee"], "does not exist"),
    (["--content", "photo:chelsea", "--style", "photo:coffee", "--content-layer", "nope"], "valid: images"),
    (["--content", "photo:chelsea", "--style", "photo:coffee", "--style-layers", "stem_conv",
      "--style-weights", "1,2"], "one weight per style layer"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, extra, message):
    assert cli.main(BASE + extra + ["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_transfer_on_a_trained_run_uses_its_convolutions(tmp_path):
    run_dir, out = str(tmp_path / "run"), tmp_path / "o"
    assert cli.main(["train", "--model", "lenet5", "--epochs", "1", "--out", run_dir]) == 0
    assert cli.main(["style", "transfer", "--run", run_dir, "--content", "photo:chelsea", "--style", "photo:coffee",
                     "--out", str(out), "--steps", "3", "--optimizer", "lbfgs"]) == 0
    report = json.loads((out / "style_transfer.json").read_text())
    assert report["source"]["run_dir"] == run_dir and report["style_layers"]
    assert report["history"][-1]["total"] < report["history"][0]["total"]
