"""Adversarial training on the engine: the step equals a hand-built one, strategies and resume are exact,
and FGSM training raises robust accuracy on digits."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import adversarial, cli
from cs231n_tf.errors import ConfigError
from cs231n_tf.train import config as config_lib
from cs231n_tf.train.config import TrainConfig
from cs231n_tf.train.trainer import Trainer

TINY = dict(model="two_layer_net", model_options={"hidden_dim": 16}, optimizer="sgd", lr=0.5, batch_size=32,
            epochs=1)


def quiet(*_):
    pass


def weights(model):
    return [v.numpy() for v in model.trainable_variables]


def _one_step(tmp_path, name, **settings):
    trainer = Trainer(TrainConfig(**{**TINY, "max_steps": 1, **settings}), str(tmp_path / name), log=quiet)
    before = weights(trainer.model)
    trainer.run()
    return trainer, before, weights(trainer.model)


@pytest.mark.parametrize("ratio", [0.3, 1.0])
def test_fgsm_step_equals_hand_built(tmp_path, ratio):
    eps = 0.1
    trainer, before, after = _one_step(tmp_path, f"r{ratio}", adversarial="fgsm", adv_eps=eps, adv_ratio=ratio)
    data = trainer.data
    # The first batch of epoch 0, from the raw arrays in pixel units of [0, 1].
    order = np.random.default_rng([0, 0]).permutation(data.info.num_train)[:32]
    u = data.arrays["x_train"][order].astype(np.float32) / data.info.pixel_max
    y = data.arrays["y_train"][order].astype(np.int32)
    mean, std = (np.asarray(v, np.float32) for v in (data.info.mean, data.info.std))
    model = tf.keras.models.clone_model(trainer.model)
    model.set_weights(before)
    ce = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    u_t = tf.constant(u)
    with tf.GradientTape() as tape:
        tape.watch(u_t)
        loss = ce(y, model((u_t - mean) / std))
    u_adv = np.clip(u + eps * np.sign(tape.gradient(loss, u_t).numpy()), 0.0, 1.0)
    with tf.GradientTape() as tape:
        loss = ratio * ce(y, model((u_adv - mean) / std))
        if ratio < 1.0:  # the engine runs clean and adversarial examples through one forward pass
            logits = model(np.concatenate([(u - mean) / std, (u_adv - mean) / std]))
            loss = (1 - ratio) * ce(y, logits[:32]) + ratio * ce(y, logits[32:])
        loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, model.trainable_variables)
    for b, a, g in zip(before, after, grads):
        np.testing.assert_allclose(a, b - 0.5 * g.numpy(), rtol=1e-4, atol=1e-6)
        assert np.abs(a - b).max() > 0


def test_pgd_training_mirrored_equals_one_device_and_resumes_exactly(tmp_path):
    settings = dict(adversarial="pgd", adv_eps=0.1, adv_steps=3, adv_ratio=0.5)
    one, before, after_one = _one_step(tmp_path, "one", **settings)
    two, before_two, after_two = _one_step(tmp_path, "two", strategy="mirrored", **settings)
    assert two.replicas == 2
    for b0, b1 in zip(before, before_two):
        np.testing.assert_array_equal(b0, b1)
    # Random starts are drawn over the global batch, so two replicas take exactly the one-device step.
    for b, a1, a2 in zip(before, after_one, after_two):
        np.testing.assert_allclose(a1 - b, a2 - b, rtol=1e-4, atol=1e-6)
    # Stop mid-epoch, resume: the same weights as an uninterrupted run (PGD seeds follow the step).
    config = TrainConfig(**{**TINY, "epochs": 2, **settings})
    full = Trainer(config, str(tmp_path / "full"), log=quiet)
    full.run()
    Trainer(TrainConfig(**{**config.to_json(), "max_steps": 23}), str(tmp_path / "part"), log=quiet).run()
    resumed = Trainer(config, str(tmp_path / "part"), resume=True, log=quiet)
    result = resumed.run()
    for a, b in zip(weights(full.model), weights(resumed.model)):
        np.testing.assert_array_equal(a, b)
    full_metrics = json.load(open(tmp_path / "full" / "metrics.json"))
    assert result.metrics["history"][-1]["train_adv_accuracy"] == full_metrics["history"][-1]["train_adv_accuracy"]


def _fgsm_accuracy(run_dir, eps):
    run_config = config_lib.load_run_config(run_dir)
    data = config_lib.load_data(TrainConfig.from_json(run_config["train"]))
    x = data.to_unit(data.arrays["x_test"]).numpy()
    return adversarial.robustness_curve(run_dir, x, data.arrays["y_test"], [0.0, eps])


def test_fgsm_training_from_the_cli_raises_robust_accuracy(tmp_path):
    common = ["--model", "two_layer_net", "--model-option", "hidden_dim=32", "--epochs", "3", "--batch-size", "32",
              "--lr", "0.01"]
    clean, robust = str(tmp_path / "clean"), str(tmp_path / "fgsm")
    assert cli.main(["train", "--out", clean] + common) == 0
    assert cli.main(["train", "--out", robust, "--adversarial", "fgsm:0.1", "--adv-ratio", "0.5"] + common) == 0
    recorded = json.load(open(os.path.join(robust, "config.json")))["train"]
    assert (recorded["adversarial"], recorded["adv_eps"], recorded["adv_ratio"]) == ("fgsm", 0.1, 0.5)
    metrics = json.load(open(os.path.join(robust, "metrics.json")))
    assert 0 < metrics["history"][-1]["train_adv_accuracy"] < metrics["history"][-1]["train_accuracy"]
    clean_curve, robust_curve = _fgsm_accuracy(clean, 0.1), _fgsm_accuracy(robust, 0.1)
    assert robust_curve[1]["accuracy"] > clean_curve[1]["accuracy"] + 0.1
    assert robust_curve[0]["accuracy"] > 0.85  # clean accuracy is kept


@pytest.mark.parametrize("settings,msg", [(dict(adversarial="cw"), "adversarial"),
                                          (dict(adversarial="fgsm", adv_eps=1.5), "adv_eps"),
                                          (dict(adversarial="fgsm", adv_ratio=0.0), "adv_ratio"),
                                          (dict(adversarial="pgd", adv_steps=0), "adv_steps")])
def test_bad_settings(settings, msg):
    with pytest.raises(ConfigError, match=msg):
        TrainConfig(**settings).validate()


@pytest.mark.parametrize("extra,msg", [(["--adversarial", "cw"], "adversarial"), (["--adv-eps", "-1"], "adv-eps"),
                                       (["--adversarial", "fgsm", "--adv-eps", "2"], "adv_eps"),
                                       (["--adversarial", "fgsm:2"], "adv_eps"),
                                       (["--adversarial", "fgsm:x"], "adversarial"),
                                       (["--adversarial", "pgd:0.1", "--adv-eps", "0.2"], "disagree"),
                                       (["--adversarial", "none:0.1"], "adversarial")])
def test_bad_cli_flags_one_line(tmp_path, capsys, extra, msg):
    assert cli.main(["train", "--out", str(tmp_path / "o"), "--epochs", "1"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err


def test_method_eps_flag_sets_method_and_eps():
    from cs231n_tf.cli import args as cli_args
    from cs231n_tf.cli.args import Parser

    parser = cli_args.add_config_flags(Parser(prog="t"), TrainConfig)
    for argv, expected in [(["--adversarial", "pgd:0.3"], ("pgd", 0.3)), (["--adversarial", "fgsm"], ("fgsm", None)),
                           (["--adversarial", "fgsm:0.25", "--adv-eps", "0.25"], ("fgsm", 0.25)),
                           (["--adversarial", "none"], (None, None))]:
        values = cli_args.config_values(TrainConfig, parser.parse_args(argv))
        assert (values["adversarial"], values.get("adv_eps")) == expected
