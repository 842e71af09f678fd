"""Trainer options: schedules, clipping, penalties, initialisers, course optimizers, config and CLI."""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import cli
from cs231n_tf.errors import ConfigError
from cs231n_tf.optim.keras import CourseSGDMomentum
from cs231n_tf.train import regularizers
from cs231n_tf.train.config import TrainConfig
from cs231n_tf.train.trainer import Trainer, train

TINY = dict(model="two_layer_net", model_options={"hidden_dim": 16}, batch_size=32, optimizer="sgd", lr=0.1,
            log_every=5)
STEPS_PER_EPOCH = 40  # 1295 digits training images // 32
FAST = dict(TINY, batch_size=128)  # 10 steps per epoch, for whole runs


def quiet(*_):
    pass


def weights(model):
    return [v.numpy() for v in model.trainable_variables]


def logged_learning_rates(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(f"{run_dir}/logs/train", size_guidance={"tensors": 0})
    acc.Reload()
    return {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("learning_rate")}


def test_logged_learning_rate_follows_the_step_schedule(tmp_path):
    run = str(tmp_path / "run")
    train(run_dir=run, epochs=3, lr_schedule="step", lr_decay_epochs=1, lr_decay_factor=0.5, **dict(FAST, log_every=2))
    logged = logged_learning_rates(run)
    assert sorted(logged) == list(range(2, 31, 2))
    for step, lr in logged.items():
        # Logged at `step` (after `step` updates): the rate of the last update, number step - 1.
        assert lr == pytest.approx(0.1 * 0.5 ** ((step - 1) // 10), rel=1e-6), step


def test_schedules_match_their_closed_forms(tmp_path):
    total = 2 * STEPS_PER_EPOCH
    cosine = Trainer(TrainConfig(epochs=2, lr_schedule="cosine", warmup_epochs=0.25, lr_final=0.01, **TINY),
                     str(tmp_path / "c"), log=quiet)
    warm = 10
    for s in (0, 5, 9, 10, 30, 79):
        expected = 0.1 * s / warm if s < warm else \
            0.01 + (0.1 - 0.01) * 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
        assert cosine.learning_rate(s) == pytest.approx(expected, rel=1e-5, abs=1e-7), s
    expo = Trainer(TrainConfig(epochs=2, lr_schedule="exponential", lr_final=0.001, **TINY), str(tmp_path / "e"), log=quiet)
    for s in (0, 17, 79):
        assert expo.learning_rate(s) == pytest.approx(0.1 * (0.001 / 0.1) ** (s / total), rel=1e-5)
    steps = Trainer(TrainConfig(epochs=2, lr_schedule="step", lr_boundaries=[7, 50], **TINY), str(tmp_path / "s"), log=quiet)
    assert [steps.learning_rate(s) for s in (6, 7, 49, 50)] == pytest.approx([0.1, 0.01, 0.01, 0.001])
    default = Trainer(TrainConfig(epochs=2, lr_schedule="step", **TINY), str(tmp_path / "d"), log=quiet)
    assert [default.learning_rate(s) for s in (39, 40, 59, 60)] == pytest.approx([0.1, 0.01, 0.01, 0.001])


def test_resume_keeps_schedule_position_and_augmentation(tmp_path):
    cfg = dict(epochs=2, lr_schedule="step", lr_decay_epochs=1, augment=["crop:1", "color:0.2"], **FAST)
    whole = train(run_dir=str(tmp_path / "whole"), **cfg)
    train(run_dir=str(tmp_path / "part"), max_steps=13, **cfg)
    resumed = Trainer(TrainConfig(**cfg), str(tmp_path / "part"), resume=True, log=quiet)
    assert int(resumed.optimizer.iterations.numpy()) == 13
    assert resumed.learning_rate() == pytest.approx(0.01)  # update 12 is in epoch 2
    result = resumed.run()
    for a, b in zip(weights(whole.model), weights(result.model)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert result.metrics["steps"] == whole.metrics["steps"] == 20


def _first_batch_gradients(trainer):
    x, y = next(iter(trainer.data.train_epoch(0, trainer.config.seed, trainer.config.batch_size)))
    with tf.GradientTape() as tape:
        logits = trainer.model(x, training=True)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
    return [g.numpy() for g in tape.gradient(loss, trainer.model.trainable_variables)]


@pytest.mark.parametrize("strategy,clip", [("default", {"clip_norm": 0.05}), ("mirrored", {"clip_norm": 0.05}),
                                          ("default", {"clip_value": 2e-3})])
def test_a_clipped_step_equals_the_hand_computation(tmp_path, strategy, clip):
    trainer = Trainer(TrainConfig(epochs=1, max_steps=1, strategy=strategy, **clip, **TINY), str(tmp_path / "run"), log=quiet)
    before = weights(trainer.model)
    grads = _first_batch_gradients(trainer)
    if "clip_norm" in clip:
        norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
        assert norm > 2 * clip["clip_norm"]  # the clip is active
        clipped = [g * clip["clip_norm"] / norm for g in grads]
    else:
        assert max(np.abs(g).max() for g in grads) > 2 * clip["clip_value"]
        clipped = [np.clip(g, -clip["clip_value"], clip["clip_value"]) for g in grads]
    trainer.run()
    assert trainer.replicas == (2 if strategy == "mirrored" else 1)
    for w0, g, w1 in zip(before, clipped, weights(trainer.model)):
        np.testing.assert_allclose(w1, w0 - 0.1 * g, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("penalty", ["l2", "l1", "elastic"])
def test_a_penalised_step_equals_the_hand_computation(tmp_path, penalty):
    wd, ratio = 0.05, 0.3
    trainer = Trainer(TrainConfig(epochs=1, max_steps=1, weight_decay=wd, penalty=penalty, l1_ratio=ratio, **TINY),
                      str(tmp_path / "run"), log=quiet)
    before = weights(trainer.model)
    grads = _first_batch_gradients(trainer)
    trainer.run()
    names = [v.name for v in trainer.model.trainable_variables]
    for name, w0, g, w1 in zip(names, before, grads, weights(trainer.model)):
        d_l2, d_l1 = wd * w0, wd * np.sign(w0)
        d_penalty = {"l2": d_l2, "l1": d_l1, "elastic": ratio * d_l1 + (1 - ratio) * d_l2}[penalty]
        expected = w0 - 0.1 * (g + (d_penalty if "kernel" in name else 0.0))  # biases are not penalised
        np.testing.assert_allclose(w1, expected, rtol=1e-5, atol=1e-7, err_msg=name)


def test_penalty_functions_match_numpy():
    model = tf.keras.Sequential([tf.keras.layers.Conv2D(3, 3, input_shape=(5, 5, 2)), tf.keras.layers.BatchNormalization(),
                                 tf.keras.layers.Flatten(), tf.keras.layers.Dense(4)])
    decayed = regularizers.decayed_variables(model)
    assert [v.name.split("/")[-1] for v in decayed] == ["kernel:0", "kernel:0"]  # no biases, no gamma/beta
    w = [v.numpy().astype(np.float64) for v in decayed]
    sq, ab = sum((x ** 2).sum() for x in w), sum(np.abs(x).sum() for x in w)
    assert float(regularizers.penalty("l2", decayed, 0.3)) == pytest.approx(0.5 * 0.3 * sq, rel=1e-6)
    assert float(regularizers.penalty("l1", decayed, 0.3)) == pytest.approx(0.3 * ab, rel=1e-6)
    assert float(regularizers.penalty("elastic", decayed, 0.3, l1_ratio=0.25)) == pytest.approx(
        0.3 * (0.25 * ab + 0.75 * 0.5 * sq), rel=1e-6)
    with pytest.raises(ConfigError, match="unknown penalty 'l3'"):
        regularizers.penalty("l3", decayed, 0.1)
    with pytest.raises(ConfigError, match="l1_ratio"):
        regularizers.penalty("elastic", decayed, 0.1, l1_ratio=1.5)


def test_init_sets_the_builders_kernel_initializer(tmp_path):
    cfg = dict(TINY, model="fc_net", model_options={"hidden_dims": [64, 64]}, epochs=1)
    trainer = Trainer(TrainConfig(init="small_random", **cfg), str(tmp_path / "a"), log=quiet)
    kernels = {v.name.split("/")[0]: v.numpy() for v in regularizers.decayed_variables(trainer.model)}
    for name in ("fc1", "fc2"):
        assert kernels[name].std() == pytest.approx(0.01, rel=0.1)
    assert not np.allclose(kernels["fc2"][:10, :10], kernels["fc1"][:10, :10])  # each layer draws its own
    again = Trainer(TrainConfig(init="small_random", **cfg), str(tmp_path / "b"), log=quiet)
    np.testing.assert_array_equal(kernels["fc2"], again.model.get_layer("fc2").kernel.numpy())  # seeded
    he = Trainer(TrainConfig(init="he", **cfg), str(tmp_path / "c"), log=quiet).model.get_layer("fc2").kernel.numpy()
    assert he.std() == pytest.approx(math.sqrt(2 / 64), rel=0.1)
    with pytest.raises(ConfigError, match="model 'lenet5' has no kernel_initializer option"):
        Trainer(TrainConfig(init="he", **dict(cfg, model="lenet5", model_options={})), str(tmp_path / "d"), log=quiet)


def test_course_optimizer_takes_the_same_step_as_keras(tmp_path):
    cfg = dict(TINY, epochs=1, max_steps=3, lr_schedule="cosine")
    course = Trainer(TrainConfig(**dict(cfg, optimizer="course_momentum")), str(tmp_path / "a"), log=quiet)
    assert isinstance(course.optimizer, CourseSGDMomentum)
    keras = Trainer(TrainConfig(**dict(cfg, optimizer="momentum")), str(tmp_path / "b"), log=quiet)
    a, b = course.run(), keras.run()
    for x, y in zip(weights(a.model), weights(b.model)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)


def test_old_config_json_loads_with_defaults_and_bad_values_are_rejected():
    new_fields = {"lr_schedule", "lr_decay_factor", "lr_decay_epochs", "lr_boundaries", "lr_final", "warmup_epochs",
                  "clip_norm", "clip_value", "penalty", "l1_ratio", "init", "augment", "preprocessing"}
    old = {k: v for k, v in TrainConfig().to_json().items() if k not in new_fields}
    loaded = TrainConfig.from_json(old).validate()
    assert loaded == TrainConfig() and loaded.penalty == "l2" and loaded.augment == []
    bad = [({"lr_schedule": "linear"}, "unknown lr_schedule 'linear'"),
           ({"lr_boundaries": [5, 3], "lr_schedule": "step"}, "strictly increasing"),
           ({"lr_decay_epochs": 2}, "need lr_schedule='step'"),
           ({"lr_final": 0.0, "lr_schedule": "exponential"}, "must be > 0"),
           ({"clip_norm": -1.0}, "clip_norm must be a positive number"),
           ({"clip_norm": 1.0, "clip_value": 1.0}, "at most one of clip_norm and clip_value"),
           ({"penalty": "l0"}, "unknown penalty"), ({"l1_ratio": 2}, "l1_ratio"),
           ({"init": "magic"}, "unknown initializer 'magic'"), ({"augment": ["rotate"]}, "unknown augmentation 'rotate'"),
           ({"preprocessing": "zca"}, "preprocessing must be one of"), ({"optimizer": "course_lbfgs"}, "unknown optimizer")]
    for fields, message in bad:
        with pytest.raises(ConfigError, match=message):
            dataclasses.replace(TrainConfig(), **fields).validate()


def test_cli_flags_map_to_the_config_and_resume_checks_them(tmp_path, capsys):
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--lr-schedule", "step", "--lr-boundaries", "32000,48000", "--lr-decay-factor",
                              "0.2", "--warmup-epochs", "0.5", "--clip-norm", "5", "--penalty", "elastic", "--l1-ratio",
                              "0.1", "--weight-decay", "1e-4", "--init", "xavier", "--augment", "flip,crop:4",
                              "--preprocessing", "mean_image", "--optimizer", "course_adam"])
    cfg = cli._train_config(args)
    assert (cfg.lr_schedule, cfg.lr_boundaries, cfg.lr_decay_factor, cfg.warmup_epochs, cfg.clip_norm) == \
        ("step", [32000, 48000], 0.2, 0.5, 5.0)
    assert (cfg.penalty, cfg.l1_ratio, cfg.weight_decay, cfg.init, cfg.augment, cfg.preprocessing, cfg.optimizer) == \
        ("elastic", 0.1, 1e-4, "xavier", ["flip", "crop:4"], "mean_image", "course_adam")
    assert TrainConfig.from_json(cfg.to_json()) == cfg  # round trip through config.json
    out = str(tmp_path / "run")
    base = ["train", "--out", out, "--model", "two_layer_net", "--model-option", "hidden_dim=8", "--epochs", "1",
            "--max-steps", "3", "--augment", "crop:1", "--lr-schedule", "cosine"]
    assert cli.main(base) == 0
    capsys.readouterr()
    assert cli.main(base + ["--resume", "--augment", "flip"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "augment (run has ['crop:1'])" in err
    assert cli.main(["train", "--clip-value", "0"]) == 2
    assert "--clip-value: expected a positive finite number" in capsys.readouterr().err
