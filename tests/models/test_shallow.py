"""The shallow models of lecture 16's comparison: counts, and equality with closed forms / tier 1."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import models, ops
from cs231n_tf.models.shallow import Maxout, RBFLogits


def trainable_params(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


@pytest.mark.parametrize("name", ["softmax_classifier", "maxout_net", "rbf_net"])
def test_reference_parameter_counts(name):
    spec = models.get_spec(name)
    assert trainable_params(models.build(name)) == spec.reference_params


def test_maxout_layer_equals_the_tier1_op_in_values_and_gradients():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7))
    layer = Maxout(4, 3, dtype="float64")
    layer(x)
    layer.bias.assign(rng.normal(size=(4, 3)))
    xt = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        ours = layer(xt)
        ref = ops.maxout(xt, layer.kernel, layer.bias)
        weights = tf.constant(rng.normal(size=(5, 4)))
        l_ours, l_ref = tf.reduce_sum(ours * weights), tf.reduce_sum(ref * weights)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-12)
    for a, b in zip(tape.gradient(l_ours, [xt, layer.kernel, layer.bias]),
                    tape.gradient(l_ref, [xt, layer.kernel, layer.bias])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-12)


def test_rbf_logits_closed_form():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(6, 5)).astype(np.float32)
    layer = RBFLogits(3, init_precision=0.3)
    layer(x)
    centers, rho, bias = rng.normal(size=(3, 5)), rng.normal(size=(3, 5)), rng.normal(size=3)
    layer.set_weights([centers, rho, bias])
    beta = np.log1p(np.exp(rho))
    expected = bias[None] - ((x[:, None, :] - centers[None]) ** 2 * beta[None]).sum(-1)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    fresh = RBFLogits(2, init_precision=0.3)
    fresh(np.zeros((1, 4), np.float32))
    np.testing.assert_allclose(tf.nn.softplus(fresh.rho).numpy(), 0.3, rtol=1e-5)


def test_shallow_models_round_trip_through_keras_saving(tmp_path):
    for name in ("maxout_net", "rbf_net"):
        model = models.build(name, (8, 8, 1), 10)
        x = np.random.default_rng(2).uniform(size=(3, 8, 8, 1)).astype(np.float32)
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        again = tf.keras.models.load_model(path, safe_mode=True)
        np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), atol=1e-6)
