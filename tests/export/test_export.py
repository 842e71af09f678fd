"""End to end: train -> evaluate -> export in every format -> reload -> parity with Keras."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cs231n_tf import export
from cs231n_tf.errors import ConfigError, ExportError
from cs231n_tf.train.trainer import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("export") / "run")
    train(run_dir=out, model="small_convnet", model_options={"width": 16}, epochs=6, batch_size=32, lr=0.005)
    return out


# Bounds on |logits - Keras logits| per format, and on the accuracy lost.
TOLERANCE = {("saved_model", "none"): (1e-4, 0.0), ("tflite", "none"): (1e-4, 0.0),
             ("tflite", "float16"): (0.05, 0.01), ("tflite", "dynamic"): (0.5, 0.03),
             ("tflite", "int8"): (1.5, 0.03)}


@pytest.fixture(scope="module")
def exports(run_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("exports"))
    return out, {key: export.export_run(run_dir, *key, out=out) for key in TOLERANCE}


@pytest.mark.parametrize("fmt,quantize", list(TOLERANCE))
def test_export_verifies_and_reports(exports, fmt, quantize):
    out, reports = exports
    report = reports[(fmt, quantize)]
    path = report["path"]
    assert os.path.exists(path)
    on_disk = json.load(open(path.rstrip("/") + ".report.json"))
    assert on_disk["size_bytes"] == report["size_bytes"] > 0
    max_diff, max_drop = TOLERANCE[(fmt, quantize)]
    assert report["max_abs_diff"] <= max_diff
    assert report["keras_accuracy"] > 0.9
    assert report["accuracy"] >= report["keras_accuracy"] - max_drop
    assert report["examples"] == 359
    assert not [f for f in os.listdir(out) if f.startswith(".tmp")]


def test_quantized_files_are_smaller(exports):
    sizes = {q: exports[1][("tflite", q)]["size_bytes"] for q in ("none", "float16", "int8")}
    assert sizes["float16"] < 0.6 * sizes["none"]
    assert sizes["int8"] < 0.4 * sizes["none"]


def test_int8_model_is_fully_integer(exports):
    report = exports[1][("tflite", "int8")]
    runner = export.TFLiteRunner(model_path=report["path"])
    assert runner.inputs["images"]["dtype"] == np.int8
    assert all(d["dtype"] == np.int8 for d in runner.outputs.values())


def test_saved_model_reloads_without_the_package_and_is_batch_polymorphic(tmp_path, exports):
    report = exports[1][("saved_model", "none")]
    code = f"""
import json, numpy as np, tensorflow as tf, sys
assert 'cs231n_tf' not in sys.modules
fn = tf.saved_model.load({report['path']!r}).signatures['serving_default']
rng = np.random.default_rng(0)
out = {{}}
for n in (1, 5):
    x = rng.uniform(0, 1, (n, 8, 8, 1)).astype(np.float32)
    r = fn(images=tf.constant(x))
    out[n] = [list(r['probabilities'].shape), float(r['probabilities'].numpy().sum(-1).mean())]
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["1"][0] == [1, 10] and out["5"][0] == [5, 10]
    assert out["5"][1] == pytest.approx(1.0, abs=1e-5)


def test_tflite_batch_polymorphic(exports):
    report = exports[1][("tflite", "none")]
    runner = export.TFLiteRunner(model_path=report["path"])
    for n in (1, 3):
        assert runner(np.zeros((n, 8, 8, 1), np.float32))["probabilities"].shape == (n, 10)


def test_failed_conversion_leaves_nothing_behind(tmp_path, run_dir, monkeypatch):
    def broken(*_, **__):
        raise ExportError("TFLite conversion (none) failed: simulated")

    monkeypatch.setattr("cs231n_tf.export.exporter.convert_tflite", broken)
    with pytest.raises(ExportError, match="simulated"):
        export.export_run(run_dir, "tflite", "none", out=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_bad_export_requests(tmp_path, run_dir):
    with pytest.raises(ConfigError, match="format"):
        export.export_run(run_dir, "onnx", out=str(tmp_path))
    with pytest.raises(ConfigError, match="TFLite only"):
        export.export_run(run_dir, "saved_model", "int8", out=str(tmp_path))
    with pytest.raises(ConfigError, match="quantize"):
        export.export_run(run_dir, "tflite", "int4", out=str(tmp_path))
