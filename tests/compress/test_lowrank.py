import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import data, models
from cs231n_tf.compress.distill import fine_tune
from cs231n_tf.compress.lowrank import factorize, rank_for_energy
from cs231n_tf.errors import ConfigError

L = tf.keras.layers


def mlp(seed=0):
    tf.keras.utils.set_random_seed(seed)
    inputs = L.Input((8, 8, 1))
    x = L.Flatten(name="flatten")(inputs)
    x = L.Dense(32, activation="relu", name="fc1")(x)
    return tf.keras.Model(inputs, L.Dense(10, name="logits")(x))


def convnet(seed=0):
    tf.keras.utils.set_random_seed(seed)
    inputs = L.Input((8, 8, 1))
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = L.Conv2D(16, 3, strides=2, name="conv2")(x)
    x = L.Flatten()(x)
    return tf.keras.Model(inputs, L.Dense(10, name="logits")(x))


def test_rank_for_energy_by_hand():
    s = [3.0, 2.0, 1.0]  # squared: 9, 4, 1 of 14 -> cumulative 0.643, 0.929, 1.0
    assert rank_for_energy(s, 0.5) == 1
    assert rank_for_energy(s, 9 / 14) == 1
    assert rank_for_energy(s, 0.9) == 2
    assert rank_for_energy(s, 0.95) == 3
    assert rank_for_energy(s, 1.0) == 3


@pytest.mark.parametrize("build", [mlp, convnet])
def test_full_rank_reproduces_the_model(build):
    model = build()
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32)
    new, report = factorize(model, 1.0, only_if_smaller=False)
    np.testing.assert_allclose(new(x).numpy(), model(x).numpy(), atol=1e-5)
    assert all(rec.rank == rec.full_rank for rec in report.layers)
    assert all(rec.kept_energy == pytest.approx(1.0) for rec in report.layers)
    # The copy shares no variables with the original.
    assert not {v.ref() for v in new.variables} & {v.ref() for v in model.variables}


def test_dense_rank_and_counts_by_hand():
    model = mlp()
    rng = np.random.default_rng(1)
    fc1 = model.get_layer("fc1")
    fc1.kernel.assign((rng.normal(size=(64, 3)) @ rng.normal(size=(3, 32))).astype(np.float32))  # rank 3
    x = rng.normal(size=(4, 8, 8, 1)).astype(np.float32)
    new, report = factorize(model, 0.999999, layers=["fc1"])
    (rec,) = report.layers
    assert (rec.name, rec.rank, rec.full_rank) == ("fc1", 3, 32)
    assert rec.params_before == 64 * 32 + 32
    assert rec.params_after == 3 * (64 + 32) + 32
    assert rec.multiply_adds_before == 64 * 32
    assert rec.multiply_adds_after == 3 * (64 + 32)
    assert report.params_before - report.params_after == rec.params_before - rec.params_after
    assert new.get_layer("fc1_basis").kernel.shape == (64, 3)
    np.testing.assert_allclose(new(x).numpy(), model(x).numpy(), atol=1e-4)


def test_conv_counts_by_hand_and_kept_whole_when_not_smaller():
    model = convnet()
    new, report = factorize(model, 0.5)
    recs = {rec.name: rec for rec in report.layers}
    conv2 = recs["conv2"]
    r = conv2.rank
    s = np.linalg.svd(model.get_layer("conv2").kernel.numpy().reshape(72, 16), compute_uv=False)
    assert r == rank_for_energy(s, 0.5) and r < 16
    assert conv2.params_after == 3 * 3 * 8 * r + r * 16 + 16
    assert conv2.multiply_adds_before == 3 * 3 * 72 * 16  # 8x8, 3x3 valid, stride 2: 3x3 outputs
    assert conv2.multiply_adds_after == 3 * 3 * (72 * r + r * 16)
    basis = new.get_layer("conv2_basis")
    assert basis.kernel.shape == (3, 3, 8, r) and basis.strides == (2, 2)
    assert new.get_layer("conv2").kernel.shape == (1, 1, r, 16)
    # At full rank no layer gets cheaper, so every layer is kept whole.
    whole, whole_report = factorize(model, 1.0)
    assert all(rec.rank is None for rec in whole_report.layers) and len(whole_report.layers) == 3
    assert whole_report.params_after == whole_report.params_before
    assert [type(layer) for layer in whole.layers] == [type(layer) for layer in model.layers]
    assert report.params_after < report.params_before


def test_fine_tune_after_factorizing_lowers_the_loss():
    ds = data.load("digits", batch_size=64)
    model = models.build("lenet300_100", ds.info.image_shape, ds.info.num_classes)
    fine_tune(model, lambda e: ds.train_epoch(e, 0), 2, 3e-3)
    small, report = factorize(model, 0.6)
    assert report.params_after < report.params_before / 2
    history = []
    fine_tune(small, lambda e: ds.train_epoch(e, 1), 2, 1e-3, history=history)
    assert history[1] < history[0]


def test_bad_arguments():
    model = mlp()
    for energy in (0, 1.5, -0.1, True):
        with pytest.raises(ConfigError, match="energy"):
            factorize(model, energy)
    with pytest.raises(ConfigError, match="no layer"):
        factorize(model, 0.9, layers=["fc9"])
    with pytest.raises(ConfigError, match="cannot be factorised"):
        factorize(model, 0.9, layers=["flatten"])
