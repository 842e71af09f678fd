"""`cs231n-tf viz classviz|dream|invert|neighbors|pca|tsne` on a tiny digits run: the numbers in the JSON are
the library's; bad input is one line and exit 2."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from sklearn.decomposition import PCA

from cs231n_tf import cli
from cs231n_tf.visualize.embedding import extract_features, nearest_neighbors
from cs231n_tf.visualize.report import load_classifier
from cs231n_tf.visualize.space import dataset_sample


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("vizs") / "run")
    assert cli.main(["train", "--out", out, "--model", "small_convnet", "--epochs", "1", "--max-steps", "20"]) == 0
    return out


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from cs231n_tf.data import photos
    path = str(tmp_path_factory.mktemp("img") / "digit.png")
    tf.io.write_file(path, tf.io.encode_png(tf.image.resize(photos.load_photo("coffee"), (8, 8)).numpy()
                                            .astype(np.uint8)[..., :1]))
    return path


def _report(out, verb):
    report = json.load(open(os.path.join(out, f"{verb}.json")))
    assert report["verb"] == verb
    return report


def _features(run_dir, limit):
    net, prepare, _, _, _ = load_classifier(run_dir)
    images, labels, _, _ = dataset_sample("digits", limit)
    return extract_features(net, np.stack([prepare(im) for im in images]).astype(np.float32)), labels


def test_neighbors_and_pca_are_the_library_on_the_runs_data(run_dir, tmp_path):
    out = str(tmp_path / "nn")
    assert cli.main(["viz", "neighbors", "--run", run_dir, "--limit", "60", "--k", "3", "--queries", "4",
                     "--out", out]) == 0
    report = _report(out, "neighbors")
    feats, labels = _features(run_dir, 60)
    assert report["dataset"] == "digits" and report["labels"] == labels.tolist()
    np.testing.assert_array_equal(report["feature_neighbors"], 4 + nearest_neighbors(feats[:4], feats[4:], 3))
    want = np.mean(labels[np.asarray(report["feature_neighbors"])] == labels[:4, None])
    assert report["feature_label_agreement"] == pytest.approx(want)
    assert os.path.getsize(os.path.join(out, "neighbors.png")) > 0

    assert cli.main(["viz", "pca", "--run", run_dir, "--limit", "60", "--out", out]) == 0
    coords = np.asarray(_report(out, "pca")["coordinates"])
    np.testing.assert_allclose(coords, PCA(n_components=2).fit_transform(feats.astype(np.float64)), atol=1e-4)


def test_tsne_writes_a_plot(run_dir, tmp_path):
    out = str(tmp_path / "tsne")
    assert cli.main(["viz", "tsne", "--run", run_dir, "--limit", "40", "--out", out]) == 0
    assert np.asarray(_report(out, "tsne")["coordinates"]).shape == (40, 2)
    assert os.path.getsize(os.path.join(out, "tsne.png")) > 0


def test_classviz_raises_the_target_score(run_dir, tmp_path):
    out = str(tmp_path / "cv")
    assert cli.main(["viz", "classviz", "--run", run_dir, "--target", "3", "--steps", "30", "--out", out]) == 0
    report = _report(out, "classviz")
    assert report["target"] == 3 and report["steps"] == 30 and report["score_end"] > report["score_start"]


def test_dream_and_invert(run_dir, image, tmp_path):
    out = str(tmp_path / "di")
    assert cli.main(["viz", "dream", "--run", run_dir, "--image", image, "--steps", "5", "--out", out]) == 0
    row = _report(out, "dream")["images"][0]
    assert row["objective"][-1] > row["objective"][0] > 0
    assert cli.main(["viz", "invert", "--run", run_dir, "--image", image, "--layer", "conv1_1", "--steps", "60",
                     "--out", out]) == 0
    row = _report(out, "invert")["images"][0]
    assert row["feature_loss_end"] < 0.2 * row["feature_loss_start"]


@pytest.mark.parametrize("args,msg", [(["dream", "--layer", "nope", "--image", "IMG"], "valid: "),
                                      (["invert", "--image", "BAD"], "cannot decode"),
                                      (["classviz", "--target", "10"], "target class must be an int in 0..9"),
                                      (["pca", "--layer", "nope"], "unknown layer 'nope'; layers: ")])
def test_bad_input_one_line(run_dir, image, tmp_path, capsys, args, msg):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    args = [{"BAD": str(bad), "IMG": image}.get(a, a) for a in args]
    assert cli.main(["viz"] + args[:1] + ["--run", run_dir, "--out", str(tmp_path / "o")] + args[1:]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err, err
