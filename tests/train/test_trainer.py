import json
import os

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import data
from cs231n_tf.errors import ConfigError, NonFiniteLossError, RunDirError
from cs231n_tf.train.config import TrainConfig
from cs231n_tf.train.evaluate import evaluate_run, load_run
from cs231n_tf.train.trainer import Trainer, train

TINY = dict(model="two_layer_net", model_options={"hidden_dim": 32}, epochs=2, batch_size=32, lr=0.01, log_every=10)


def quiet(*_):
    pass


def weights(model):
    return [v.numpy() for v in model.trainable_variables]


def test_train_writes_metrics_checkpoints_and_tensorboard(tmp_path):
    result = train(run_dir=str(tmp_path / "run"), **TINY)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for key in ("test_accuracy", "val_accuracy", "final_train_loss", "steps", "wall_seconds", "examples_per_second"):
        assert key in m
    assert m["steps"] == 2 * (data.load("digits").info.num_train // 32)
    assert m["test_accuracy"] > 0.85
    assert len(m["history"]) == 2 and m["history"][1]["train_loss"] < m["history"][0]["train_loss"]
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith(f"ckpt-{m['steps']}")
    events = [f for d, _, fs in os.walk(tmp_path / "run" / "logs") for f in fs if f.startswith("events")]
    assert len(events) == 2  # train and validation writers
    # Reopening the run reproduces the reported accuracy exactly.
    assert evaluate_run(str(tmp_path / "run"))["accuracy"] == pytest.approx(m["test_accuracy"])
    assert result.metrics["test_accuracy"] == m["test_accuracy"]


def test_tensorboard_scalars_are_logged(tmp_path):
    train(run_dir=str(tmp_path / "run"), **TINY)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "run" / "logs" / "train"))
    acc.Reload()
    tags = set(acc.Tags()["tensors"]) | set(acc.Tags()["scalars"])
    assert {"loss", "accuracy", "learning_rate", "examples_per_second"} <= tags


def _one_device_and_mirrored(tmp_path, steps):
    cfg = TrainConfig(model="two_layer_net", model_options={"hidden_dim": 16}, optimizer="sgd", lr=0.5,
                      batch_size=32, epochs=1, max_steps=steps, weight_decay=1e-3)
    results = {}
    for name in ("default", "mirrored"):
        trainer = Trainer(cfg, str(tmp_path / name), strategy=None, log=quiet) if name == "default" else \
            Trainer(TrainConfig(**{**cfg.to_json(), "strategy": "mirrored"}), str(tmp_path / name), log=quiet)
        before = weights(trainer.model)
        result = trainer.run()
        results[name] = (trainer.replicas, before, weights(trainer.model), result.metrics["final_train_loss"])
    return results


def test_mirrored_two_replicas_match_one_device(tmp_path):
    r = _one_device_and_mirrored(tmp_path, steps=1)
    assert r["default"][0] == 1 and r["mirrored"][0] == 2
    for b0, b1 in zip(r["default"][1], r["mirrored"][1]):
        np.testing.assert_array_equal(b0, b1)  # same initialisation
    # One SGD step: the weight change is -lr * gradient, so equal changes mean equal gradients.
    for b, a_one, a_two in zip(r["default"][1], r["default"][2], r["mirrored"][2]):
        np.testing.assert_allclose(a_one - b, a_two - b, rtol=1e-4, atol=1e-6)
        assert np.abs(a_one - b).max() > 0
    assert r["default"][3] == pytest.approx(r["mirrored"][3], rel=1e-5)


def test_steps_per_execution_does_not_change_the_result(tmp_path):
    a = train(run_dir=str(tmp_path / "a"), steps_per_execution=1, **TINY)
    b = train(run_dir=str(tmp_path / "b"), steps_per_execution=7, **TINY)
    for x, y in zip(weights(a.model), weights(b.model)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    assert a.metrics["steps"] == b.metrics["steps"]


def test_nan_guard_stops_at_first_bad_step_and_keeps_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(model="two_layer_net", model_options={"hidden_dim": 32}, optimizer="sgd", lr=1e4,
                      epochs=3, batch_size=32, checkpoint_every=1, keep_checkpoints=2)
    with pytest.raises(NonFiniteLossError) as info:
        Trainer(cfg, str(run), log=quiet).run()
    bad = info.value.step
    assert bad >= 2 and f"step {bad}" in str(info.value)
    last = info.value.last_good_checkpoint
    assert last.endswith(f"ckpt-{bad - 1}")
    reader = tf.train.load_checkpoint(last)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.isfinite(value).all(), name
    assert not (run / "metrics.json").exists()


@pytest.mark.parametrize("option", [{"xla": True}, {"mixed_precision": "mixed_float16"}, {"mixed_precision": "mixed_bfloat16"}])
def test_xla_and_mixed_precision_train_like_float32(tmp_path, option):
    base = train(run_dir=str(tmp_path / "f32"), **TINY)
    other = train(run_dir=str(tmp_path / "other"), **TINY, **option)
    tol = 0.02 if "mixed_precision" in option else 1e-4
    assert other.metrics["final_train_loss"] == pytest.approx(base.metrics["final_train_loss"], rel=tol * 5, abs=tol)
    assert other.metrics["test_accuracy"] > 0.85
    assert all(v.dtype == tf.float32 for v in other.model.trainable_variables)  # float32 master weights
    if option.get("mixed_precision"):
        assert other.model.get_layer("fc1").compute_dtype == option["mixed_precision"].split("_")[1]


def test_refuses_to_overwrite_a_run_and_resume_needs_one(tmp_path):
    train(run_dir=str(tmp_path / "run"), **{**TINY, "epochs": 1})
    with pytest.raises(RunDirError, match="already holds a run"):
        train(run_dir=str(tmp_path / "run"), **TINY)
    with pytest.raises(RunDirError, match="no checkpoint"):
        train(run_dir=str(tmp_path / "empty"), resume=True, **TINY)


def test_resume_in_process_extends_training(tmp_path):
    run = str(tmp_path / "run")
    train(run_dir=run, **{**TINY, "epochs": 1})
    result = train(run_dir=run, resume=True, **TINY)
    assert result.metrics["epochs"] == 2 and len(result.metrics["history"]) == 1


def test_bad_config_values():
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="lbfgs").validate()
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0).validate()
    with pytest.raises(ConfigError, match="mixed_precision"):
        TrainConfig(mixed_precision="float8").validate()


def test_batch_must_split_over_replicas(tmp_path):
    with pytest.raises(ConfigError, match="not divisible by the 2 replicas"):
        Trainer(TrainConfig(strategy="mirrored", batch_size=33, **{k: v for k, v in TINY.items() if k != "batch_size"}),
                str(tmp_path / "run"), log=quiet)


def test_load_run_rejects_corrupt_directories(tmp_path):
    run = tmp_path / "run"
    train(run_dir=str(run), **{**TINY, "epochs": 1})
    load_run(str(run))
    (run / "config.json").write_text("{not json")
    with pytest.raises(RunDirError, match="corrupt"):
        load_run(str(run))
