"""`cs231n-tf viz` on a tiny trained digits run: files and numbers agree with the library; bad input is one line."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import cli, visualize
from cs231n_tf.visualize.report import load_classifier

TINY = ["--model", "small_convnet", "--epochs", "1", "--max-steps", "20"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("viz") / "run")
    assert cli.main(["train", "--out", out] + TINY) == 0
    return out


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from cs231n_tf.data import photos
    path = str(tmp_path_factory.mktemp("img") / "digit.png")
    tf.io.write_file(path, tf.io.encode_png(tf.image.resize(photos.load_photo("coffee"), (8, 8)).numpy()
                                            .astype(np.uint8)[..., :1]))
    return path


def test_viz_saliency_matches_the_library(run_dir, image, tmp_path):
    out = str(tmp_path / "v")
    assert cli.main(["viz", "saliency", "--run", run_dir, "--image", image, "--image", image, "--out", out]) == 0
    report = json.load(open(os.path.join(out, "saliency.json")))
    assert len(report["images"]) == 2 and os.path.getsize(os.path.join(out, report["images"][0]["png"])) > 0
    net, prepare, channels, _, _ = load_classifier(run_dir)
    from cs231n_tf.train.predict import read_image_spec
    x = prepare(read_image_spec(image, channels))[None].astype(np.float32)
    pred = int(net(x).numpy().argmax())
    assert report["images"][0]["predicted"] == pred
    assert report["images"][0]["map_max"] == pytest.approx(float(visualize.saliency(net, x, [pred]).max()), rel=1e-5)


@pytest.mark.parametrize("verb", ["gradcam", "occlusion", "activations", "filters"])
def test_viz_verbs_write_png_and_json(run_dir, image, tmp_path, verb):
    out = str(tmp_path / verb)
    extra = [] if verb == "filters" else ["--image", image]
    assert cli.main(["viz", verb, "--run", run_dir, "--out", out] + extra) == 0
    report = json.load(open(os.path.join(out, f"{verb}.json")))
    assert report["verb"] == verb
    assert any(f.endswith(".png") for f in os.listdir(out))


def test_viz_fool_reports_change_and_steps(run_dir, image, tmp_path):
    out = str(tmp_path / "fool")
    assert cli.main(["viz", "fool", "--run", run_dir, "--image", image, "--target", "3", "--steps", "50",
                     "--out", out]) == 0
    row = json.load(open(os.path.join(out, "fool.json")))["images"][0]
    assert row["success"] == (row["fooled_prediction"] == 3)
    assert row["linf"] > 0 and row["l2"] >= row["linf"] and 1 <= row["steps"] <= 50


@pytest.mark.parametrize("args,msg", [(["gradcam", "--layer", "nope"], "layers with feature maps"),
                                      (["saliency", "--target", "10"], "target class must be an int in 0..9"),
                                      (["saliency", "--image", "BAD"], "cannot decode")])
def test_viz_bad_input_one_line(run_dir, image, tmp_path, capsys, args, msg):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    args = [str(bad) if a == "BAD" else a for a in args]
    images = [] if "--image" in args else ["--image", image]
    assert cli.main(["viz"] + args[:1] + ["--run", run_dir, "--out", str(tmp_path / "o")] + images + args[1:]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err, err


def test_viz_gradcam_on_the_pretrained_network_and_the_cat(tmp_path):
    out = str(tmp_path / "cat")
    assert cli.main(["viz", "gradcam", "--model", "efficientnet_lite0", "--image", "photo:chelsea", "--out", out]) == 0
    report = json.load(open(os.path.join(out, "gradcam.json")))
    row = report["images"][0]
    assert 281 <= row["predicted"] <= 285  # ImageNet's domestic cats: tabby .. Egyptian cat
    assert row["map_max"] > 0
