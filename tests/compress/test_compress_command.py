import json
import os

import numpy as np
import pytest

from cs231n_tf import cli
from cs231n_tf.compress import deep_compression, pruning
from cs231n_tf.export.exporter import TFLiteRunner
from cs231n_tf.train.evaluate import evaluate_run, load_run
from cs231n_tf.train.trainer import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("compress") / "run")
    train(run_dir=path, model="two_layer_net", model_options={"hidden_dim": 32}, epochs=2, batch_size=32, lr=0.01,
          log_every=10)
    return path


def _compress(*flags):
    return cli.main(["compress", *flags])


def _tflite_accuracy(path, run):
    data = run.load_data()
    images = data.to_unit(data.arrays["x_test"]).numpy()
    runner = TFLiteRunner(model_path=path)
    logits = np.concatenate([runner(images[i:i + 50])["logits"] for i in range(0, len(images), 50)])
    return float((logits.argmax(-1) == data.arrays["y_test"]).mean()), runner


def test_prune_cluster_huffman(run_dir, tmp_path):
    out = tmp_path / "dc"
    assert _compress("--run", run_dir, "--out", str(out), "--prune", "0.5", "--clusters", "8", "--huffman",
                     "--finetune-epochs", "1", "--prune-rounds", "1") == 0
    report = json.loads((out / "compression.json").read_text())
    payload = (out / "model.dcz").read_bytes()
    run = load_run(run_dir)
    # Sizes are the real float32 weight bytes and the real payload file; the ratio is their quotient.
    assert report["size_bytes_before"] == 4 * run.model.count_params() == report["float32_weight_bytes"]
    assert report["size_bytes_after"] == len(payload) == os.path.getsize(out / "model.dcz")
    assert report["compression_ratio"] == pytest.approx(report["size_bytes_before"] / report["size_bytes_after"])
    assert report["compression_ratio"] > 3
    assert sum(r["bytes"] for r in report["layers"]) + len(deep_compression.MAGIC) + 1 == len(payload)
    assert report["accuracy_before"] == pytest.approx(evaluate_run(run_dir)["accuracy"])
    # accuracy_after is that of the weights decoded from the payload file.
    decoded = deep_compression.load_weights(run.model, payload)
    data = run.load_data()
    assert report["accuracy_after"] == pruning.accuracy(decoded, data) == report["accuracy_decoded"]
    for row in pruning.sparsity_report(decoded)["layers"]:
        assert row["sparsity"] >= 0.5 - 1 / row["weights"]
        assert len(np.unique(decoded.get_layer(row["name"]).kernel.numpy())) <= 8
    # The .tflite was exported from the decoded weights and measured with LiteRT.
    accuracy, runner = _tflite_accuracy(str(out / "model.tflite"), run)
    assert accuracy == report["accuracy_tflite"]
    images = data.to_unit(data.arrays["x_test"][:20]).numpy()
    keras_logits = decoded(data.preprocess(data.arrays["x_test"][:20])).numpy()
    np.testing.assert_allclose(runner(images)["logits"], keras_logits, atol=1e-4)
    assert report["accuracy_after"] > report["accuracy_before"] - 0.1


def test_int8_and_replacing_a_previous_output(run_dir, tmp_path):
    out = tmp_path / "int8"
    assert _compress("--run", run_dir, "--out", str(out), "--quantize", "int8") == 0
    (out / "stray.txt").write_text("from an earlier run")
    assert _compress("--run", run_dir, "--out", str(out), "--quantize", "int8") == 0
    assert sorted(os.listdir(out)) == ["compression.json", "model.tflite"]
    report = json.loads((out / "compression.json").read_text())
    assert report["size_bytes_after"] == os.path.getsize(out / "model.tflite")
    assert report["size_bytes_before"] == report["float32_tflite_bytes"]
    assert report["compression_ratio"] == pytest.approx(report["size_bytes_before"] / report["size_bytes_after"])
    assert report["compression_ratio"] > 1.5
    assert 0 < report["tflite_gzip_bytes"] < report["size_bytes_after"] + 100
    accuracy, runner = _tflite_accuracy(str(out / "model.tflite"), load_run(run_dir))
    assert runner.inputs["images"]["dtype"] == np.int8
    assert accuracy == report["accuracy_after"]
    assert abs(report["accuracy_after"] - report["accuracy_before"]) < 0.05


def test_lowrank_distill_and_qat(run_dir, tmp_path):
    out = tmp_path / "qat"
    assert _compress("--run", run_dir, "--out", str(out), "--lowrank", "0.9", "--distill-from", run_dir,
                     "--quantize", "qat", "--finetune-epochs", "1") == 0
    report = json.loads((out / "compression.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["distill", "lowrank", "qat"]
    assert report["stages"][1]["report"]["params_after"] == report["params_after"] < report["params_before"]
    accuracy, runner = _tflite_accuracy(str(out / "model.tflite"), load_run(run_dir))
    assert runner.inputs["images"]["dtype"] == np.int8
    assert accuracy == report["accuracy_after"] > 0.7


@pytest.mark.parametrize("flags, message", [
    (["--prune", "1.0"], "prune must be in [0, 1)"),
    (["--prune", "-0.2"], "prune must be in [0, 1)"),
    (["--clusters", "1"], "clusters must be an int >= 2"),
    (["--lowrank", "1.5"], "lowrank must be a fraction"),
    (["--huffman", "--quantize", "qat"], "huffman with quantize='qat'"),
    (["--prune", "0.5", "--finetune-epochs", "0"], "finetune_epochs must be >= 1"),
])
def test_impossible_requests_exit_2_with_one_line(run_dir, tmp_path, capsys, flags, message):
    out = tmp_path / "never"
    assert _compress("--run", run_dir, "--out", str(out), *flags) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cs231n-tf compress: ") and message in err and "\n" not in err
    assert not out.exists()


def test_missing_run_and_foreign_output_directory(run_dir, tmp_path, capsys):
    assert _compress("--run", str(tmp_path / "nope"), "--out", str(tmp_path / "o")) == 2
    assert "does not exist" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert _compress("--run", run_dir, "--out", str(foreign)) == 2
    assert "not a previous compress output" in capsys.readouterr().err
    assert os.listdir(foreign) == ["notes.txt"]
    assert _compress("--run", run_dir, "--out", run_dir) == 2


def test_converter_rejection_is_a_one_line_error(run_dir, tmp_path, capsys, monkeypatch):
    from cs231n_tf.errors import ExportError
    from cs231n_tf.export import exporter

    def reject(*args, **kwargs):
        raise ExportError("TFLite conversion (int8) failed: op not supported")

    monkeypatch.setattr(exporter, "convert_tflite", reject)
    assert _compress("--run", run_dir, "--out", str(tmp_path / "x"), "--quantize", "int8") == 2
    assert capsys.readouterr().err.strip() == "cs231n-tf compress: TFLite conversion (int8) failed: op not supported"
    assert not (tmp_path / "x").exists()
