import math

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import data as data_lib
from cs231n_tf import models
from cs231n_tf.compress import pruning
from cs231n_tf.errors import ConfigError

L = tf.keras.layers


def _kernels(model):
    return {layer.name: layer.kernel.numpy() for layer in pruning.kernel_layers(model)}


def test_one_shot_pruning_zeros_the_smallest_weights(trained, digits):
    before = _kernels(trained)
    wrapped = pruning.prune(trained, 0.6)
    # A learning rate of ~0 isolates the masking from the weight updates.
    pruning.fine_tune_pruned(wrapped, digits, epochs=1, lr=1e-12)
    stripped = pruning.strip_pruning(wrapped)
    assert not any("prune" in layer.name for layer in stripped.layers)
    report = {r["name"]: r for r in pruning.sparsity_report(stripped)["layers"]}
    for name, kernel in _kernels(stripped).items():
        original = before[name]
        zero = kernel == 0
        assert report[name]["zeros"] == zero.sum()
        assert zero.sum() == pytest.approx(0.6 * kernel.size, abs=1)
        # Every pruned weight was no larger in magnitude than every kept one.
        assert np.abs(original[zero]).max() <= np.abs(original[~zero]).min()
        np.testing.assert_allclose(kernel[~zero], original[~zero], atol=1e-6)
    # The source model is untouched.
    for name, kernel in _kernels(trained).items():
        np.testing.assert_array_equal(kernel, before[name])


def test_per_layer_targets_and_wrapped_report(trained, digits):
    wrapped = pruning.prune(trained, {"fc1": 0.75})
    pruning.fine_tune_pruned(wrapped, digits, epochs=1, lr=1e-3)
    rows = {r["name"]: r for r in pruning.sparsity_report(wrapped)["layers"]}
    assert rows["fc1"]["sparsity"] == pytest.approx(0.75, abs=1 / rows["fc1"]["weights"])
    assert rows["logits"]["zeros"] == 0
    total = pruning.sparsity_report(wrapped)["total"]
    assert total["zeros"] == rows["fc1"]["zeros"]
    assert total["weights"] == 64 * 32 + 32 * 10


def test_polynomial_schedule_follows_zhu_and_gupta():
    schedule = pruning.make_schedule(0.8, "polynomial", begin_step=10, end_step=110, frequency=10)
    for step in (10, 40, 70, 110):
        t = (step - 10) / 100
        expected = 0.8 + (0.0 - 0.8) * (1 - t) ** 3
        should_prune, sparsity = schedule(tf.constant(step, tf.int64))
        assert bool(should_prune)
        assert float(sparsity) == pytest.approx(expected, abs=1e-6)
    assert not bool(schedule(tf.constant(15, tf.int64))[0])  # not a multiple of the frequency
    constant = pruning.make_schedule(0.5, "constant", frequency=7)
    assert bool(constant(tf.constant(1, tf.int64))[0]) and bool(constant(tf.constant(8, tf.int64))[0])
    assert float(constant(tf.constant(8, tf.int64))[1]) == pytest.approx(0.5)


def test_iterative_pruning_reaches_the_target(trained, digits):
    assert pruning.round_targets(0.75, 2) == pytest.approx([0.5, 0.75])
    model, history = pruning.iterative_prune(trained, digits, 0.75, rounds=2, epochs_per_round=1, lr=3e-3)
    assert [round(r["sparsity"], 3) for r in history] == [0.5, 0.75]
    for row in pruning.sparsity_report(model)["layers"]:
        assert row["sparsity"] == pytest.approx(0.75, abs=1 / row["weights"])
    assert pruning.accuracy(model, digits) > 0.8


def test_pruning_a_run_without_a_validation_split(trained):
    # validation_fraction=0: the rounds report NaN validation accuracy instead of dividing by zero.
    no_val = data_lib.load("digits", batch_size=32, validation_fraction=0.0)
    assert math.isnan(pruning.accuracy(trained, no_val, "validation"))
    _, history = pruning.iterative_prune(trained, no_val, 0.5, rounds=1, epochs_per_round=1, lr=3e-3)
    assert math.isnan(history[0]["val_accuracy"]) and history[0]["sparsity"] == pytest.approx(0.5, abs=1e-3)


