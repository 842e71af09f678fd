"""User mistakes get one line on stderr and exit code 2; the commands do their job."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cs231n_tf import cli

TINY = ["--model", "two_layer_net", "--model-option", "hidden_dim=16", "--epochs", "1", "--lr", "0.01"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cli") / "run")
    assert cli.main(["train", "--out", out] + TINY) == 0
    return out


@pytest.mark.parametrize("argv,message", [
    (["train", "--model", "resnet9000"], "unknown model 'resnet9000'; known models:"),
    (["train", "--dataset", "imagenet"], "unknown data set 'imagenet'"),
    (["train", "--dataset", "cifar10", "--data-dir", "{tmp}/none"], "data set 'cifar10' not found in"),
    (["train", "--dataset", "npz:{tmp}/missing.npz"], "does not exist"),
    (["train", "--epochs", "0"], "--epochs: expected a positive integer, got '0'"),
    (["train", "--lr", "-1"], "--lr: expected a positive finite number"),
    (["train", "--batch-size", "many"], "--batch-size: expected a positive integer"),
    (["train", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["train", "--mixed-precision", "fp8"], "invalid choice"),
    (["train", "--model-option", "noequals"], "expected KEY=VALUE"),
    (["train", "--model", "two_layer_net", "--model-option", "width=3"], "does not accept option(s) width"),
    (["train", "--resume"], "--resume needs --out"),
    (["evaluate", "--run", "{tmp}/nowhere"], "does not exist"),
    (["export", "--run", "{tmp}/nowhere"], "does not exist"),
    (["export", "--run", "{tmp}", "--format", "onnx"], "invalid choice"),
    (["evaluate"], "the following arguments are required: --run"),
    (["frobnicate"], "invalid choice"),
])
def test_user_mistakes_one_line_exit_2(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_corrupt_and_incomplete_run_directories(tmp_path, capsys, run_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["evaluate", "--run", str(empty)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(open(os.path.join(run_dir, "config.json")).read())
    assert cli.main(["export", "--run", str(broken)]) == 2
    assert "has no checkpoint" in capsys.readouterr().err
    (broken / "config.json").write_text("{")
    assert cli.main(["evaluate", "--run", str(broken)]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_resume_rejects_changed_settings(capsys, run_dir):
    assert cli.main(["train", "--out", run_dir, "--resume", "--model", "lenet5"]) == 2
    assert "these differ from it: model" in capsys.readouterr().err


def test_train_refuses_existing_run_without_resume(capsys, run_dir):
    assert cli.main(["train", "--out", run_dir] + TINY) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_nan_guard_exit_code(tmp_path, capsys):
    code = cli.main(["train", "--out", str(tmp_path / "nan"), "--model", "two_layer_net", "--optimizer", "sgd",
                     "--lr", "10000", "--epochs", "2", "--checkpoint-every", "1"])
    assert code == 3
    assert "non-finite loss" in capsys.readouterr().err


def test_evaluate_prints_json(capsys, run_dir):
    assert cli.main(["evaluate", "--run", run_dir]) == 0
    result = json.loads(capsys.readouterr().out)
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert result["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_evaluate_a_whole_data_set_weighs_the_splits(capsys, run_dir, tmp_path):
    splits = {}
    for split in ("train", "validation", "test"):
        assert cli.main(["evaluate", "--run", run_dir, "--split", split]) == 0
        splits[split] = json.loads(capsys.readouterr().out)
    # The run's own data set named as a held-out set: every example once, with the run's normalisation.
    assert cli.main(["evaluate", "--run", run_dir, "--dataset", "digits"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert whole["examples"] == 1797 == sum(r["examples"] for r in splits.values())
    assert whole["accuracy"] == pytest.approx(sum(r["accuracy"] * r["examples"] for r in splits.values()) / 1797)
    assert whole["loss"] == pytest.approx(sum(r["loss"] * r["examples"] for r in splits.values()) / 1797, rel=1e-5)
    zeros = dict(x_train=np.zeros((4, 8, 8, 3), np.uint8), y_train=np.zeros(4, np.int64))
    np.savez(tmp_path / "other.npz", **zeros, x_test=zeros["x_train"], y_test=zeros["y_train"])
    assert cli.main(["evaluate", "--run", run_dir, "--dataset", f"npz:{tmp_path / 'other.npz'}"]) == 2
    assert "has images of shape (8, 8, 3), but the run was trained on (8, 8, 1)" in capsys.readouterr().err


def test_export_default_location_is_saved_models_run_name(tmp_path, monkeypatch, capsys, run_dir):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export", "--run", run_dir, "--format", "tflite"]) == 0
    assert (tmp_path / "saved_models" / "run" / "model_none.tflite").is_file()
    assert (tmp_path / "saved_models" / "run" / "model_none.tflite.report.json").is_file()


def test_models_and_datasets_listings(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "61,706" in out
    assert cli.main(["datasets"]) == 0
    assert "digits" in capsys.readouterr().out


def test_real_process_mistake_prints_exactly_one_stderr_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cs231n_tf.cli", "train", "--model", "nope"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("cs231n-tf train: unknown model 'nope'")


def test_help_for_every_command():
    for command in ("train", "evaluate", "export", "models", "datasets"):
        out = subprocess.run([sys.executable, "-m", "cs231n_tf.cli", command, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "usage: cs231n-tf " + command in out.stdout


def test_sanity_check_flag_runs_the_checks_first(tmp_path, capsys):
    argv = ["train", "--model", "two_layer_net", "--model-option", "hidden_dim=32", "--epochs", "1", "--sanity-check"]
    assert cli.main(argv + ["--out", str(tmp_path / "ok")]) == 0
    out = capsys.readouterr().out
    assert out.count("[PASS]") == 3 and "test_accuracy=" in out
    # A learning rate far too small cannot overfit 50 examples: exit 3 before any training.
    assert cli.main(argv + ["--lr", "1e-7", "--out", str(tmp_path / "bad")]) == 3
    captured = capsys.readouterr()
    assert "[FAIL]" in captured.out and "sanity checks failed" in captured.err
    assert not (tmp_path / "bad").exists()


def _one_line(capsys, fragment):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err, err
    return err


def test_npz_with_an_empty_training_split(tmp_path, capsys):
    import numpy as np

    path = tmp_path / "empty.npz"
    np.savez(path, x_train=np.zeros((0, 8, 8), np.uint8), y_train=np.zeros(0, np.int64),
             x_test=np.zeros((4, 8, 8), np.uint8), y_test=np.arange(4))
    assert cli.main(["train", "--dataset", f"npz:{path}"] + TINY) == 2
    _one_line(capsys, "train split is empty")


def test_truncated_checkpoint_is_named_and_resume_falls_back(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(["train", "--out", out, "--checkpoint-every", "5"] + TINY) == 0
    capsys.readouterr()
    ckpts = os.path.join(out, "checkpoints")
    latest = json.load(open(os.path.join(out, "metrics.json")))["checkpoint"]
    for name in os.listdir(ckpts):
        if name.startswith(os.path.basename(latest) + ".data"):
            with open(os.path.join(ckpts, name), "r+b") as f:
                f.truncate(16)
    assert cli.main(["evaluate", "--run", out]) == 2
    _one_line(capsys, "is corrupt")
    assert cli.main(["train", "--out", out, "--resume", "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "falling back to the newest readable checkpoint" in printed and "resumed from" in printed
    assert json.load(open(os.path.join(out, "metrics.json")))["epochs"] == 2


def test_out_under_a_path_that_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert cli.main(["train", "--out", str(blocker / "run")] + TINY) == 2
    _one_line(capsys, "cannot create run directory")
