"""`cs231n-tf attack` on a tiny trained run: report files agree with the library; bad input is one line, exit 2."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import adversarial, cli

TINY = ["--model", "two_layer_net", "--model-option", "hidden_dim=16", "--epochs", "1", "--lr", "0.01"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("attack") / "run")
    assert cli.main(["train", "--out", out] + TINY) == 0
    return out


def test_attack_writes_report_matching_library(run_dir, tmp_path):
    out = str(tmp_path / "att")
    assert cli.main(["attack", "--run", run_dir, "--method", "fgsm", "--eps", "0,0.1", "--limit", "64",
                     "--out", out]) == 0
    curve = json.load(open(os.path.join(out, "robustness.json")))
    assert [c["eps"] for c in curve] == [0.0, 0.1]
    for name in ("robustness.md", "robustness.png", "examples_eps0.1.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    # Clean accuracy equals the run's own predictions on its normalised test images.
    from cs231n_tf.train import config as config_lib
    from cs231n_tf.train.evaluate import load_run
    run = load_run(run_dir, None, float32=True)
    data = config_lib.load_data(run.config)
    x, y = data.arrays["x_test"][:64], data.arrays["y_test"][:64]
    pred = np.argmax(run.model(data.preprocess(x)).numpy(), 1)
    assert curve[0]["accuracy"] == pytest.approx(np.mean(pred == y))
    unit = data.to_unit(x).numpy()
    adv = adversarial.fgsm(run_dir, unit, y, 0.1)
    assert np.abs(adv - unit).max() <= 0.1 + 1e-6
    adv_pred = np.argmax(run.model(data.standardize(tf.constant(adv))).numpy(), 1)
    assert curve[1]["accuracy"] == pytest.approx(np.mean(adv_pred == y)) and curve[1]["accuracy"] < curve[0]["accuracy"]


@pytest.mark.parametrize("extra,msg", [(["--eps", "-0.1"], "eps"), (["--eps", "2"], "pixel range"),
                                       (["--method", "linear"], "linear classifier"), (["--eps", "a"], "eps"),
                                       (["--method", "transfer", "--seed-size", "100000"], "seed-size"),
                                       (["--method", "transfer", "--substitute", "nope"], "nope")])
def test_attack_bad_input_one_line(run_dir, tmp_path, capsys, extra, msg):
    assert cli.main(["attack", "--run", run_dir, "--out", str(tmp_path / "o"), "--limit", "8"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("attack") / "linear")
    assert cli.main(["train", "--out", out, "--model", "softmax_classifier", "--epochs", "2", "--lr", "0.01"]) == 0
    return out


def test_linear_weights_fold_the_runs_normalisation(linear_run):
    from cs231n_tf.train import config as config_lib
    from cs231n_tf.train.evaluate import load_run

    run = load_run(linear_run, None, float32=True)
    data = config_lib.load_data(run.config)
    x = data.to_unit(data.arrays["x_test"][:4]).numpy()
    W, b = adversarial.linear_weights(linear_run, x)
    kernel, bias = [v.numpy().astype(np.float64) for v in run.model.get_layer("logits").weights]
    mean = np.broadcast_to(np.asarray(data.info.mean, np.float64), x.shape[1:]).reshape(-1)
    std = np.broadcast_to(np.asarray(data.info.std, np.float64), x.shape[1:]).reshape(-1)
    np.testing.assert_allclose(W, kernel / std[:, None], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b, bias - (mean / std) @ kernel, rtol=1e-4, atol=1e-3)


def test_linear_attack_from_the_cli(linear_run, tmp_path):
    out = str(tmp_path / "lin")
    assert cli.main(["attack", "--run", linear_run, "--method", "linear", "--eps", "0,0.05,0.2", "--limit", "100",
                     "--out", out]) == 0
    curve = json.load(open(os.path.join(out, "robustness.json")))
    assert curve[0]["accuracy"] > 0.8 and curve[2]["accuracy"] < curve[1]["accuracy"] < curve[0]["accuracy"]
    # Towards a fixed class: at eps 1 every pixel moves to the template's sign, so almost all become the target.
    out2 = str(tmp_path / "lin2")
    assert cli.main(["attack", "--run", linear_run, "--method", "linear", "--target", "3", "--eps", "1",
                     "--limit", "100", "--out", out2]) == 0
    assert json.load(open(os.path.join(out2, "robustness.json")))[0]["accuracy"] <= 0.2


def test_transfer_attack_from_the_cli(run_dir, tmp_path):
    out = str(tmp_path / "tr")
    assert cli.main(["attack", "--run", run_dir, "--method", "transfer", "--eps", "0,0.3", "--limit", "64",
                     "--seed-size", "40", "--rounds", "2", "--out", out]) == 0
    record = json.load(open(os.path.join(out, "transfer.json")))
    assert record["queries"] == 40 * 2 and [r["queries"] for r in record["rounds"]] == [40, 80]
    curve = json.load(open(os.path.join(out, "robustness.json")))
    assert curve[1]["accuracy"] < curve[0]["accuracy"]
