"""Lecture 6's initialisation experiment, reproduced numerically (10 layers x 500 units, batch 1000)."""

import numpy as np
import pytest
import tensorflow as tf

import cs231n_tf  # noqa: F401
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.train.activation_stats import (
    activation_stats,
    deep_net,
    format_table,
    layer_activations,
    plot_histograms,
)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((1000, 500)).astype(np.float32)


def stds(stats):
    return np.array([s.std for s in stats])


def test_tanh_small_init_collapses_to_zero(x):
    stats = activation_stats(deep_net(activation="tanh", init="small"), x)
    s = stds(stats)
    assert [r.name for r in stats] == [f"layer{i}" for i in range(1, 11)]
    # Each layer multiplies the std by about 0.01 * sqrt(500) = 0.22 (tanh is linear near 0).
    assert s[0] == pytest.approx(0.01 * np.sqrt(500), rel=0.05)
    np.testing.assert_allclose(s[1:] / s[:-1], 0.01 * np.sqrt(500), rtol=0.05)
    assert s[-1] < 1e-6
    # The backward pass shrinks by the same factor per layer, so early gradients all but vanish.
    grads = np.array([r.grad_std for r in stats[:-1]])
    assert np.all((grads[:-1] / grads[1:] > 0.15) & (grads[:-1] / grads[1:] < 0.3))
    assert grads[0] < 1e-5


def test_tanh_large_init_saturates(x):
    acts = layer_activations(deep_net(activation="tanh", init="large"), x)
    saturated = [np.mean(np.abs(a) > 0.99) for _, a, _ in acts]
    # Pre-activations have std ~ sqrt(500) = 22, so P(|z| < atanh(0.99) = 2.65) is about 0.095.
    assert min(saturated[1:]) > 0.88
    assert min(np.std(a) for _, a, _ in acts) > 0.95


def test_tanh_xavier_stays_healthy(x):
    s = stds(activation_stats(deep_net(activation="tanh", init="xavier"), x))
    assert 0.5 < s[0] < 0.75
    assert 0.15 < s[-1] < 0.4
    assert np.all(np.diff(s) < 0)  # tanh's slope < 1 still shrinks it, slowly


def test_relu_he_keeps_the_scale_and_xavier_halves_the_variance(x):
    he = stds(activation_stats(deep_net(activation="relu", init="he"), x, include_gradients=False))
    assert 1 / 3 < he[-1] / he[0] < 3
    stats = activation_stats(deep_net(activation="relu", init="xavier"), x)
    xavier = stds(stats)
    assert xavier[-1] / xavier[0] < 0.1
    # Variance halves per layer: the std ratio is about 1/sqrt(2).
    assert np.median(xavier[1:] / xavier[:-1]) == pytest.approx(2**-0.5, rel=0.1)
    assert stats[0].grad_std is not None


def test_records_histograms_and_plot(x, tmp_path):
    model = deep_net(num_layers=3, width=40, activation="relu", init="he", seed=7)
    batch = x[:200, :40]
    stats = activation_stats(model, batch, bins=20)
    acts = layer_activations(model, batch, include_gradients=True)
    for record, (name, a, g) in zip(stats, acts):
        assert record.name == name
        assert record.mean == pytest.approx(float(a.mean()), rel=1e-5)
        assert record.hist_counts.sum() == a.size and len(record.hist_edges) == 21
        assert record.grad_std == pytest.approx(float(g.std()), rel=1e-5)
    assert stats[-1].grad_std == 0.0  # the upstream gradient of sum(outputs) is all ones

    # The gradient of sum(outputs) w.r.t. layer 2 is W3 (ReLU-masked) applied to ones.
    w3 = model.get_layer("layer3").get_weights()[0]
    mask = (acts[2][1] > 0).astype(np.float32)
    np.testing.assert_allclose(acts[1][2], mask @ w3.T, rtol=1e-5, atol=1e-6)

    path = tmp_path / "hist.png"
    plot_histograms(stats, path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    plot_histograms(model, batch, str(tmp_path / "from_model.png"))
    assert (tmp_path / "from_model.png").exists()
    assert format_table(stats).splitlines()[2].startswith("| layer1 |")


def test_bad_inputs(x):
    class Subclassed(tf.keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(InputTypeError, match="functional or Sequential"):
        activation_stats(Subclassed(), x)
    with pytest.raises(ConfigError, match="init"):
        deep_net(init="huge")
    with pytest.raises(ConfigError, match="num_layers"):
        deep_net(num_layers=0)
    with pytest.raises(ConfigError, match="batch x"):
        plot_histograms(deep_net(num_layers=1, width=4), path="unused.png")
