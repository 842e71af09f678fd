"""Ensembles: averaged probabilities, Polyak/EMA weight averages, snapshot ensembles."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import data, models
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.train import ensemble
from cs231n_tf.train.trainer import train

TINY = dict(model="two_layer_net", model_options={"hidden_dim": 16}, batch_size=64, log_every=1000)


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", batch_size=64)


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def test_average_predictions_is_the_mean_of_member_softmaxes(digits):
    members = []
    for seed in range(3):
        tf.keras.utils.set_random_seed(seed)
        members.append(models.build("two_layer_net", (8, 8, 1), 10, hidden_dim=8))
    test = digits.split("test")
    result = ensemble.average_predictions(members, test)
    x = np.concatenate([xb.numpy() for xb, _ in test])
    y = np.concatenate([yb.numpy() for _, yb in test])
    manual = [_softmax(m(x, training=False).numpy().astype(np.float64)) for m in members]
    np.testing.assert_allclose(result.member_probabilities, np.stack(manual), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.probabilities, np.mean(manual, axis=0), rtol=1e-5, atol=1e-6)
    assert np.array_equal(result.labels, y)
    report = result.report()
    expected = [float((p.argmax(-1) == y).mean()) for p in manual]
    assert list(report["members"].values()) == pytest.approx(expected)
    assert report["ensemble"] == pytest.approx(float((np.mean(manual, 0).argmax(-1) == y).mean()))
    assert report["gain_over_mean"] == pytest.approx(report["ensemble"] - np.mean(expected))
    with pytest.raises(InputTypeError, match="split name"):
        ensemble.average_predictions(members, "test")


def test_average_predictions_of_run_directories(tmp_path):
    runs = [train(run_dir=str(tmp_path / f"run{s}"), seed=s, epochs=2, lr=0.01, **TINY) for s in (0, 1)]
    result = ensemble.average_predictions([r.run_dir for r in runs], "test")
    report = result.report()
    assert list(report["members"].values()) == pytest.approx([r.metrics["test_accuracy"] for r in runs])
    assert report["ensemble"] > 0.8


def _model():
    tf.keras.utils.set_random_seed(0)
    return models.build("small_convnet", (8, 8, 1), 3, width=2)


def test_polyak_average_is_the_arithmetic_mean():
    model = _model()
    averager = ensemble.WeightAverager(model)
    variables = averager.variables
    # Trainable weights and the batchnorm moving statistics are both averaged.
    assert {v.name.split("/")[-1].split(":")[0] for v in variables} >= {"kernel", "gamma", "moving_mean"}
    rng = np.random.default_rng(0)
    sequence = [[rng.normal(size=v.shape).astype(np.float32) for v in variables] for _ in range(5)]
    for weights in sequence:
        for v, w in zip(variables, weights):
            v.assign(w)
        averager.update()
    live = [v.numpy() for v in variables]
    with averager.swap_in():
        for v, ws in zip(variables, zip(*sequence)):
            np.testing.assert_allclose(v.numpy(), np.mean(ws, axis=0), rtol=1e-5, atol=1e-6)
    for v, w in zip(variables, live):
        assert np.array_equal(v.numpy(), w)  # the live weights are back


def test_ema_matches_closed_form_and_tf_exponential_moving_average():
    decay = 0.8
    model = _model()
    averager = ensemble.WeightAverager(model, decay=decay)
    kernel = model.get_layer("conv1_1").kernel
    w0 = kernel.numpy()
    reference = tf.train.ExponentialMovingAverage(decay)
    reference.apply([kernel])  # TF's shadow starts at the weights it is created with
    rng = np.random.default_rng(1)
    sequence = [rng.normal(size=kernel.shape).astype(np.float32) for _ in range(6)]
    for w in sequence:
        kernel.assign(w)
        averager.update()
        reference.apply([kernel])
    n = len(sequence)
    closed = decay ** n * w0 + (1 - decay) * sum(decay ** (n - i) * w for i, w in enumerate(sequence, start=1))
    index = [v.ref() for v in averager.variables].index(kernel.ref())
    np.testing.assert_allclose(averager.averaged_weights()[index], closed, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(averager.averaged_weights()[index], reference.average(kernel).numpy(),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="decay must be None"):
        ensemble.WeightAverager(model, decay=1.0)


def test_averager_updates_inside_tf_function():
    model = _model()
    averager = ensemble.WeightAverager(model)
    kernel = model.get_layer("logits").kernel

    @tf.function
    def step(value):
        kernel.assign(value)
        averager.update()

    values = [np.full(kernel.shape, float(i), np.float32) for i in (1, 2, 6)]
    for value in values:
        step(tf.constant(value))
    with averager.swap_in():
        np.testing.assert_allclose(kernel.numpy(), 3.0)


def test_snapshot_ensemble_cycles_and_cyclic_cosine_rate(digits):
    cycles, epochs, lr_max = 3, 3, 0.1
    result = ensemble.train_snapshot_ensemble(cycles=cycles, data=digits, epochs=epochs, optimizer="momentum",
                                              lr=lr_max, log=quiet, **TINY)
    steps_per_epoch = digits.steps_per_epoch(64)
    total = epochs * steps_per_epoch
    assert len(result.snapshots) == cycles
    assert result.snapshot_steps == [steps_per_epoch * (i + 1) for i in range(cycles)]
    # Closed form (Huang et al. 2017, eq. 2) with 0-based steps; the rate the optimizer applied.
    period = -(-total // cycles)
    t = np.arange(total)
    expected = lr_max / 2 * (np.cos(np.pi * (t % period) / period) + 1)
    assert result.learning_rates.shape == (total,)
    np.testing.assert_allclose(result.learning_rates, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ensemble.cyclic_cosine_lr(t, total, cycles, lr_max), expected)
    assert result.learning_rates[period] == pytest.approx(lr_max)  # the restart
    # The snapshots are different models; the last one is the final model.
    assert not np.array_equal(result.snapshots[0][0], result.snapshots[1][0])
    for a, b in zip(result.snapshots[-1], result.model.get_weights()):
        assert np.array_equal(a, b)
    report = result.evaluate("test").report()
    assert len(report["members"]) == cycles and report["ensemble"] > 0.85
    assert len(result.evaluate("test", last=2).report()["members"]) == 2
    with pytest.raises(ConfigError, match="multiple of cycles"):
        ensemble.train_snapshot_ensemble(cycles=2, data=digits, epochs=3, log=quiet, **TINY)


def test_train_averaged_ema_differs_from_final_and_swaps_back(digits):
    run = ensemble.train_averaged(decay=0.9, start_epoch=1, data=digits, epochs=2, lr=0.01, log=quiet, **TINY)
    steps = digits.steps_per_epoch(64)
    assert int(run.averager.count.numpy()) == steps  # only the second epoch was averaged
    final = [v.numpy() for v in run.averager.variables]
    assert any(not np.array_equal(a, b) for a, b in zip(final, run.averager.averaged_weights()))
    averaged_acc, final_acc = run.accuracy(averaged=True), run.accuracy(averaged=False)
    assert averaged_acc > 0.8 and final_acc > 0.8
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(final, run.averager.variables))
    polyak = ensemble.train_averaged(decay=None, start_epoch=0, data=digits, epochs=1, lr=0.01, log=quiet, **TINY)
    assert int(polyak.averager.count.numpy()) == steps and polyak.accuracy() > 0.5


def test_train_independent_members_differ_by_seed_only(digits):
    a0, a1 = ensemble.train_independent(seeds=[0, 1], data=digits, epochs=1, lr=0.01, log=quiet, **TINY)
    (b0,) = ensemble.train_independent(seeds=[0], data=digits, epochs=1, lr=0.01, log=quiet, **TINY)
    assert (a0.name, a1.name) == ("seed0", "seed1")
    assert not np.allclose(a0.get_weights()[0], a1.get_weights()[0])
    for x, y in zip(a0.get_weights(), b0.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    with pytest.raises(ConfigError, match="seeds must be"):
        ensemble.train_independent(seeds=[], data=digits, log=quiet, **TINY)


def test_recompute_batchnorm_gives_the_mean_of_batch_statistics():
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((4,))
    hidden = tf.keras.layers.Dense(3, name="fc")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.BatchNormalization(name="bn")(hidden))
    x = np.random.default_rng(2).normal(size=(24, 4)).astype(np.float32) * 3 + 1
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(24, np.int32))).batch(8)
    bn = model.get_layer("bn")
    averager = ensemble.WeightAverager(model)  # its average holds the initial statistics (0 and 1)
    assert ensemble.recompute_batchnorm(model, ds) == 3
    h = model.get_layer("fc")(x).numpy().reshape(3, 8, 3)
    np.testing.assert_allclose(bn.moving_mean.numpy(), h.mean(axis=1).mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), h.var(axis=1).mean(axis=0), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.99
    # Inside swap_in the statistics are re-estimated; afterwards the live ones are back.
    bn.moving_mean.assign([5.0, 5.0, 5.0])
    with averager.swap_in():
        assert np.all(bn.moving_mean.numpy() == 0.0)
    with averager.swap_in(batchnorm_data=ds):
        np.testing.assert_allclose(bn.moving_mean.numpy(), h.mean(axis=1).mean(axis=0), rtol=1e-5, atol=1e-5)
    assert np.all(bn.moving_mean.numpy() == 5.0)


def test_members_train_under_any_engine_option(digits):
    # The ensemble tools run on the engine, so strategies and mixed precision apply to them too.
    (mirrored,) = ensemble.train_independent(seeds=[0], data=digits, epochs=1, lr=0.01, strategy="mirrored",
                                             log=quiet, **TINY)
    (single,) = ensemble.train_independent(seeds=[0], data=digits, epochs=1, lr=0.01, log=quiet, **TINY)
    for a, b in zip(mirrored.get_weights(), single.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    (half,) = ensemble.train_independent(seeds=[0], data=digits, epochs=1, lr=0.01, mixed_precision="mixed_bfloat16",
                                         log=quiet, **TINY)
    assert half.output.dtype == tf.float32
    with pytest.raises(ConfigError, match="cyclic cosine"):
        ensemble.train_snapshot_ensemble(cycles=1, data=digits, epochs=1, lr_schedule="cosine", log=quiet, **TINY)
