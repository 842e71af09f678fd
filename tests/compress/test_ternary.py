import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import data, models
from cs231n_tf.compress import ternary
from cs231n_tf.compress.ternary import (BinaryDense, TernaryConv2D, TernaryDense, binarize, binary_weights,
                                        quantized_kernels, ternarize, ternary_weights)
from cs231n_tf.errors import ConfigError
from cs231n_tf.train.trainer import train

L = tf.keras.layers


def test_ternary_values_by_hand():
    w = tf.constant([-1.0, -0.5, -0.04, 0.0, 0.05, 0.6, 1.0])  # threshold 0.05 * max|w| = 0.05
    got = ternary_weights(w, tf.constant(0.7), tf.constant(0.3), 0.05).numpy()
    np.testing.assert_allclose(got, [-0.3, -0.3, 0.0, 0.0, 0.0, 0.7, 0.7])


def test_ternary_gradients_follow_the_paper():
    rng = np.random.default_rng(0)
    w = tf.Variable(rng.normal(size=(6, 5)))
    wp, wn = tf.Variable(0.8, dtype=tf.float64), tf.Variable(0.3, dtype=tf.float64)
    dy = rng.normal(size=(6, 5))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(ternary_weights(w, wp, wn, 0.3) * dy)
    g_w, g_wp, g_wn = tape.gradient(loss, [w, wp, wn])
    delta = 0.3 * np.abs(w.numpy()).max()
    pos, neg = w.numpy() > delta, w.numpy() < -delta
    # Eq. 7: the scales collect the gradients of their own index sets (w_t = -W_n on I_n).
    assert float(g_wp) == pytest.approx(dy[pos].sum())
    assert float(g_wn) == pytest.approx(-dy[neg].sum())
    # Eq. 8: the latent weights get the gradient scaled by W_p, 1 or W_n.
    np.testing.assert_allclose(g_w.numpy(), np.where(pos, 0.8, np.where(neg, 0.3, 1.0)) * dy)


def test_binary_values_and_straight_through_gradient():
    rng = np.random.default_rng(1)
    w = tf.Variable(np.append(rng.normal(size=11) * 0.8, [0.0, 1.5]))
    dy = rng.normal(size=13)
    with tf.GradientTape() as tape:
        wb = binary_weights(w)
        loss = tf.reduce_sum(wb * dy)
    alpha = np.abs(w.numpy()).mean()
    sign = np.where(w.numpy() >= 0, 1.0, -1.0)
    np.testing.assert_allclose(wb.numpy(), sign * alpha)
    assert len(np.unique(wb.numpy())) == 2
    # d/dw [sign(w) * mean|w|] with the clipped STE for sign: alpha 1{|w|<=1} dy + d|w|/dw <dy, sign> / n,
    # where d|w|/dw is 0 at w = 0.
    want = alpha * (np.abs(w.numpy()) <= 1.0) * dy + np.sign(w.numpy()) * np.sum(dy * sign) / 13
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), want)


def test_layers_compute_with_quantized_kernels():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 6, 6, 2)).astype(np.float32)
    conv = TernaryConv2D(4, 3, threshold=0.1, padding="same")
    y = conv(x)
    k = conv.quantized_kernel().numpy()
    assert len(np.unique(k)) == 3
    np.testing.assert_allclose(y.numpy(), tf.nn.conv2d(x, k, 1, "SAME").numpy() + conv.bias.numpy(), atol=1e-5)
    dense = BinaryDense(5, activation="relu")
    x2 = rng.normal(size=(3, 7)).astype(np.float32)
    np.testing.assert_allclose(dense(x2).numpy(),
                               np.maximum(x2 @ dense.quantized_kernel().numpy() + dense.bias.numpy(), 0), atol=1e-5)
    # Round trip through the config keeps the threshold.
    assert TernaryDense.from_config(TernaryDense(3, threshold=0.2).get_config()).threshold == 0.2
    with pytest.raises(ConfigError, match="threshold"):
        TernaryDense(3, threshold=1.5)


def test_registered_models_have_ternary_and_binary_weights():
    assert {"ternary_lenet300_100", "binary_lenet300_100", "ternary_lenet5", "binary_lenet5"} <= set(models.list())
    for name, count in (("ternary_lenet5", 3), ("binary_lenet5", 2)):
        model = models.build(name, (8, 8, 1), 10)
        kernels = quantized_kernels(model)
        assert set(kernels) == {"c1", "c3", "c5", "f6", "logits"}
        assert all(len(np.unique(k)) == count for k in kernels.values())
        # 8x8 inputs are padded to 32x32, so the count is LeNet-5's 61,706 (+ two TTQ scales per layer).
        assert model.count_params() == 61_706 + (10 if name.startswith("ternary") else 0)
        assert models.get_spec(name).reference_params == model.count_params()


def test_trainer_trains_a_ternary_net(tmp_path):
    result = train(run_dir=str(tmp_path / "run"), model="ternary_lenet300_100", epochs=2, batch_size=64, lr=1e-3,
                   log_every=100)
    history = result.metrics["history"]
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert result.metrics["test_accuracy"] > 0.6
    kernels = quantized_kernels(result.model)
    assert all(len(np.unique(k)) == 3 for k in kernels.values())
    layer = result.model.get_layer("fc1")
    assert float(layer.w_p) != float(layer.w_n)  # the two scales are learned separately


def test_ternarize_and_binarize_a_trained_model():
    ds = data.load("digits", batch_size=64)
    model = models.build("lenet300_100", ds.info.image_shape, 10)
    x = ds.preprocess(ds.arrays["x_test"][:16])
    tern = ternarize(model, threshold=0.1, keep_float=["logits"])
    assert isinstance(tern.get_layer("fc1"), TernaryDense) and type(tern.get_layer("logits")) is L.Dense
    fc1 = model.get_layer("fc1").kernel.numpy()
    np.testing.assert_array_equal(tern.get_layer("fc1").kernel.numpy(), fc1)
    # The scales start at the mean magnitude above the threshold.
    above = np.abs(fc1)[np.abs(fc1) > 0.1 * np.abs(fc1).max()]
    assert float(tern.get_layer("fc1").w_p) == pytest.approx(above.mean(), rel=1e-5)
    h = np.maximum(np.reshape(x, (16, -1)) @ tern.get_layer("fc1").quantized_kernel().numpy()
                   + model.get_layer("fc1").bias.numpy(), 0)
    h = np.maximum(h @ tern.get_layer("fc2").quantized_kernel().numpy() + model.get_layer("fc2").bias.numpy(), 0)
    want = h @ model.get_layer("logits").kernel.numpy() + model.get_layer("logits").bias.numpy()
    np.testing.assert_allclose(tern(x).numpy(), want, rtol=1e-4, atol=1e-4)
    binary = binarize(model)
    assert all(len(np.unique(k)) == 2 for k in quantized_kernels(binary).values())
    with pytest.raises(ConfigError, match="no layer"):
        ternarize(model, keep_float=["nope"])


def test_training_steps_reduce_the_loss():
    ds = data.load("digits", batch_size=64)
    tf.keras.utils.set_random_seed(0)
    model = models.build("binary_lenet300_100", ds.info.image_shape, 10)
    from cs231n_tf.compress.distill import fine_tune

    history = []
    fine_tune(model, lambda e: ds.train_epoch(e, 0), 2, 1e-3, history=history)
    assert history[1] < history[0]
    assert ternary.binary_lenet300_100 is models.get_spec("binary_lenet300_100").builder
