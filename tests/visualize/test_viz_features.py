"""Receptive fields against a hand computation and the gradient's support; filters, activations, patches."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import visualize
from cs231n_tf.errors import ConfigError


def _chain():
    tf.keras.utils.set_random_seed(0)
    init = tf.keras.initializers.RandomUniform(0.1, 1.0)  # positive weights: no cancellation in the support
    return tf.keras.Sequential([
        tf.keras.Input((32, 32, 3)),
        tf.keras.layers.Conv2D(4, 3, padding="valid", kernel_initializer=init, name="c1"),
        tf.keras.layers.AveragePooling2D(2, name="p1"),
        tf.keras.layers.Conv2D(4, 3, padding="same", kernel_initializer=init, name="c2"),
        tf.keras.layers.Conv2D(4, 5, strides=2, padding="same", kernel_initializer=init, name="c3"),
    ])


def test_receptive_field_matches_the_hand_computation():
    model = _chain()
    # c1: r=3 j=1 start=0; p1: r=4 j=2; c2 (in 15, same, pad 1): r=8 start=-2; c3 (in 15 -> 8, pad 2): r=16
    # start=-6 j=4.
    assert visualize.receptive_field(model, "c1") == visualize.ReceptiveField((3, 3), (1, 1), (0, 0))
    assert visualize.receptive_field(model, "p1") == visualize.ReceptiveField((4, 4), (2, 2), (0, 0))
    assert visualize.receptive_field(model, "c2") == visualize.ReceptiveField((8, 8), (2, 2), (-2, -2))
    field = visualize.receptive_field(model, "c3")
    assert field == visualize.ReceptiveField((16, 16), (4, 4), (-6, -6))
    assert field.box(0, 0, (32, 32)) == (0, 0, 10, 10)
    assert field.box(3, 5, (32, 32)) == (6, 14, 22, 30)


@pytest.mark.parametrize("layer,pos", [("c2", (4, 9)), ("c3", (3, 5)), ("c3", (0, 7))])
def test_receptive_field_box_is_the_support_of_the_gradient(layer, pos):
    model = _chain()
    sub = tf.keras.Model(model.inputs, model.get_layer(layer).output)
    x = tf.constant(np.random.default_rng(0).random((1, 32, 32, 3), np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = sub(x)[0, pos[0], pos[1], 0]
    rows, cols = np.nonzero(np.abs(tape.gradient(out, x).numpy()[0]).sum(-1))
    box = visualize.receptive_field(model, layer).box(*pos, (32, 32))
    assert (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1) == box


def test_filter_grid_tiles_each_kernel_scaled_to_unit_range():
    model = _chain()
    grid = visualize.filter_grid(model)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1, 3)
    w = model.get_layer("c1").kernel.numpy()[..., 3]
    np.testing.assert_allclose(grid[4:7, 4:7], (w - w.min()) / (w.max() - w.min()), rtol=1e-6)


def test_activations_and_max_activating_patches():
    model = _chain()
    x = np.random.default_rng(1).random((3, 32, 32, 3)).astype(np.float32)
    acts = visualize.activations(model, x, "c2")
    assert acts.shape == (3, 15, 15, 4)
    patches = visualize.max_activating_patches(model, x, "c2", channel=1, top=3)
    assert [p["activation"] for p in patches] == sorted(acts[..., 1].ravel())[::-1][:3]
    for p in patches:
        n, (i, j) = p["image"], p["position"]
        assert acts[n, i, j, 1] == p["activation"]
        t, l, b, r = p["box"]
        np.testing.assert_array_equal(p["patch"], x[n, t:b, l:r])
    with pytest.raises(ConfigError, match="unknown layer 'nope'; layers: c1, p1, c2, c3"):
        visualize.activations(model, x, "nope")