def test_bad_requests(trained):
    for bad in (1.0, -0.1, float("nan"), "many"):
        with pytest.raises(ConfigError, match="sparsity"):
            pruning.prune(trained, bad)
    with pytest.raises(ConfigError, match="'fc9'.*fc1, logits"):
        pruning.prune(trained, {"fc9": 0.5})
    with pytest.raises(ConfigError, match="'flatten' \\(Flatten\\) has no kernel"):
        pruning.prune(trained, {"flatten": 0.5})
    with pytest.raises(ConfigError, match="epochs_per_round"):
        pruning.iterative_prune(trained, None, 0.5, epochs_per_round=0)
    with pytest.raises(ConfigError, match="end_step"):
        pruning.make_schedule(0.5, "polynomial")
    with pytest.raises(ConfigError, match="schedule"):
        pruning.make_schedule(0.5, "cubic")


def _small_cnn():
    inputs = L.Input((8, 8, 2))
    x = L.Conv2D(6, 3, padding="same", name="conv1")(inputs)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.MaxPool2D(2, name="pool1")(x)
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(12, activation="relu", name="fc")(x)
    outputs = L.Dense(3, name="logits")(x)
    model = tf.keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.3 + (1.0 if "variance" in v.name else 0.0)
                       for w, v in zip(model.get_weights(), model.weights)])
    return model


def test_filter_pruning_equals_zeroing_the_consumers_inputs():
    model = _small_cnn()
    smaller, report = pruning.prune_filters(model, 0.5)
    assert [(r["name"], r["channels_after"]) for r in report["layers"]] == [("conv1", 3), ("conv2", 4), ("fc", 6)]
    assert smaller.get_layer("conv1").kernel.shape == (3, 3, 2, 3)
    assert smaller.get_layer("conv2").kernel.shape == (3, 3, 3, 4)
    assert smaller.get_layer("fc").kernel.shape == (4 * 4 * 4, 6)
    assert smaller.get_layer("logits").kernel.shape == (6, 3)
    assert report["params_after"] == smaller.count_params() < report["params_before"] == model.count_params()

    # Reference: the original model with the removed channels cut off at their consumer.
    def removed(layer):
        norms = np.abs(layer.kernel.numpy()).reshape(-1, layer.kernel.shape[-1]).sum(0)
        return np.argsort(norms)[: len(norms) // 2]  # the half with the smallest L1 norms

    ref = tf.keras.models.clone_model(model)
    ref.set_weights(model.get_weights())
    c1, c2, fc = (removed(model.get_layer(n)) for n in ("conv1", "conv2", "fc"))
    k = ref.get_layer("conv2").kernel.numpy()
    k[:, :, c1, :] = 0
    ref.get_layer("conv2").kernel.assign(k)
    k = ref.get_layer("fc").kernel.numpy().reshape(4, 4, 8, 12)
    k[:, :, c2, :] = 0
    ref.get_layer("fc").kernel.assign(k.reshape(-1, 12))
    k = ref.get_layer("logits").kernel.numpy()
    k[fc, :] = 0
    ref.get_layer("logits").kernel.assign(k)
    x = np.random.default_rng(1).normal(size=(5, 8, 8, 2)).astype(np.float32)
    np.testing.assert_allclose(smaller(x).numpy(), ref(x).numpy(), rtol=1e-5, atol=1e-5)


def test_filter_pruning_of_a_course_model_and_errors(digits):
    model = models.build("lenet300_100", digits.info.image_shape, 10)
    smaller, report = pruning.prune_filters(model, {"fc1": 0.5})
    assert report["params_after"] == 64 * 150 + 150 + 150 * 100 + 100 + 100 * 10 + 10
    x = np.zeros((1, 8, 8, 1), np.float32)
    assert smaller(x).shape == (1, 10)
    unchanged, _ = pruning.prune_filters(model, 0.0)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(unchanged(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ConfigError, match="model output"):
        pruning.prune_filters(model, {"logits": 0.5})
    with pytest.raises(ConfigError, match="unknown layer"):
        pruning.prune_filters(model, {"fc7": 0.5})
    with pytest.raises(ConfigError, match="Flatten"):
        pruning.prune_filters(model, {"flatten": 0.5})
