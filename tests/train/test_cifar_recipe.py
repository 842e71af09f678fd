"""The CIFAR-10 ResNet recipe (experiments/cifar_resnet.py): its config, and a smoke run on generated data."""

import importlib.util
import math
import os

import numpy as np
import pytest

from cs231n_tf.train.trainer import make_learning_rate

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "cifar_resnet.py")


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("cifar_resnet", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_config_is_the_papers(recipe):
    cfg = recipe.recipe_config("resnet56", num_train=45_000)
    assert (cfg.model, cfg.optimizer, cfg.batch_size, cfg.weight_decay, cfg.penalty) == \
        ("resnet56", "momentum", 128, 1e-4, "l2")
    assert cfg.augment == ["flip", "crop:4"] and cfg.validation_fraction == 0.1
    steps_per_epoch = 45_000 // 128
    assert cfg.max_steps == 64_000 and cfg.epochs == math.ceil(64_000 / steps_per_epoch)
    assert cfg.epochs * steps_per_epoch >= 64_000
    lr = make_learning_rate(cfg, steps_per_epoch)
    at = {s: float(lr(s)) for s in (0, 31_999, 32_000, 47_999, 48_000, 63_999)}
    assert at == pytest.approx({0: 0.1, 31_999: 0.1, 32_000: 0.01, 47_999: 0.01, 48_000: 0.001, 63_999: 0.001})
    warm = recipe.recipe_config("resnet110", num_train=45_000, warmup_steps=400)
    warm_lr = make_learning_rate(warm, steps_per_epoch)
    assert float(warm_lr(200)) == pytest.approx(0.05, rel=1e-2) and float(warm_lr(1000)) == pytest.approx(0.1)


def test_smoke_run_on_generated_cifar_shaped_data(recipe, tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "mock_cifar.npz"
    np.savez(path, x_train=rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8), y_train=np.arange(96) % 10,
             x_test=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), y_test=np.arange(20) % 10)
    out = tmp_path / "run"
    code = recipe.main(["--dataset", f"npz:{path}", "--batch-size", "16", "--max-steps", "3", "--out", str(out)])
    assert code == 0
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())["train"]
    assert metrics["steps"] == 3 and math.isfinite(metrics["final_train_loss"])
    assert metrics["final_train_loss"] > 0
    assert config["augment"] == ["flip", "crop:4"] and config["lr_boundaries"] == [32_000, 48_000]
    assert "| resnet20 | 3 | 0.1 |" in capsys.readouterr().out


def test_missing_cifar_names_the_remedy(recipe, tmp_path, capsys):
    assert recipe.main(["--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "data set 'cifar10' not found in" in err and "download" in err
