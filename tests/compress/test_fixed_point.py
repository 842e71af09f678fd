import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import data, models
from cs231n_tf.compress.distill import fine_tune
from cs231n_tf.compress.fixed_point import (FixedPointConv2D, FixedPointDense, FixedPointQuantize, accuracy,
                                            accuracy_per_bit_width, collect_statistics, fixed_point_model,
                                            quantize_dequantize, radix_point)
from cs231n_tf.errors import ConfigError


@pytest.fixture(scope="module")
def trained():
    ds = data.load("digits", batch_size=64)
    tf.keras.utils.set_random_seed(0)
    model = models.build("lenet5", ds.info.image_shape, 10, activation="relu", pooling="max")
    fine_tune(model, lambda e: ds.train_epoch(e, 0), 3, 3e-3)
    return ds, model


def test_quantize_dequantize_known_values():
    # 4 bits, 1 fraction bit: grid 0.5, integers [-8, 7] -> values [-4, 3.5]; ties round to even.
    x = tf.constant([0.2, 0.25, 0.3, 0.75, 1.25, 3.6, -5.0, -0.25])
    np.testing.assert_array_equal(quantize_dequantize(x, 4, 1).numpy(), [0.0, 0.0, 0.5, 1.0, 1.0, 3.5, -4.0, 0.0])
    # Negative fraction bits: steps of 4 with 3 bits -> [-16, 12].
    np.testing.assert_array_equal(quantize_dequantize(tf.constant([5.0, 7.0, 100.0, -100.0]), 3, -2).numpy(),
                                  [4.0, 8.0, 12.0, -16.0])
    # The straight-through estimator passes the gradient unchanged.
    v = tf.Variable([0.3, 9.0, -2.2])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(quantize_dequantize(v, 4, 1) * [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(tape.gradient(y, v).numpy(), [1.0, 2.0, 3.0])


def test_radix_point_covers_the_max_magnitude():
    assert radix_point(1.0, 8) == (1, 6)  # 127/64 >= 1 > 127/128
    assert radix_point(0.3, 8) == (-1, 8)
    assert radix_point(127.0, 8) == (7, 0)
    assert radix_point(127.5, 8) == (8, -1)
    assert radix_point(0.0, 8) == (0, 7)
    rng = np.random.default_rng(0)
    for bits in (4, 6, 8, 16):
        for m in np.exp(rng.uniform(-8, 8, size=50)):
            integer, fraction = radix_point(m, bits)
            top = 2 ** (bits - 1) - 1
            assert integer + fraction == bits - 1
            assert top * 2.0 ** -fraction >= m > top * 2.0 ** -(fraction + 1)
            # Nothing up to the max is clipped: the error is at most half a step.
            x = np.linspace(-m, m, 101)
            err = np.abs(quantize_dequantize(tf.constant(x), bits, fraction).numpy() - x)
            assert err.max() <= 2.0 ** -fraction / 2 * (1 + 1e-9)
    with pytest.raises(ConfigError, match="bit width"):
        radix_point(1.0, 1)


def test_statistics_and_model_structure(trained):
    ds, model = trained
    stats = collect_statistics(model, ds.train_epoch(0, 0), batches=2)
    x = next(iter(ds.train_epoch(0, 0).take(2).map(lambda a, b: a).unbatch().batch(128)))
    assert stats["input"] == pytest.approx(float(np.abs(x.numpy()).max()))
    assert stats["kernels"]["c1"] == pytest.approx(float(np.abs(model.get_layer("c1").kernel.numpy()).max()))
    probe = tf.keras.Model(model.inputs, model.get_layer("c5").output)
    assert stats["activations"]["c5"] == pytest.approx(float(np.abs(probe(x).numpy()).max()), rel=1e-5)
    fixed = fixed_point_model(model, stats, 8)
    inner = fixed.layers[-1]
    assert isinstance(inner.get_layer("c1"), FixedPointConv2D) and isinstance(inner.get_layer("c5"), FixedPointDense)
    c5 = inner.get_layer("c5")
    assert c5.kernel_fraction_bits == radix_point(stats["kernels"]["c5"], 8)[1]
    q = inner.get_layer("c5_fixed8")
    assert isinstance(q, FixedPointQuantize) and q.fraction_bits == radix_point(stats["activations"]["c5"], 8)[1]
    k = c5.quantized_kernel().numpy() * 2.0 ** c5.kernel_fraction_bits
    np.testing.assert_array_equal(k, np.round(k))  # kernels sit on the chosen grid
    assert np.unique(k).size <= 256


def test_sixteen_bits_is_nearly_lossless(trained):
    ds, model = trained
    stats = collect_statistics(model, ds.train_epoch(0, 0), batches=4)
    test = ds.split("test")
    x = ds.preprocess(ds.arrays["x_test"])
    logits = model(x).numpy()
    sixteen = fixed_point_model(model, stats, 16)(x).numpy()
    four = fixed_point_model(model, stats, 4)(x).numpy()
    assert np.abs(sixteen - logits).max() < 0.02 * np.abs(logits).max()
    assert np.abs(four - logits).max() > np.abs(sixteen - logits).max()
    assert np.mean(sixteen.argmax(-1) == logits.argmax(-1)) >= 0.995
    assert accuracy(model, test) > 0.8


def test_accuracy_per_bit_width_with_fine_tuning(trained):
    ds, model = trained
    rows = accuracy_per_bit_width(model, ds, widths=(16, 4), finetune_steps=15, lr=1e-4, calibration_batches=4)
    assert [r["bits"] for r in rows] == [16, 4]
    assert rows[0]["accuracy"] == pytest.approx(rows[0]["float_accuracy"], abs=0.01)
    assert all(0.0 <= r["finetuned_accuracy"] <= 1.0 for r in rows)
    # Fine-tuning trains the copy only; the float model is untouched.
    assert accuracy(model, ds.split("test")) == rows[0]["float_accuracy"]
    with pytest.raises(ConfigError, match="bit width"):
        accuracy_per_bit_width(model, ds, widths=(64,))
