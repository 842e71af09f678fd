"""Papernot et al.'s substitute attack: Jacobian augmentation equals its formula, queries are counted exactly,
the SavedModel oracle answers like the model, and the transfer attack beats random noise of the same size."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.adversarial import substitute as sub
from cs231n_tf.errors import DataError


def _linear(d=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(d, k)).astype(np.float32), rng.normal(size=k).astype(np.float32)
    return W, b, lambda x: tf.matmul(tf.reshape(x, [-1, d]), W) + b


def test_jacobian_augmentation_equals_its_formula():
    W, b, logits = _linear()
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (5, 3, 4, 1)).astype(np.float32)
    labels = np.array([0, 2, 1, 1, 0])
    # Linear logits: the Jacobian row of class c is W[:, c], whatever x is.
    for lam in (0.1, -0.1):
        expected = np.clip(x + lam * np.sign(W[:, labels].T).reshape(x.shape), 0.0, 1.0)
        np.testing.assert_allclose(sub.jacobian_augmentation(logits, x, labels, lam), expected, atol=1e-7)


def test_oracle_counts_queries_and_reads_a_saved_model(tmp_path):
    from cs231n_tf.export.exporter import ServingModule, write_saved_model

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.layers.Flatten(input_shape=(3, 4, 1)), tf.keras.layers.Dense(3)])
    mean, std = np.float32([0.4]), np.float32([0.2])
    write_saved_model(ServingModule(model, mean, std, (3, 4, 1)), str(tmp_path / "sm"))
    x = np.random.default_rng(0).uniform(0, 1, (7, 3, 4, 1)).astype(np.float32)
    oracle = sub.Oracle(str(tmp_path / "sm"), batch_size=3)
    np.testing.assert_array_equal(oracle.labels(x), np.argmax(model((x - mean) / std).numpy(), 1))
    oracle.labels(x[:2], count=False)
    assert oracle.queries == 7


def test_transfer_rate_counts_flips_of_correct_predictions():
    oracle = sub.Oracle(lambda x: tf.cast(tf.reduce_sum(x, axis=[1, 2, 3]) > 0.5, tf.int64))  # a labels-only target
    x = np.zeros((4, 1, 1, 1), np.float32) + np.float32([0.1, 0.9, 0.2, 0.8])[:, None, None, None]
    y = np.array([0, 1, 1, 1])  # target correct on 0, 1, 3
    x_adv = x.copy()
    x_adv[1] = 0.3  # flips example 1 only
    assert sub.transfer_rate(oracle, x, y, x_adv) == pytest.approx(1 / 3)
    assert oracle.queries == 0


def test_substitute_attack_queries_and_transfer(tmp_path):
    from cs231n_tf import data as data_lib
    from cs231n_tf.tasks.classification import train_model

    splits = data_lib.load("digits", validation_fraction=0.0)
    x = splits.to_unit(splits.arrays["x_train"]).numpy()
    y = splits.arrays["y_train"].astype(np.int32)
    tf.keras.utils.set_random_seed(0)
    target = tf.keras.Sequential([tf.keras.layers.Flatten(input_shape=(8, 8, 1)),
                                  tf.keras.layers.Dense(32, activation="relu"), tf.keras.layers.Dense(10)])
    train_model(target, tf.data.Dataset.from_tensor_slices((x, y)).batch(64), 8, tf.keras.optimizers.Adam(1e-2),
                log=lambda _m: None)
    x_eval = splits.to_unit(splits.arrays["x_test"]).numpy()[:200]
    y_eval = splits.arrays["y_test"][:200]
    seed_x = splits.to_unit(splits.arrays["x_test"]).numpy()[200:230]
    small = lambda: tf.keras.Sequential([tf.keras.layers.Flatten(input_shape=(8, 8, 1)),  # noqa: E731
                                         tf.keras.layers.Dense(32, activation="relu"), tf.keras.layers.Dense(10)])
    out = sub.substitute_attack(target, seed_x, x_eval, y_eval, substitutes=(small, small), num_classes=10,
                                rounds=3, epochs=6, eps=0.2)
    assert [r["queries"] for r in out["rounds"]] == [30, 60, 120] and out["queries"] == 120
    assert [r["training_points"] for r in out["rounds"]] == [30, 60, 120]
    assert len(out["rounds"][-1]["member_transfer_rates"]) == 2
    last = out["rounds"][-1]
    assert last["substitute_agreement"] > out["rounds"][0]["substitute_agreement"] - 0.05
    # Random signs of the same size flip far fewer of the target's correct predictions.
    noise = np.clip(x_eval + 0.2 * np.sign(np.random.default_rng(0).normal(size=x_eval.shape)), 0, 1)
    assert last["transfer_rate"] > sub.transfer_rate(sub.Oracle(target), x_eval, y_eval, noise.astype(np.float32))


def test_bad_seed_set():
    _, _, logits = _linear()
    with pytest.raises(DataError, match="seed_x"):
        sub.substitute_attack(logits, np.zeros((0, 3, 4, 1)), np.zeros((2, 3, 4, 1)), np.zeros(2, int))
