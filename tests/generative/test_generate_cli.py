"""`cs231n-tf generate` for the likelihood models, and nearest-training-neighbour grids."""

import json
import os

import numpy as np
import pytest

import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from cs231n_tf.export.exporter import TFLiteRunner
from cs231n_tf.generative.neighbours import nearest_neighbours, neighbour_grid, write_neighbour_grid

TINY = ["--data", "digits", "--batch-size", "64", "--filters", "4", "--max-steps", "2"]


def png_shape(path):
    return tuple(tf.io.decode_png(tf.io.read_file(str(path))).shape)


def test_nearest_neighbours_match_scikit_learn_and_find_copies(tmp_path):
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, (50, 4, 4, 1)).astype(np.float32)
    samples = np.concatenate([train[[7]], rng.uniform(-1, 1, (4, 4, 4, 1)).astype(np.float32)])
    idx, dist = nearest_neighbours(samples, train, k=3, chunk=2)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=3).fit(train.reshape(50, -1)).kneighbors(samples.reshape(5, -1))
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-5)
    assert idx[0, 0] == 7 and dist[0, 0] == pytest.approx(0.0, abs=1e-6)  # a copy is its own neighbour
    grid = neighbour_grid(samples, train, k=3)
    assert grid.shape == (20, 4, 4, 1)
    np.testing.assert_array_equal(grid[4], samples[1])
    np.testing.assert_array_equal(grid[5:8], train[ref_idx[1]])
    png = tf.io.decode_png(tf.io.read_file(write_neighbour_grid(samples, train, str(tmp_path / "n.png"), k=3))).numpy()
    assert png.shape == (5 * 5 - 1, 4 * 5 - 1, 1)  # 4x4 tiles, 1 grey pixel between them
    assert np.all(png[4] == 128) and np.all(png[:, 4] == 128)
    np.testing.assert_array_equal(png[:4, :4, 0], np.round((samples[0, ..., 0] + 1) * 127.5))


@pytest.mark.slow
def test_vae_and_pixelcnn_train_resume_sample_and_forward(tmp_path, capsys):
    from cs231n_tf import cli

    vae, pix = str(tmp_path / "vae"), str(tmp_path / "pix")
    assert cli.main(["generate", "train", "--model", "vae", *TINY, "--latent-dim", "2", "--binarize",
                     "--out", vae]) == 0
    assert "test_bits_per_dim=" in capsys.readouterr().out
    metrics = json.load(open(os.path.join(vae, "metrics.json")))
    assert {"test_neg_elbo_nats", "test_bits_per_dim"} <= set(metrics)
    assert cli.main(["generate", "sample", "--run", vae, "--num", "4", "--out", str(tmp_path / "vs"),
                     "--neighbours", "2"]) == 0
    assert png_shape(tmp_path / "vs" / "samples.png") == (16, 16, 1)
    assert png_shape(tmp_path / "vs" / "manifold.png") == (80, 80, 1)
    assert png_shape(tmp_path / "vs" / "neighbours.png") == (4 * 9 - 1, 3 * 9 - 1, 1)
    assert cli.main(["generate", "train", "--model", "pixelcnn", *TINY, "--levels", "4", "--layers", "1",
                     "--out", pix]) == 0
    assert cli.main(["generate", "train", "--out", pix, "--resume", "--max-steps", "3"]) == 0
    assert json.load(open(os.path.join(pix, "metrics.json")))["steps"] == 3
    assert cli.main(["generate", "sample", "--run", pix, "--num", "2", "--out", str(tmp_path / "ps")]) == 0
    assert png_shape(tmp_path / "ps" / "samples.png") == (8, 16, 1)
    gan = str(tmp_path / "gan")
    assert cli.main(["generate", "train", "--model", "dcgan", "--data", "digits", "--batch-size", "64", "--noise-dim",
                     "8", "--base-filters", "4", "--no-frechet", "--max-steps", "1", "--out", gan]) == 0
    assert cli.main(["generate", "sample", "--run", gan, "--num", "3", "--out", str(tmp_path / "gs"),
                     "--neighbours", "1"]) == 0
    assert png_shape(tmp_path / "gs" / "neighbours.png") == (3 * 9 - 1, 2 * 9 - 1, 1)
    assert cli.main(["export", "--run", gan, "--out", str(tmp_path / "ge")]) == 0
    noise = np.random.default_rng(1).uniform(-1, 1, (2, 8)).astype(np.float32)
    served = tf.saved_model.load(str(tmp_path / "ge" / "saved_model")).signatures["serving_default"]
    from cs231n_tf.generative.task import load_generator

    np.testing.assert_allclose(served(noise=tf.constant(noise))["images"].numpy(),
                               load_generator(gan).serve(noise)["images"].numpy(), atol=1e-6)
    capsys.readouterr()
    # The generic evaluate/export know which family opens these runs.
    for run, task in ((vae, "autoencoder"), (pix, "pixelcnn")):
        assert cli.main(["evaluate", "--run", run]) == 2
        assert capsys.readouterr().err.strip() == (f"cs231n-tf evaluate: a {task!r} run has no evaluate; its command "
                                                   "is `cs231n-tf generate` (train|sample|export)")
    assert cli.main(["export", "--run", vae, "--out", str(tmp_path / "ve")]) == 0
    assert cli.main(["export", "--run", vae, "--out", str(tmp_path / "ve"), "--format", "tflite"]) == 0
    z = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32)
    served = tf.saved_model.load(str(tmp_path / "ve" / "saved_model")).signatures["serving_default"]
    lite = TFLiteRunner(model_path=str(tmp_path / "ve" / "model.tflite")).run(latent=z)
    np.testing.assert_allclose(np.asarray(lite["images"]), served(latent=tf.constant(z))["images"].numpy(), atol=1e-5)
    assert cli.main(["generate", "export", "--run", pix, "--out", str(tmp_path / "pe"), "--format", "tflite"]) == 0
    report = json.load(open(str(tmp_path / "pe" / "model.tflite.report.json")))
    assert report["max_abs_diff"]["log_probs"] < 1e-4


