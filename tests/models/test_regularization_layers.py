"""Issue 4's regularisation layers: DropConnect, fractional max pooling and max-norm constraints.

DropConnect is checked against the plain dense layer (test time, exactly), against its own mask
(one-hot inputs expose ``M * W / p`` entry by entry) and in expectation over many masks, with a
tolerance of five standard errors computed from the Bernoulli variance. Fractional max pooling is
checked against ``tf.nn.fractional_max_pool``'s op with the same seed and against a NumPy max
over the op's own pooling regions.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.models import complexity
from cs231n_tf.models.regularization import DropConnect, FractionalMaxPool2D, max_norm, with_max_norm
from cs231n_tf.optim.keras import get_optimizer


def _dense_twin(layer, x):
    """A plain Dense layer with ``layer``'s weights, built on ``x``."""
    dense = tf.keras.layers.Dense(layer.units, activation=layer.activation, use_bias=layer.use_bias)
    dense(x)
    dense.set_weights(layer.get_weights())
    return dense


# --------------------------------------------------------------------------- DropConnect


@pytest.mark.parametrize("per_example", [False, True])
def test_dropconnect_at_test_time_is_the_dense_layer(per_example):
    x = np.random.RandomState(0).normal(size=(5, 6)).astype(np.float32)
    layer = DropConnect(4, keep_probability=0.3, activation="relu", per_example=per_example, seed=1,
                        bias_initializer="glorot_uniform")
    out = layer(x, training=False).numpy()
    np.testing.assert_array_equal(out, _dense_twin(layer, x)(x).numpy())
    assert (out > 0).any() and (out == 0).any()  # the relu was applied to a non-trivial output
    # Inside a model, predict() runs the test-time graph too.
    inputs = tf.keras.Input((6,))
    model = tf.keras.Model(inputs, layer(inputs))
    np.testing.assert_array_equal(model.predict(x, verbose=0), out)


def test_dropconnect_shared_mask_is_inverted_and_gets_the_gradient():
    # With the identity as input, row i of the output is row i of M * W / p (+ b = 0): the mask
    # itself. d sum(y) / dW = M / p, so dropped weights get no gradient.
    n_in, units, p = 40, 30, 0.25
    layer = DropConnect(units, keep_probability=p, seed=2)
    x = tf.eye(n_in)
    layer(x)
    kernel = layer.kernel.numpy()
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        total = tf.reduce_sum(y)
    grad = tape.gradient(total, layer.kernel).numpy()
    y = y.numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], kernel[kept] / p, rtol=1e-6)
    np.testing.assert_allclose(grad, kept / p, rtol=1e-6)
    # 1200 Bernoulli(0.25) draws: the kept fraction is within 5 standard deviations of p.
    assert abs(kept.mean() - p) < 5 * math.sqrt(p * (1 - p) / kept.size)


def test_dropconnect_per_example_draws_one_mask_per_example():
    layer = DropConnect(3, keep_probability=0.5, per_example=True, seed=3)
    x = np.tile(np.eye(4, dtype=np.float32), (50, 1))  # 200 one-hot rows
    layer(x)
    y = layer(x, training=True).numpy().reshape(50, 4, 3)  # per copy: M_n * W / p
    kernel = layer.kernel.numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], np.broadcast_to(kernel / 0.5, y.shape)[kept], rtol=1e-6)
    # Different examples see different masks (a shared mask would make all 50 copies equal).
    assert len({m.tobytes() for m in kept}) > 40
    assert abs(kept.mean() - 0.5) < 5 * math.sqrt(0.25 / kept.size)


