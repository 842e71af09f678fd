"""The course's networks on the hand-written ops: gradients, scores, state, training."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from cs231n_tf.classic import FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet, accuracy, train_network
from cs231n_tf.errors import ConfigError, DataError, ShapeError
from cs231n_tf.ops.gradcheck import numerical_gradient, relative_error


# The networks' gradients are checked through the scalar loss (~1-2), whose rounding error over
# 2h = 2e-5 is ~1e-11: the two-layer test's W1 has an entry of 3.3e-5 whose centred difference is
# off by 4e-7 relative however exact the backward pass, so 1e-6 is the bound here, not 1e-7.
NET_TOL = 1e-6


def max_gradient_error(net, x, y):
    """Worst relative error between ``net.loss`` gradients and numerical ones, over all params."""
    _, grads = net.loss(x, y)
    assert set(grads) == set(net.params)
    worst = 0.0
    for name, value in list(net.params.items()):
        original = value.numpy()

        def f(w, name=name):
            net.params[name] = w
            return net.loss(x, y)[0]

        numeric = numerical_gradient(f, original)
        net.params[name] = original
        assert grads[name].shape == original.shape
        worst = max(worst, relative_error(grads[name], numeric))
    return worst


# --- NumPy references (no TensorFlow) ------------------------------------------------------------

def np_fc_scores(params, bn_params, x, num_layers, normalization, eps=1e-5):
    h = x.reshape(len(x), -1)
    for i in range(1, num_layers):
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        if normalization == "batchnorm":
            mean, var = bn_params[f"running_mean{i}"], bn_params[f"running_var{i}"]
            h = params[f"gamma{i}"] * (h - mean) / np.sqrt(var + eps) + params[f"beta{i}"]
        elif normalization == "layernorm":
            mean, var = h.mean(axis=1, keepdims=True), h.var(axis=1, keepdims=True)
            h = params[f"gamma{i}"] * (h - mean) / np.sqrt(var + eps) + params[f"beta{i}"]
        h = np.maximum(h, 0)
    return h @ params[f"W{num_layers}"] + params[f"b{num_layers}"]


def np_conv_scores(params, x, filter_size):
    pad = (filter_size - 1) // 2
    n, height, width, _ = x.shape
    w1 = params["W1"]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    conv = np.zeros((n, height, width, w1.shape[3]))
    for i in range(height):
        for j in range(width):
            window = xp[:, i:i + filter_size, j:j + filter_size, :]
            conv[:, i, j, :] = np.tensordot(window, w1, axes=3) + params["b1"]
    relu = np.maximum(conv, 0)
    pooled = relu.reshape(n, height // 2, 2, width // 2, 2, -1).max(axis=(2, 4))
    hidden = np.maximum(pooled.reshape(n, -1) @ params["W2"] + params["b2"], 0)
    return hidden @ params["W3"] + params["b3"]


def numpy_params(net):
    return {k: v.numpy() for k, v in net.params.items()}


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 5)), rng.integers(0, 4, size=6)


# --- gradients -----------------------------------------------------------------------------------

def test_two_layer_net_gradients(small):
    x, y = small
    net = TwoLayerNet(input_dim=5, hidden_dim=7, num_classes=4, weight_scale=0.5, reg=0.3, dtype=tf.float64)
    assert sorted(net.params) == ["W1", "W2", "b1", "b2"]
    assert max_gradient_error(net, x, y) < NET_TOL


@pytest.mark.parametrize("normalization, dropout", [
    (None, 0.0), (None, 0.25), ("batchnorm", 0.0), ("batchnorm", 0.25), ("layernorm", 0.25),
])
def test_fully_connected_net_gradients(small, normalization, dropout):
    x, y = small
    net = FullyConnectedNet([6, 5], input_dim=5, num_classes=4, dropout=dropout, normalization=normalization,
                            reg=0.2, weight_scale=0.5, dtype=tf.float64, seed=1, dropout_seed=7)
    # Random gammas/betas/biases so their gradients are not checked only at a special point.
    rng = np.random.default_rng(1)
    for name in net.params:
        if not name.startswith("W"):
            net.params[name].assign(net.params[name] + 0.3 * rng.normal(size=net.params[name].shape))
    assert max_gradient_error(net, x, y) < NET_TOL
    expected = {"W1", "b1", "W2", "b2", "W3", "b3"}
    if normalization:
        expected |= {"gamma1", "beta1", "gamma2", "beta2"}
    assert set(net.params) == expected


def test_three_layer_convnet_gradients():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 6, 2))
    y = np.array([1, 3])
    net = ThreeLayerConvNet(input_dim=(6, 6, 2), num_filters=3, filter_size=3, hidden_dim=3, num_classes=4,
                            weight_scale=0.3, reg=0.1, dtype=tf.float64, seed=0)
    assert net.params["W1"].shape == (3, 3, 2, 3) and net.params["W2"].shape == (3 * 3 * 3, 3)
    assert max_gradient_error(net, x, y) < NET_TOL


# --- forward pass and state ----------------------------------------------------------------------

@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_scores_equal_numpy_forward(small, normalization):
    x, _ = small
    net = FullyConnectedNet([6, 5], input_dim=5, num_classes=4, normalization=normalization, dropout=0.5,
                            weight_scale=0.5, dtype=tf.float64, seed=3)
    rng = np.random.default_rng(3)
    for mapping in (net.params, net.bn_params):
        for name, value in mapping.items():
            if not name.startswith("W"):
                shift = 0.5 + rng.random(value.shape) if "var" in name else rng.normal(size=value.shape)
                value.assign(shift)
    scores = net.loss(x)
    assert scores.shape == (6, 4)
    # Test mode: no dropout, batchnorm on the running statistics.
    expected = np_fc_scores(numpy_params(net), {k: v.numpy() for k, v in net.bn_params.items()}, x, 3,
                            normalization)
    np.testing.assert_allclose(scores, expected, rtol=1e-12, atol=1e-12)


def test_two_layer_net_scores_equal_numpy_forward(small):
    x, _ = small
    net = TwoLayerNet(input_dim=5, hidden_dim=7, num_classes=4, weight_scale=0.5, dtype=tf.float64)
    np.testing.assert_allclose(net.loss(x), np_fc_scores(numpy_params(net), {}, x, 2, None), rtol=1e-12)


def test_convnet_scores_equal_numpy_forward():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4, 6, 2))
    net = ThreeLayerConvNet(input_dim=(4, 6, 2), num_filters=3, filter_size=3, hidden_dim=5, num_classes=4,
                            weight_scale=0.5, dtype=tf.float64, seed=4)
    net.params["b1"].assign(rng.normal(size=3))
    np.testing.assert_allclose(net.loss(x), np_conv_scores(numpy_params(net), x, 3), rtol=1e-11, atol=1e-12)


def test_batchnorm_running_statistics_update_and_are_used_at_test_time(small):
    x, y = small
    net = FullyConnectedNet([6], input_dim=5, num_classes=4, normalization="batchnorm", weight_scale=0.5,
                            dtype=tf.float64)
    hidden = x @ net.params["W1"].numpy() + net.params["b1"].numpy()
    net.loss(x, y)
    np.testing.assert_allclose(net.bn_params["running_mean1"].numpy(), 0.1 * hidden.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(net.bn_params["running_var1"].numpy(), 0.9 + 0.1 * hidden.var(axis=0), rtol=1e-12)
    # Test-time scores of a row do not depend on the rest of the batch.
    np.testing.assert_allclose(net.loss(x[:2]), net.loss(x)[:2], rtol=1e-12)


def test_dropout_masks(small):
    x, y = small
    common = dict(input_dim=5, num_classes=4, dropout=0.5, weight_scale=0.5, dtype=tf.float64)
    fixed = FullyConnectedNet([20], dropout_seed=3, **common)
    assert fixed.loss(x, y)[0] == fixed.loss(x, y)[0]
    fresh = FullyConnectedNet([20], **common)
    assert len({fresh.loss(x, y)[0] for _ in range(4)}) > 1
    # Test time is the identity: same scores as the net without dropout.
    plain = FullyConnectedNet([20], input_dim=5, num_classes=4, weight_scale=0.5, dtype=tf.float64)
    np.testing.assert_array_equal(plain.loss(x), fresh.loss(x))


def test_params_can_be_replaced_by_arrays(small):
    x, _ = small
    net = TwoLayerNet(input_dim=5, hidden_dim=3, num_classes=4, dtype=tf.float64)
    params = {"W1": np.eye(5, 3), "b1": np.zeros(3), "W2": np.ones((3, 4)), "b2": np.arange(4.0)}
    net.params.update(params)
    np.testing.assert_allclose(net.loss(x), np_fc_scores(params, {}, x, 2, None), rtol=1e-12)


def test_regularization_covers_weights_only(small):
    x, y = small
    net = TwoLayerNet(input_dim=5, hidden_dim=7, num_classes=4, weight_scale=0.5, dtype=tf.float64)
    base = net.loss(x, y)[0]
    net.reg = 2.0
    w_sq = sum(np.sum(net.params[k].numpy() ** 2) for k in ("W1", "W2"))
    net.params["b1"].assign(net.params["b1"] + 5.0)  # biases change the data loss only
    data_changed = net.loss(x, y)[0] - 0.5 * 2.0 * w_sq
    net.reg = 0.0
    assert data_changed == pytest.approx(net.loss(x, y)[0], rel=1e-12)
    assert base != pytest.approx(data_changed)


def test_dtype_defaults_and_seeded_init():
    a, b = TwoLayerNet(input_dim=8, hidden_dim=4, num_classes=3), TwoLayerNet(input_dim=8, hidden_dim=4, num_classes=3)
    assert a.params["W1"].dtype == tf.float64  # the course's TwoLayerNet is float64 ...
    assert FullyConnectedNet([4], input_dim=8, num_classes=3).params["W1"].dtype == tf.float32  # ... its FC net float32
    assert TwoLayerNet(input_dim=8, hidden_dim=4, num_classes=3, dtype="float32").params["W1"].dtype == tf.float32
    np.testing.assert_array_equal(a.params["W1"].numpy(), b.params["W1"].numpy())
    assert 5e-4 < a.params["W1"].numpy().std() < 2e-3  # weight_scale 1e-3
    c = TwoLayerNet(input_dim=8, hidden_dim=4, num_classes=3, seed=1)
    assert not np.array_equal(a.params["W1"].numpy(), c.params["W1"].numpy())


# --- training ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    return x - x.mean(axis=0), data.target


def test_two_layer_net_overfits_small_subset(digits):
    x, y = digits
    small = {"x_train": x[:40], "y_train": y[:40], "x_val": x[40:80], "y_val": y[40:80]}
    net = TwoLayerNet(input_dim=64, hidden_dim=50, num_classes=10, weight_scale=1e-2, seed=0)
    history = train_network(net, small, update="adam", learning_rate=1e-2, num_epochs=30, batch_size=10)
    assert history["train_acc_history"][-1] == 1.0
    assert history["loss_history"][-1] < 0.1 * history["loss_history"][0]
    # The net ends at the epoch with the best validation accuracy (the first one reaching it).
    best_epoch = history["val_acc_history"].index(history["best_val_acc"])
    assert accuracy(net, x[40:80], y[40:80]) == history["best_val_acc"]
    assert accuracy(net, x[:40], y[:40]) == history["train_acc_history"][best_epoch]


@pytest.mark.parametrize("update", ["sgd", "sgd_momentum"])
def test_train_network_history_and_best_params(digits, update):
    x, y = digits
    data = {"x_train": x[:300], "y_train": y[:300], "x_val": x[300:400], "y_val": y[300:400]}
    net = FullyConnectedNet([32], input_dim=64, num_classes=10, normalization="batchnorm", weight_scale=0.1)
    history = train_network(net, data, update=update, learning_rate=0.05, num_epochs=4, batch_size=50, seed=0,
                            lr_decay=0.9)
    assert len(history["loss_history"]) == 4 * 6
    assert len(history["val_acc_history"]) == len(history["train_acc_history"]) == 4
    assert history["best_val_acc"] == max(history["val_acc_history"]) > 0.5
    # The restored parameters are the best epoch's, running statistics included.
    assert accuracy(net, data["x_val"], data["y_val"]) == history["best_val_acc"]


def test_errors(small):
    x, y = small
    with pytest.raises(ConfigError, match="normalization must be one of None, 'batchnorm', 'layernorm'"):
        FullyConnectedNet([4], input_dim=5, num_classes=4, normalization="groupnorm")
    with pytest.raises(ConfigError, match="dropout must be a drop probability in \\[0, 1\\), got 1.0"):
        FullyConnectedNet([4], input_dim=5, num_classes=4, dropout=1.0)
    with pytest.raises(ConfigError, match="dtype must be float32 or float64, got int32"):
        TwoLayerNet(5, 4, 4, dtype=tf.int32)
    with pytest.raises(ConfigError, match="filter_size must be odd"):
        ThreeLayerConvNet(input_dim=(6, 6, 1), filter_size=4)
    with pytest.raises(ConfigError, match="H and W must be even"):
        ThreeLayerConvNet(input_dim=(7, 6, 1), filter_size=3)
    net = TwoLayerNet(5, 4, 4)
    with pytest.raises(ShapeError, match="x has 6 features per example but the network takes input_dim=5"):
        net.loss(np.zeros((2, 6)))
    with pytest.raises(ShapeError, match="x must have shape \\(N, 6, 6, 1\\)"):
        ThreeLayerConvNet(input_dim=(6, 6, 1), filter_size=3).loss(np.zeros((2, 6, 6, 3)))
    with pytest.raises(DataError, match="label 4 but the network has 4 classes"):
        net.loss(x, np.full(6, 4))
    with pytest.raises(DataError, match="keys x_train, y_train, x_val, y_val"):
        train_network(net, {"x_train": x, "y_train": y})
    with pytest.raises(ConfigError, match="update must be one of"):
        train_network(net, {"x_train": x, "y_train": y, "x_val": x, "y_val": y}, update="lbfgs")


def test_two_layer_net_matches_the_course_toy_check():
    # Assignment 1's two_layer_net notebook: its toy model, toy data and reference values.
    np.random.seed(0)
    params = {"W1": 1e-1 * np.random.randn(4, 10), "b1": np.zeros(10),
              "W2": 1e-1 * np.random.randn(10, 3), "b2": np.zeros(3)}
    np.random.seed(1)
    x = 10 * np.random.randn(5, 4)
    y = np.array([0, 1, 2, 2, 1])
    net = TwoLayerNet(input_dim=4, hidden_dim=10, num_classes=3)
    assert net.dtype == tf.float64
    for name, value in params.items():
        net.params[name].assign(value)
    correct_scores = np.array([[-0.81233741, -1.27654624, -0.70335995],
                               [-0.17129677, -1.18803311, -0.47310444],
                               [-0.51590475, -1.01354314, -0.8504215],
                               [-0.15419291, -0.48629638, -0.52901952],
                               [-0.00618733, -0.12435261, -0.15226949]])
    assert np.sum(np.abs(net.loss(x) - correct_scores)) < 1e-6
    # The notebook's reg=0.05 multiplies sum(W**2) without the 1/2 this class uses, so it is reg=0.1 here.
    net.reg = 0.1
    loss, _ = net.loss(x, y)
    assert abs(loss - 1.30378789133) < 1e-10
