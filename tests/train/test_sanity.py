import math

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import models
from cs231n_tf.errors import ConfigError
from cs231n_tf.train.config import TrainConfig, load_data
from cs231n_tf.train.sanity import SanityReport, _subset, sanity_check

LN10 = math.log(10)


@pytest.fixture(scope="module")
def digits():
    return load_data(TrainConfig())


def test_two_layer_net_passes_every_check_with_the_expected_numbers(digits):
    config = TrainConfig(model="two_layer_net", model_options={"hidden_dim": 32}, seed=3)
    lines = []
    report = sanity_check(config, data=digits, log=lines.append, loss_examples=256)
    assert isinstance(report, SanityReport) and report.passed
    assert [c.name for c in report.checks] == ["initial_loss", "regularization_raises_loss", "overfit_small_subset"]
    assert lines == [str(c) for c in report.checks] and str(report).count("[PASS]") == 3

    # (a) The same weights rebuilt independently give the same loss, and it is near ln(10).
    tf.keras.utils.set_random_seed(3)
    model = models.build("two_layer_net", digits.info.image_shape, 10, hidden_dim=32)
    x, y = _subset(digits, 256, 3)
    logits = model(x, training=False).numpy().astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    loss = -logp[np.arange(len(y)), y.numpy()].mean()
    initial = report["initial_loss"]
    assert initial.value == pytest.approx(loss, rel=1e-5)
    assert abs(initial.value - LN10) <= 0.5 * LN10

    # (b) Regularisation adds exactly 0.5 * wd * sum(w^2) over the kernels (biases excluded).
    kernels = [v.numpy() for v in model.trainable_variables if "kernel" in v.name]
    assert len(kernels) == 2
    expected = loss + 0.5 * 1.0 * sum(float((k.astype(np.float64) ** 2).sum()) for k in kernels)
    assert report["regularization_raises_loss"].value == pytest.approx(expected, rel=1e-5)

    # (c) 50 examples are fitted perfectly.
    overfit = report["overfit_small_subset"]
    assert overfit.value == 1.0 and "50 examples" in overfit.detail


def test_l1_penalty_is_what_check_b_adds(digits):
    config = TrainConfig(model="two_layer_net", model_options={"hidden_dim": 16}, penalty="l1")
    report = sanity_check(config, data=digits, log=None, overfit_steps=10, regularization=0.01, loss_examples=64)
    tf.keras.utils.set_random_seed(0)
    model = models.build("two_layer_net", digits.info.image_shape, 10, hidden_dim=16)
    l1 = sum(float(np.abs(v.numpy()).sum()) for v in model.trainable_variables if "kernel" in v.name)
    rise = report["regularization_raises_loss"].value - report["initial_loss"].value
    assert rise == pytest.approx(0.01 * l1, rel=1e-4)


def test_zero_weights_give_exactly_ln_c_and_fail_the_other_checks(digits):
    # All-zero kernels: every logit is 0, so the softmax is uniform and the loss is ln(10) exactly;
    # there is nothing to penalise and no gradient reaches the hidden layer (it stays 0).
    config = TrainConfig(model="two_layer_net", model_options={"hidden_dim": 16, "kernel_initializer": "zeros"})
    report = sanity_check(config, data=digits, log=None, overfit_steps=40)
    assert report["initial_loss"].passed and report["initial_loss"].value == pytest.approx(LN10, abs=1e-6)
    assert not report["regularization_raises_loss"].passed
    assert report["regularization_raises_loss"].value == pytest.approx(LN10, abs=1e-6)
    assert not report["overfit_small_subset"].passed
    assert not report.passed and "[FAIL] regularization_raises_loss" in str(report)


def test_a_learning_rate_far_too_small_fails_the_overfit_check(digits):
    config = TrainConfig(model="two_layer_net", model_options={"hidden_dim": 32}, lr=1e-7)
    report = sanity_check(config, data=digits, log=None, overfit_steps=60)
    assert report["initial_loss"].passed and report["regularization_raises_loss"].passed
    overfit = report["overfit_small_subset"]
    assert not overfit.passed and overfit.value < 0.5 and "60 steps" in overfit.detail
    assert not report.passed


def test_a_badly_scaled_initialisation_fails_the_initial_loss_check(digits):
    big = tf.keras.initializers.RandomNormal(stddev=1.0, seed=1)
    config = TrainConfig(model="two_layer_net", model_options={"hidden_dim": 32, "kernel_initializer": big})
    report = sanity_check(config, data=digits, log=None, overfit_steps=10)
    assert not report["initial_loss"].passed and report["initial_loss"].value > 3 * LN10


@pytest.mark.parametrize("kwargs", [dict(overfit_examples=0), dict(overfit_steps=1.5), dict(loss_tolerance=0),
                                    dict(regularization=-1.0), dict(overfit_target=1.5)])
def test_bad_arguments_raise_config_error(digits, kwargs):
    with pytest.raises(ConfigError):
        sanity_check(TrainConfig(model="two_layer_net"), data=digits, log=None, **kwargs)