def test_one_line_errors(tmp_path, capsys):
    from cs231n_tf import cli

    ae, pix = str(tmp_path / "ae"), str(tmp_path / "pix")
    assert cli.main(["generate", "train", "--model", "ae", *TINY, "--out", ae]) == 0
    os.makedirs(pix)
    with open(os.path.join(pix, "config.json"), "w") as f:
        json.dump({"task": "pixelcnn", "config": {}}, f)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"task": "charrnn", "config": {}}')
    capsys.readouterr()
    cases = [
        (["generate", "train", "--model", "vae", "--latent-dim", "0", "--out", str(tmp_path / "a")], "latent_dim"),
        (["generate", "train", "--model", "vae", "--noise-dim", "8", "--out", str(tmp_path / "b")], "--noise-dim"),
        (["generate", "train", "--model", "gan", "--levels", "2", "--out", str(tmp_path / "c")], "--levels"),
        (["generate", "train", "--model", "pixelcnn", "--arch", "fc", "--out", str(tmp_path / "d")], "--arch"),
        (["generate", "train", "--model", "pixelcnn", "--first-kernel", "4", "--out", str(tmp_path / "e")], "odd"),
        (["generate", "train", "--model", "ae", "--out", pix, "--resume"], "cannot resume a 'pixelcnn' run"),
        (["generate", "train", "--model", "vae", "--out", ae, "--resume", "--latent-dim", "3"], "latent_dim"),
        (["generate", "sample", "--run", ae, "--out", str(tmp_path / "f")], "no prior"),
        (["generate", "sample", "--run", str(other), "--out", str(tmp_path / "g")], "'charrnn' run"),
        (["generate", "export", "--run", str(other), "--out", str(tmp_path / "h")], "'charrnn' run"),
        (["generate", "export", "--run", ae, "--quantize", "dynamic", "--out", str(tmp_path / "i")], "tflite only"),
    ]
    for argv, needle in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("cs231n-tf generate") and needle in err, err
