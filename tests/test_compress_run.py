"""The compression pipeline as a library: CompressConfig and compress_run."""

import argparse
import dataclasses
import json
import math

import pytest

from cs231n_tf.cli import args as cli_args
from cs231n_tf.cli import build_parser
from cs231n_tf.cli import compress as command
from cs231n_tf.compress import CompressConfig, compress_run
from cs231n_tf.compress.run import QUANTIZE
from cs231n_tf.errors import ConfigError
from cs231n_tf.train.trainer import train

# The values `cs231n-tf compress` flags had before the pipeline became a library function.
OLD_FLAG_DEFAULTS = {"prune": None, "prune_rounds": 3, "clusters": None, "huffman": False, "quantize": "none",
                     "lowrank": None, "distill_from": None, "finetune_epochs": 6, "lr": 1e-3, "seed": 0}


def _command_parser():
    """The CLI's parser with the `compress` sub-command's arguments (cs231n_tf.cli.compress)."""
    return build_parser(commands=("compress",))


def test_defaults_are_the_old_flag_defaults():
    config = CompressConfig()
    assert config.to_json() == OLD_FLAG_DEFAULTS
    assert list(config.to_json()) == list(OLD_FLAG_DEFAULTS)
    assert config.validate() is config
    args = _command_parser().parse_args(["compress", "--run", "r", "--out", "o"])
    assert CompressConfig(**cli_args.config_values(CompressConfig, args)).to_json() == OLD_FLAG_DEFAULTS


def test_every_field_has_help_and_choices_where_fixed():
    for field in dataclasses.fields(CompressConfig):
        assert field.metadata["help"] and "default" not in field.metadata["help"], field.name
    assert dataclasses.fields(CompressConfig)[4].metadata["choices"] == QUANTIZE


def test_command_help_shows_defaults_from_the_config(capsys):
    with pytest.raises(SystemExit):
        _command_parser().parse_args(["compress", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "prune -> retrain rounds (default: 3)" in help_text
    assert "epochs of fine-tuning after each stage (default: 6)" in help_text
    assert "(Adam; clustering uses lr / 10) (default: 0.001)" in help_text


@pytest.mark.parametrize("changes, name", [
    ({"prune": 1.0}, "prune"),
    ({"prune": -0.2}, "prune"),
    ({"prune": "0.5"}, "prune"),
    ({"prune_rounds": 0}, "prune_rounds"),
    ({"prune_rounds": 1.5}, "prune_rounds"),
    ({"clusters": 1}, "clusters"),
    ({"clusters": 4.0}, "clusters"),
    ({"huffman": "yes"}, "huffman"),
    ({"quantize": "int4"}, "quantize"),
    ({"lowrank": 1.5}, "lowrank"),
    ({"lowrank": 0.0}, "lowrank"),
    ({"lowrank": float("nan")}, "lowrank"),
    ({"distill_from": 3}, "distill_from"),
    ({"finetune_epochs": -1}, "finetune_epochs"),
    ({"finetune_epochs": True}, "finetune_epochs"),
    ({"lr": 0.0}, "lr"),
    ({"lr": float("inf")}, "lr"),
    ({"seed": -1}, "seed"),
    ({"prune": 0.5, "finetune_epochs": 0}, "finetune_epochs must be >= 1"),
    ({"distill_from": "teacher", "finetune_epochs": 0}, "finetune_epochs must be >= 1"),
    ({"quantize": "qat", "finetune_epochs": 0}, "finetune_epochs must be >= 1"),
    ({"huffman": True, "quantize": "qat"}, "huffman with quantize='qat'"),
])
def test_validate_rejects_impossible_values_naming_the_parameter(changes, name):
    with pytest.raises(ConfigError) as info:
        CompressConfig(**changes).validate()
    message = str(info.value)
    assert name in message and "--" not in message and "\n" not in message


def test_validate_accepts_the_edges():
    CompressConfig(prune=0.0, finetune_epochs=0, clusters=2, lowrank=1.0, seed=0, quantize="int8").validate()
    CompressConfig(prune=0.99, prune_rounds=1, huffman=True, distill_from="teacher", lr=1).validate()


def test_bad_config_and_foreign_out_are_refused_before_loading(tmp_path):
    with pytest.raises(ConfigError, match="clusters must be an int >= 2"):
        compress_run(str(tmp_path / "no-such-run"), CompressConfig(clusters=1), str(tmp_path / "out"))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="out .* is not a previous compress output"):
        compress_run(str(tmp_path / "no-such-run"), CompressConfig(), str(foreign))
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_compress_run_end_to_end(tmp_path):
    run_dir = str(tmp_path / "run")
    train(run_dir=run_dir, model="two_layer_net", model_options={"hidden_dim": 16}, epochs=1, batch_size=64,
          lr=0.01, max_steps=10, log_every=5)
    out = tmp_path / "small"
    logs = []
    config = CompressConfig(prune=0.5, prune_rounds=1, finetune_epochs=1, quantize="dynamic")
    report = compress_run(run_dir, config, str(out), log=logs.append)
    on_disk = json.loads((out / "compression.json").read_text())
    assert report == on_disk
    assert sorted(p.name for p in out.iterdir()) == ["compression.json", "model.tflite"]
    assert report["options"] == config.to_json()
    assert [s["stage"] for s in report["stages"]] == ["prune"]
    assert logs and all(isinstance(line, str) for line in logs)
    for key in ("accuracy_tflite", "accuracy_after", "accuracy_before_tflite"):
        assert isinstance(report[key], float) and 0.0 <= report[key] <= 1.0 and not math.isnan(report[key])
    assert report["size_bytes_after"] == (out / "model.tflite").stat().st_size == report["files"]["model.tflite"]


def test_command_builds_the_config_and_prints_the_summary(monkeypatch, tmp_path, capsys):
    from cs231n_tf.compress import run as run_module

    seen = {}

    def fake(run_dir, config, out, log=print):
        seen.update(run_dir=run_dir, config=config, out=out)
        log("a stage")
        return {"accuracy_before": 0.9, "accuracy_after": 0.85, "size_bytes_before": 4000, "size_bytes_after": 1000,
                "compression_ratio": 4.0, "size_basis": "basis"}

    monkeypatch.setattr(run_module, "compress_run", fake)
    out = tmp_path / "o"
    args = _command_parser().parse_args(["compress", "--run", "r", "--out", str(out), "--prune", "0.25",
                                         "--distill-from", "t", "--finetune-epochs", "2", "--quantize", "int8"])
    assert command.run(args) == 0
    assert seen["config"] == CompressConfig(prune=0.25, distill_from="t", finetune_epochs=2, quantize="int8")
    assert seen["run_dir"] == "r" and seen["out"] == str(out)
    assert capsys.readouterr().out.splitlines() == [
        "a stage", "accuracy 0.9000 -> 0.8500, size 4,000 -> 1,000 bytes (4.0x, basis)",
        f"wrote {out / 'model.tflite'} and {out / 'compression.json'}"]


def test_command_reports_a_bad_value_as_a_config_error(tmp_path):
    args = _command_parser().parse_args(["compress", "--run", "r", "--out", str(tmp_path / "o"), "--clusters", "1"])
    with pytest.raises(ConfigError, match="^clusters must be an int >= 2"):
        command.run(args)
    assert not (tmp_path / "o").exists()
