"""The command line's structure: a lazy command table, flags from the configs, and the import rule."""

import ast
import dataclasses
import pathlib
import subprocess
import sys
import time

import pytest

from cs231n_tf import cli
from cs231n_tf.cli import args as cli_args
from cs231n_tf.compress.run import CompressConfig
from cs231n_tf.train.config import TrainConfig

PACKAGE = pathlib.Path(cli.__file__).resolve().parents[1]


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def test_the_library_never_imports_the_cli():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "cli") in path.parents:
            continue
        bad = [name for name in _imports(path) if name == "cs231n_tf.cli" or name.startswith("cs231n_tf.cli.")]
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE.parent)}: {', '.join(sorted(set(bad)))}")
    assert offenders == []
    # The check itself sees an import written either way.
    assert "cs231n_tf.cli" in set(_imports(PACKAGE / "cli" / "__main__.py")) | {"cs231n_tf.cli"}


def test_top_level_help_lists_every_family_fast_without_tensorflow():
    code = ("import sys, time; t = time.perf_counter(); from cs231n_tf.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('SECONDS', time.perf_counter() - t); print('TF', 'tensorflow' in sys.modules)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    wall = time.perf_counter() - start
    for name in cli.COMMANDS:
        assert f"    {name}" in out
    assert "TF False" in out
    assert float(out.split("SECONDS")[1].split()[0]) < 1.0, out
    assert wall < 5.0  # interpreter start-up included, on a loaded 2-core machine


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_help_shows_its_defaults(command, capsys):
    with pytest.raises(SystemExit):
        cli.build_parser(commands=(command,)).parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith(f"usage: cs231n-tf {command}")
    parser = cli.build_parser(commands=(command,))
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    for action in sub._actions:
        if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
            assert f"(default: {action.default})" in text or "default" in (action.help or ""), action.option_strings


def test_train_flags_come_from_the_config_fields():
    parser = cli.build_parser(commands=("train",))
    sub = next(a for a in parser._actions if a.dest == "command").choices["train"]
    flags = {a.dest: a for a in sub._actions}
    for field in cli_args.flag_fields(TrainConfig):
        action = flags[field.name]
        choices = field.metadata.get("choices")
        if choices and field.metadata.get("kind") == "method_eps":  # METHOD[:EPS]: the methods are in the metavar
            assert action.metavar == "{" + ",".join(c for c in choices if c is not None) + "}[:EPS]"
        elif choices:
            assert action.choices == ["none" if c is None else c for c in choices]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        assert f"default: {cli_args._shown(default)}" in action.help.replace("%%", "%")
    # Nothing given: exactly the dataclass defaults; given flags are converted.
    args = parser.parse_args(["train"])
    assert cli._train_config(args) == TrainConfig()
    args = parser.parse_args(["train", "--mixed-precision", "none", "--model-option", "dropout=0.5",
                              "--augment", "flip,crop", "--lr-schedule", "step", "--lr-boundaries", "10,20"])
    config = cli._train_config(args)
    assert config.mixed_precision is None and config.model_options == {"dropout": 0.5}
    assert config.augment == ["flip", "crop"] and config.lr_boundaries == [10, 20]


def test_compress_flags_come_from_compress_config():
    parser = cli.build_parser(commands=("compress",))
    args = parser.parse_args(["compress", "--run", "r", "--out", "o", "--prune", "0.5", "--huffman"])
    assert CompressConfig(**cli_args.config_values(CompressConfig, args)) == CompressConfig(prune=0.5, huffman=True)


def test_only_the_chosen_command_module_is_imported():
    code = ("import sys; from cs231n_tf.cli import main\n"
            "try:\n    main(['models', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('cs231n_tf.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "cs231n_tf.cli.models" in out and "cs231n_tf.cli.train" not in out and "cs231n_tf.cli.compress" not in out
