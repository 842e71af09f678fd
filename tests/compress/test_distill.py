import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import data, models
from cs231n_tf.compress.distill import (distill, distillation_loss, dsd, fine_tune, magnitude_masks,
                                        prunable_kernels, sparse_train)
from cs231n_tf.errors import ConfigError

L = tf.keras.layers


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", batch_size=64)


def epochs_of(ds):
    return lambda e: ds.train_epoch(e, 0)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_distillation_loss_by_hand():
    s = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t = np.array([[2.0, 1.0, 0.0], [1.0, 0.0, 2.5]])
    y = np.array([1, 2])
    temp, alpha = 3.0, 0.7
    p, q = softmax(t / temp), softmax(s / temp)
    soft = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))
    hard = np.mean(-np.log(softmax(s)[np.arange(2), y]))
    want = alpha * temp ** 2 * soft + (1 - alpha) * hard
    got = distillation_loss(tf.constant(s, tf.float32), tf.constant(t, tf.float32), y, temp, alpha)
    assert float(got) == pytest.approx(want, rel=1e-5)
    # alpha = 0 is plain cross-entropy; a student equal to its teacher has no soft loss.
    assert float(distillation_loss(s, t, y, temp, 0.0)) == pytest.approx(hard, rel=1e-5)
    assert float(distillation_loss(t, t, y, temp, 1.0)) == pytest.approx(0.0, abs=1e-6)


def test_t_squared_scaling_keeps_the_gradient_size():
    # Hinton et al. sec. 2.1: at high T with zero-mean logits, d(soft CE)/dz_i ~ (z_i - v_i) / (N T^2);
    # the T^2 factor makes the gradient (z - v) / N, independent of T.
    rng = np.random.default_rng(0)
    s = rng.normal(size=(1, 5))
    t = rng.normal(size=(1, 5))
    s, t = s - s.mean(), t - t.mean()
    for temp in (20.0, 80.0):
        z = tf.Variable(s, dtype=tf.float32)
        with tf.GradientTape() as tape:
            loss = distillation_loss(z, tf.constant(t, tf.float32), [0], temp, 1.0)
        grad = tape.gradient(loss, z).numpy()
        np.testing.assert_allclose(grad, (s - t) / 5, atol=0.02 * np.abs(s - t).max())
    for temp in (1.0, 2.0, 5.0):  # the loss is T^2 times the KL divergence of the softened outputs
        p, q = softmax(t / temp), softmax(s / temp)
        kl = float(np.sum(p * np.log(p / q)))
        assert float(distillation_loss(s, t, [0], temp, 1.0)) == pytest.approx(temp ** 2 * kl, rel=1e-4)


def test_student_learns_from_teacher(digits):
    teacher = models.build("lenet300_100", digits.info.image_shape, 10)
    fine_tune(teacher, epochs_of(digits), 2, 3e-3)
    tf.keras.utils.set_random_seed(1)
    student = models.build("two_layer_net", digits.info.image_shape, 10, hidden_dim=16)
    history = []
    out = distill(teacher, student, epochs_of(digits), 3, temperature=4.0, alpha=0.9, lr=1e-2, history=history)
    assert out is student
    assert len(history) == 3 and history[2] < history[0]
    x, y = next(iter(digits.split("test", batch_size=400)))
    agree = np.mean(np.argmax(student(x), -1) == np.argmax(teacher(x), -1))
    assert agree > 0.7


def test_distill_rejects_bad_arguments(digits):
    a = models.build("two_layer_net", digits.info.image_shape, 10, hidden_dim=4)
    b = models.build("two_layer_net", digits.info.image_shape, 5, hidden_dim=4)
    with pytest.raises(ConfigError, match="classes"):
        distill(a, b, epochs_of(digits), 1)
    with pytest.raises(ConfigError, match="temperature"):
        distill(a, a, epochs_of(digits), 1, temperature=0)
    with pytest.raises(ConfigError, match="alpha"):
        distill(a, a, epochs_of(digits), 1, alpha=1.5)


def test_magnitude_masks_prune_exactly_the_smallest():
    inputs = L.Input((4,))
    model = tf.keras.Model(inputs, L.Dense(3, name="fc")(inputs))
    w = np.arange(12, dtype=np.float32).reshape(4, 3) - 5.5  # |w| distinct except symmetric pairs
    model.get_layer("fc").kernel.assign(w)
    (mask,) = magnitude_masks(model, 0.5).values()
    assert int(mask.numpy().sum()) == 6
    assert np.all(np.abs(w)[mask.numpy() == 1].min() >= np.abs(w)[mask.numpy() == 0].max())
    with pytest.raises(ConfigError, match="sparsity"):
        magnitude_masks(model, 1.0)


def test_sparse_phase_keeps_masked_weights_at_zero(digits):
    model = models.build("lenet300_100", digits.info.image_shape, 10)
    fine_tune(model, lambda e: digits.train_epoch(e, 0).take(5), 1, 3e-3)
    masks = magnitude_masks(model, 0.7)
    before = {k.ref(): k.numpy() for k in prunable_kernels(model)}
    sparse_train(model, lambda e: digits.train_epoch(e, 1).take(10), masks, 1, 3e-3)
    for kernel in prunable_kernels(model):
        m = masks[kernel.ref()].numpy()
        w = kernel.numpy()
        assert np.all(w[m == 0] == 0.0)
        assert np.mean(m == 0) == pytest.approx(np.floor(0.7 * m.size) / m.size)
        assert np.mean(w[m == 1] != before[kernel.ref()][m == 1]) > 0.5  # the kept weights trained


def test_dsd_runs_three_phases(digits):
    tf.keras.utils.set_random_seed(0)
    model = models.build("lenet300_100", digits.info.image_shape, 10)
    model, report = dsd(model, lambda e: digits.train_epoch(e, 0), sparsity=0.5, dense_epochs=2,
                        sparse_epochs=1, redense_epochs=1, lr=3e-3)
    assert len(report["dense_loss"]) == 2 and len(report["sparse_loss"]) == 1 and len(report["redense_loss"]) == 1
    assert report["dense_loss"][1] < report["dense_loss"][0]
    assert all(frac >= 0.5 for frac in report["sparse_zero_fraction"].values())
    # Re-dense training lets the pruned weights grow back (a few stay 0: inputs that are always 0
    # in digits' border pixels give their weights no gradient).
    assert all(np.mean(k.numpy() == 0.0) < 0.25 for k in prunable_kernels(model))
    assert report["redense_loss"][0] < report["dense_loss"][0]