@pytest.mark.parametrize("per_example, draws", [(True, 20000), (False, 400)])
def test_dropconnect_expected_output_is_the_dense_output(per_example, draws):
    n_in, units, p = 8, 3, 0.6
    rng = np.random.RandomState(4)
    x = rng.normal(size=(1, n_in)).astype(np.float32)
    layer = DropConnect(units, keep_probability=p, per_example=per_example, seed=5, bias_initializer="ones")
    layer(x)
    dense = (x @ layer.kernel.numpy() + layer.bias.numpy())[0]
    if per_example:
        samples = layer(np.repeat(x, draws, axis=0), training=True).numpy()
    else:
        samples = np.concatenate([layer(x, training=True).numpy() for _ in range(draws)])
    # Var(y_j) = sum_i x_i^2 W_ij^2 (1 - p) / p for independent Bernoulli(p) / p masks.
    std = np.sqrt((x[0, :, None] ** 2 * layer.kernel.numpy() ** 2).sum(0) * (1 - p) / p)
    np.testing.assert_allclose(samples.std(0), std, rtol=0.15)
    assert np.all(np.abs(samples.mean(0) - dense) < 5 * std / math.sqrt(draws))


def test_dropconnect_is_reproducible_from_its_seed():
    x = np.random.RandomState(6).normal(size=(4, 5)).astype(np.float32)

    def outputs(seed):
        tf.keras.utils.set_random_seed(0)  # same initial weights for every layer
        layer = DropConnect(6, seed=seed)
        return [layer(x, training=True).numpy() for _ in range(3)]

    first, again, other = outputs(7), outputs(7), outputs(8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # a new mask on every call
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_dropconnect_keep_probability_one_is_dense_and_bad_values_are_rejected():
    x = np.random.RandomState(7).normal(size=(3, 4)).astype(np.float32)
    layer = DropConnect(2, keep_probability=1.0)
    np.testing.assert_array_equal(layer(x, training=True).numpy(), _dense_twin(layer, x)(x).numpy())
    for bad in (0.0, 1.5, "half"):
        with pytest.raises(ConfigError, match="keep_probability"):
            DropConnect(2, keep_probability=bad)
    with pytest.raises(ConfigError, match="per_example=True"):
        DropConnect(2, per_example=True)(np.zeros((2, 3, 4), np.float32))


def test_dropconnect_config_round_trip_and_model_json():
    layer = DropConnect(5, keep_probability=0.7, per_example=True, seed=11, activation="tanh",
                        kernel_constraint=max_norm(2.0))
    config = layer.get_config()
    clone = DropConnect.from_config(config)
    assert clone.get_config() == config
    assert (clone.keep_probability, clone.per_example, clone.seed, clone.units) == (0.7, True, 11, 5)
    inputs = tf.keras.Input((3,))
    model = tf.keras.Model(inputs, layer(inputs))
    restored = tf.keras.models.model_from_json(model.to_json())
    restored.set_weights(model.get_weights())
    x = np.random.RandomState(8).normal(size=(4, 3)).astype(np.float32)
    assert isinstance(restored.layers[-1], DropConnect)
    np.testing.assert_array_equal(restored(x, training=False).numpy(), model(x, training=False).numpy())


def test_dropconnect_mixed_precision():
    x = np.random.RandomState(9).normal(size=(4, 6)).astype(np.float32)
    layer = DropConnect(3, seed=1, dtype="mixed_float16")
    assert layer(x, training=True).dtype == tf.float16
    test_out = layer(x, training=False)
    assert test_out.dtype == tf.float16
    expected = x @ layer.kernel.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(test_out.numpy().astype(np.float32), expected, atol=1e-2)


def test_profile_counts_dropconnect_as_dense_and_fractional_pooling_as_pooling():
    inputs = tf.keras.Input((9, 9, 2))
    x = FractionalMaxPool2D(1.5, overlapping=False)(inputs)  # 9 -> 6
    x = tf.keras.layers.Flatten()(x)
    outputs = DropConnect(10)(x)
    prof = complexity.profile(tf.keras.Model(inputs, outputs))
    assert prof.unknown_layers == ()
    assert prof.multiply_adds == 6 * 6 * 2 * 10
    pool = next(r for r in prof.layers if r.type == "FractionalMaxPool2D")
    assert pool.kind == "pool" and pool.output_shape == (6, 6, 2)
    assert pool.elementwise_ops == 6 * 6 * 2 * 4  # 2x2 windows at ratio 1.5 without overlap


# --------------------------------------------------------------------------- fractional max pooling


def _regions_max(x, rows, cols, overlapping):
    """NumPy max over the op's pooling regions (row/col sequences are the region starts + end)."""
    n, h, w, c = x.shape
    out = np.empty((n, len(rows) - 1, len(cols) - 1, c), x.dtype)
    for i in range(len(rows) - 1):
        r1 = min(rows[i + 1] + overlapping, h)
        for j in range(len(cols) - 1):
            c1 = min(cols[j + 1] + overlapping, w)
            out[:, i, j] = x[:, rows[i]:r1, cols[j]:c1].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("pseudo_random", [True, False])
@pytest.mark.parametrize("overlapping", [True, False])
def test_fractional_pooling_test_time_is_the_op_with_the_same_seed(pseudo_random, overlapping):
    x = np.random.RandomState(10).normal(size=(2, 11, 13, 3)).astype(np.float32)
    layer = FractionalMaxPool2D(math.sqrt(2), pseudo_random=pseudo_random, overlapping=overlapping, seed=9)
    out = layer(x, training=False).numpy()
    op = tf.raw_ops.FractionalMaxPool(value=x, pooling_ratio=[1.0, math.sqrt(2), math.sqrt(2), 1.0],
                                      pseudo_random=pseudo_random, overlapping=overlapping, deterministic=True,
                                      seed=9, seed2=9)
    np.testing.assert_array_equal(out, op.output.numpy())
    rows, cols = op.row_pooling_sequence.numpy(), op.col_pooling_sequence.numpy()
    np.testing.assert_array_equal(out, _regions_max(x, rows, cols, overlapping))
    # Graham's regions: lengths floor(alpha) or ceil(alpha) = 1 or 2, covering every row.
    assert rows[0] == 0 and rows[-1] == 11 and set(np.diff(rows)) <= {1, 2}
    # Deterministic: again, and inside a tf.function.
    np.testing.assert_array_equal(layer(x, training=False).numpy(), out)
    np.testing.assert_array_equal(tf.function(lambda t: layer(t, training=False))(x).numpy(), out)


@pytest.mark.parametrize("size, ratio", [(9, 1.25), (10, math.sqrt(2)), (16, 1.5), (25, 2.0), (7, 1.0)])
def test_fractional_pooling_output_shape_matches_the_op(size, ratio):
    x = np.random.RandomState(11).normal(size=(1, size, size + 3, 2)).astype(np.float32)
    layer = FractionalMaxPool2D(ratio)
    op_shape = tf.nn.fractional_max_pool(x, [1.0, ratio, ratio, 1.0], seed=1)[0].shape
    assert layer(x, training=False).shape == op_shape
    assert layer(x, training=True).shape == op_shape
    assert tuple(layer.compute_output_shape(x.shape)) == tuple(op_shape)
    inputs = tf.keras.Input((size, size + 3, 2))
    assert tuple(layer(inputs).shape[1:]) == tuple(op_shape[1:])


def test_fractional_pooling_training_draws_new_regions_and_routes_the_gradient():
    x = tf.constant(np.random.RandomState(12).normal(size=(2, 16, 16, 3)).astype(np.float32))
    layer = FractionalMaxPool2D(math.sqrt(2), pseudo_random=False, overlapping=True, seed=4)
    outs = [layer(x, training=True).numpy() for _ in range(6)]
    assert len({o.tobytes() for o in outs}) > 1
    assert all(np.isin(o, x.numpy()).all() for o in outs)  # every output is one of the inputs
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        total = tf.reduce_sum(y)
    grad = tape.gradient(total, x).numpy()
    # Each output passes a gradient of 1 to its (single) maximum.
    assert grad.sum() == pytest.approx(y.shape.num_elements())
    np.testing.assert_array_equal(grad, np.round(grad))


def test_fractional_pooling_mixed_precision_and_config():
    x = np.random.RandomState(13).normal(size=(1, 8, 8, 2)).astype(np.float16)
    layer = FractionalMaxPool2D(1.6, pseudo_random=False, overlapping=False, seed=3, dtype="mixed_float16")
    out = layer(x, training=False)
    assert out.dtype == tf.float16 and out.shape == (1, 5, 5, 2)
    clone = FractionalMaxPool2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_array_equal(clone(x, training=False).numpy(), out.numpy())


@pytest.mark.parametrize("kwargs, error, match", [
    ({"pooling_ratio": 0.5}, ConfigError, r"\[1, 2\]"),
    ({"pooling_ratio": 3}, ConfigError, r"\[1, 2\]"),
    ({"pooling_ratio": "wide"}, InputTypeError, "pooling_ratio"),
    ({"seed": 0}, ConfigError, "seed"),
])
def test_fractional_pooling_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        FractionalMaxPool2D(**kwargs)


# --------------------------------------------------------------------------- max-norm


def _small_model():
    inputs = tf.keras.Input((6, 6, 1))
    x = tf.keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = tf.keras.layers.Flatten()(x)
    outputs = tf.keras.layers.Dense(3, name="fc")(x)
    return tf.keras.Model(inputs, outputs)


def _unit_norms(model):
    return {"conv": np.sqrt((model.get_layer("conv").kernel.numpy() ** 2).sum(axis=(0, 1, 2))),
            "fc": np.linalg.norm(model.get_layer("fc").kernel.numpy(), axis=0)}


def _big_step(model, optimizer):
    x = np.random.RandomState(14).normal(size=(8, 6, 6, 1)).astype(np.float32) * 5
    y = np.arange(8) % 3
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True))
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))


@pytest.mark.parametrize("optimizer", ["keras_sgd", "momentum"])
def test_max_norm_holds_after_an_optimizer_step(optimizer):
    c = 0.3
    tf.keras.utils.set_random_seed(0)
    free = _small_model()
    constrained = with_max_norm(free, c)
    # The copy starts from the same weights, projected onto ||w|| <= c.
    for layer in ("conv", "fc"):
        original = free.get_layer(layer).kernel.numpy()
        norms = _unit_norms(free)[layer]
        np.testing.assert_allclose(constrained.get_layer(layer).kernel.numpy(),
                                   original * np.minimum(1.0, c / (norms + 1e-7)), rtol=1e-5)
    _big_step(free, get_optimizer(optimizer, 1.0))
    _big_step(constrained, get_optimizer(optimizer, 1.0))
    for layer in ("conv", "fc"):
        assert _unit_norms(constrained)[layer].max() <= c * (1 + 1e-5)
        assert _unit_norms(free)[layer].max() > 1.5 * c  # without the constraint the step breaks it


def test_max_norm_with_fit_and_config():
    c = 0.5
    tf.keras.utils.set_random_seed(1)
    model = with_max_norm(_small_model(), c)
    model.compile(optimizer=tf.keras.optimizers.SGD(2.0), loss=tf.keras.losses.SparseCategoricalCrossentropy(True))
    x = np.random.RandomState(15).normal(size=(16, 6, 6, 1)).astype(np.float32) * 5
    model.fit(x, np.arange(16) % 3, batch_size=8, epochs=1, verbose=0)
    assert max(v.max() for v in _unit_norms(model).values()) <= c * (1 + 1e-5)
    rebuilt = tf.keras.Model.from_config(model.get_config())
    constraint = rebuilt.get_layer("fc").kernel_constraint
    assert isinstance(constraint, tf.keras.constraints.MaxNorm) and constraint.max_value == c
    assert rebuilt.get_layer("conv").kernel_constraint.axis == [0, 1, 2]


def test_max_norm_bad_values():
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ConfigError, match="max_value"):
            max_norm(bad)
    with pytest.raises(InputTypeError, match="max_value"):
        max_norm("big")
    with pytest.raises(InputTypeError, match="functional"):
        with_max_norm("model", 1.0)
