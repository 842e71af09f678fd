import math

import pytest
import tensorflow as tf

from cs231n_tf import models
from cs231n_tf.errors import ConfigError, InputTypeError, ShapeError
from cs231n_tf.models import complexity
from cs231n_tf.models import layers as zoo_layers

L = tf.keras.layers



def by_name(prof):
    return {rec.name: rec for rec in prof.layers}


def test_lenet5_hand_counts():
    prof = complexity.profile(models.build("lenet5"))
    macs = {name: rec.multiply_adds for name, rec in by_name(prof).items() if rec.multiply_adds}
    assert macs == {
        "c1": 28 * 28 * 5 * 5 * 1 * 6,  # 117,600
        "c3": 10 * 10 * 5 * 5 * 6 * 16,  # 240,000
        "c5": 400 * 120,
        "f6": 120 * 84,
        "logits": 84 * 10,
    }
    assert prof.multiply_adds == 416_520
    assert prof.flops == 2 * 416_520
    assert prof.params == prof.total_params == 61_706
    # input + c1 + s2 + c3 + s4 + c5 + f6 + logits (tanh is fused into the layers; flatten is a view)
    values = 32 * 32 + 28 * 28 * 6 + 14 * 14 * 6 + 10 * 10 * 16 + 5 * 5 * 16 + 120 + 84 + 10
    assert prof.activation_bytes == 4 * values == 36_472
    assert by_name(prof)["s2"].elementwise_ops == 14 * 14 * 6 * 4
    assert prof.unknown_layers == ()
    assert sum(rec.params for rec in prof.layers) == prof.params


def test_three_layer_convnet_hand_counts():
    prof = complexity.profile(models.build("three_layer_convnet"))
    assert prof.multiply_adds == 32 * 32 * 7 * 7 * 3 * 32 + 16 * 16 * 32 * 100 + 100 * 10
    assert prof.dense_param_fraction == pytest.approx((8192 * 100 + 100 + 1010) / 825_046)


def conv_zoo_model():
    """One of each convolution type, with strides, padding and a dense layer on a rank-3 tensor."""
    inputs = L.Input((17, 17, 4), name="input_1")  # named: auto names depend on what ran before
    x = L.Conv2D(8, 3, strides=2, padding="same", name="strided_same")(inputs)  # 9x9x8
    x = L.Conv2D(8, 3, groups=2, name="grouped")(x)  # 7x7x8
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise")(x)  # 7x7x16
    x = L.SeparableConv2D(6, 3, strides=2, name="separable")(x)  # 3x3x6
    x = L.Conv2DTranspose(4, 3, strides=2, name="transposed")(x)  # 7x7x4
    x = L.BatchNormalization(name="bn")(x)
    x = L.Dense(7, name="dense_rank3")(x)  # 7x7x7
    x = L.Flatten(name="flatten")(x)
    outputs = L.Dense(3, name="logits")(x)
    return tf.keras.Model(inputs, outputs)


def test_every_convolution_type_by_hand():
    prof = complexity.profile(conv_zoo_model())
    recs = by_name(prof)
    assert {name: rec.multiply_adds for name, rec in recs.items()} == {
        "input_1": 0,
        "strided_same": 9 * 9 * 8 * (3 * 3 * 4),
        "grouped": 7 * 7 * 8 * (3 * 3 * 8 // 2),  # 8 input channels in 2 groups
        "depthwise": 7 * 7 * 16 * 3 * 3,
        "separable": 3 * 3 * 16 * 3 * 3 + 3 * 3 * 16 * 6,
        "transposed": 3 * 3 * 6 * (3 * 3 * 4),  # each input pixel scatters a 3x3x4 kernel
        "bn": 0,
        "dense_rank3": 7 * 7 * 4 * 7,
        "flatten": 0,
        "logits": 343 * 3,
    }
    assert recs["grouped"].output_shape == (7, 7, 8)
    assert recs["bn"].elementwise_ops == 2 * 7 * 7 * 4
    assert recs["bn"].params == 8 and recs["bn"].total_params == 16
    assert prof.params == sum([
        3 * 3 * 4 * 8 + 8,  # strided_same
        3 * 3 * 4 * 8 + 8,  # grouped: 3x3x(8/2) kernels, 8 of them
        3 * 3 * 8 * 2 + 16,  # depthwise
        3 * 3 * 16 + 16 * 6 + 6,  # separable: depthwise + pointwise + bias
        3 * 3 * 4 * 6 + 4,  # transposed
        8,  # bn gamma and beta
        4 * 7 + 7,  # dense_rank3
        343 * 3 + 3,  # logits
    ]) == 2293
    values = 17 * 17 * 4 + 9 * 9 * 8 + 7 * 7 * 8 + 7 * 7 * 16 + 3 * 3 * 6 + 7 * 7 * 4 + 7 * 7 * 7 + 3
    assert prof.activation_bytes == 4 * values
    assert complexity.profile(conv_zoo_model(), inplace_elementwise=False).activation_bytes == 4 * (values + 196)
    assert complexity.profile(conv_zoo_model(), count_input=False).activation_bytes == 4 * (values - 1156)


def test_tf_profiler_agrees_on_a_small_conv_net():
    # TensorFlow's own op-level FLOP counter on the frozen inference graph is an independent
    # reference: 2 FLOPs per multiply-add in Conv2D, DepthwiseConv2dNative and MatMul. (Grouped
    # convolutions compile to a nested XLA call it cannot see, and it counts transposed
    # convolutions as dense ones, so those two are checked by hand above.)
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    inputs = L.Input((17, 17, 4))
    x = L.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = L.Conv2D(8, 3, activation="relu")(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)
    x = L.SeparableConv2D(6, 3, strides=2)(x)
    x = L.MaxPool2D(2, padding="same")(x)
    x = L.Dense(7)(x)
    outputs = L.Dense(3)(L.Flatten()(x))
    model = tf.keras.Model(inputs, outputs)

    fn = tf.function(lambda t: model(t, training=False))
    graph = convert_variables_to_constants_v2(
        fn.get_concrete_function(tf.TensorSpec((1, 17, 17, 4), tf.float32))).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    root = tf.compat.v1.profiler.profile(graph=graph, cmd="graph", options=options)
    op_types = {op.name: op.type for op in graph.get_operations()}
    flops = {}
    stack = [root]
    while stack:
        node = stack.pop()
        kind = op_types.get(node.name)
        flops[kind] = flops.get(kind, 0) + node.float_ops
        stack.extend(node.children)
    tf_flops = flops["Conv2D"] + flops["DepthwiseConv2dNative"] + flops["MatMul"]
    by_hand = 9 * 9 * 8 * 36 + 7 * 7 * 8 * 72 + 7 * 7 * 16 * 9 + (3 * 3 * 16 * 9 + 3 * 3 * 16 * 6) \
        + 2 * 2 * 6 * 7 + 28 * 3
    assert tf_flops == complexity.profile(model).flops == 2 * by_hand == 2 * 61_020


def test_memory_conventions_and_zero_mac_layers():
    inputs = L.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", name="conv")(inputs)  # 8x8x4
    x = L.ReLU(name="relu")(x)
    pooled = L.MaxPool2D(2, name="pool")(x)  # 4x4x4
    y = L.Conv2D(4, 1, name="conv1x1")(pooled)
    y = L.Add(name="add")([pooled, y])
    y = L.Concatenate(name="concat")([y, pooled])  # 4x4x8
    y = L.GlobalAveragePooling2D(name="gap")(y)
    outputs = L.Dense(2, name="logits")(L.Dropout(0.5, name="drop")(y))
    model = tf.keras.Model(inputs, outputs)

    prof = complexity.profile(model)
    assert prof.multiply_adds == 64 * 4 * 27 + 16 * 4 * 4 + 8 * 2
    assert prof.elementwise_ops == 256 + 64 * 4 + 64 + 0 + 128
    assert [r.kind for r in prof.layers] == [
        "input", "conv", "activation", "pool", "conv", "merge", "concat", "pool", "view", "dense"]
    in_place = 192 + 256 + 64 + 64 + 8 + 2
    assert prof.activation_bytes == 4 * in_place
    separate = complexity.profile(model, inplace_elementwise=False)
    assert separate.activation_bytes == 4 * (in_place + 256 + 64 + 128)
    assert separate.multiply_adds == prof.multiply_adds
    batch = complexity.profile(model, batch_size=32)
    assert batch.multiply_adds == prof.multiply_adds
    assert batch.batch_multiply_adds == 32 * prof.multiply_adds
    assert batch.batch_activation_bytes == 32 * prof.activation_bytes


class ResidualBlock(L.Layer):
    """A subclassed block holding sublayers: the profiler has to trace it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv_a = L.Conv2D(8, 3, padding="same", name="conv_a")
        self.conv_b = L.Conv2D(8, 3, padding="same", name="conv_b")
        self.bn = L.BatchNormalization(name="bn")

    def call(self, x, training=None):
        return tf.nn.relu(x + self.bn(self.conv_b(self.conv_a(x)), training=training))


def test_nested_models_subclassed_blocks_and_shared_layers():
    # The inner model was built for any image size, so it is traced at the outer shapes.
    inner_in = L.Input((None, None, 8))
    inner = tf.keras.Model(inner_in, L.Conv2D(8, 1, name="pointwise")(inner_in), name="inner")
    fixed_in = L.Input((16, 16, 8))
    fixed = tf.keras.Model(fixed_in, L.Conv2D(2, 1, name="head")(fixed_in), name="fixed")
    inputs = L.Input((16, 16, 8))
    shared = L.Conv2D(8, 3, padding="same", name="shared")
    x = shared(shared(inputs))
    x = ResidualBlock(name="block")(x, training=False)  # a non-tensor call argument
    x = inner(x)
    x = fixed(x)
    x = L.Reshape((16, 32))(x)
    outputs = L.Bidirectional(L.LSTM(5, name="lstm"), name="bi")(x)  # a wrapper: traced
    model = tf.keras.Model(inputs, outputs)

    prof = complexity.profile(model)
    recs = [(r.name, r.multiply_adds) for r in prof.layers if r.multiply_adds]
    conv3 = 16 * 16 * 8 * 9 * 8
    assert recs == [
        ("shared", conv3), ("shared", conv3),
        ("block/conv_a", conv3), ("block/conv_b", conv3),
        ("inner/pointwise", 16 * 16 * 8 * 8),
        ("fixed/head", 16 * 16 * 2 * 8),
        ("bi/forward_lstm", 16 * 4 * (32 * 5 + 5 * 5)),
        ("bi/backward_lstm", 16 * 4 * (32 * 5 + 5 * 5)),
    ]
    assert prof.params == model.count_params() - 16  # BN moving statistics are not trainable
    assert prof.total_params == model.count_params() == sum(r.total_params for r in prof.layers)
    assert prof.unknown_layers == ()


def test_unknown_layers_are_listed_with_their_params():
    class Scale(L.Layer):
        def build(self, shape):
            self.gain = self.add_weight("gain", shape[-1:])

        def call(self, x):
            return x * self.gain

    inputs = L.Input((4, 4, 3))
    x = Scale(name="scale")(inputs)
    x = L.Lambda(lambda t: t * 2.0, name="double")(x)
    outputs = L.Dense(2, name="logits")(L.Flatten()(x))
    prof = complexity.profile(tf.keras.Model(inputs, outputs))
    assert prof.unknown_layers == ("scale", "double")
    assert by_name(prof)["scale"].params == 3
    assert prof.multiply_adds == 48 * 2
    # An unknown layer's output is assumed to be a new tensor.
    assert prof.activation_bytes == 4 * (48 + 48 + 48 + 2)


def test_zoo_custom_layers_are_known():
    inputs = L.Input((8, 8, 4))
    x = zoo_layers.LocalResponseNormalization(name="lrn")(inputs)
    short = zoo_layers.ZeroPadShortcut(8, name="shortcut")(x)  # 4x4x8
    branch = L.Conv2D(8, 3, strides=2, padding="same", name="conv")(x)
    branch = zoo_layers.StochasticDepth(0.8, name="drop")(branch)
    outputs = zoo_layers.FractalJoin(name="join")([short, branch])
    prof = complexity.profile(tf.keras.Model(inputs, outputs))
    assert prof.unknown_layers == ()
    recs = by_name(prof)
    assert recs["lrn"].elementwise_ops == (5 + 3) * 256
    assert recs["join"].elementwise_ops == 2 * 128
    assert prof.activation_bytes == 4 * (256 + 128 + 128)  # input, shortcut copy, conv


def test_register_layer_cost_validates():
    with pytest.raises(ConfigError, match="kind must be one of"):
        complexity.register_layer_cost(L.Layer, "conv")
    with pytest.raises(InputTypeError, match="Layer subclass"):
        complexity.register_layer_cost(int, "view")


def test_bad_inputs_raise_package_errors():
    with pytest.raises(InputTypeError, match="tf.keras.Model"):
        complexity.profile(L.Dense(3))
    with pytest.raises(ConfigError, match="batch_size"):
        complexity.profile(models.build("lenet5"), batch_size=0)
    inputs = L.Input((None, None, 3))
    model = tf.keras.Model(inputs, L.Conv2D(2, 3)(inputs))
    with pytest.raises(ShapeError, match="concrete input_shape"):
        complexity.profile(model)


def test_table_and_plot(tmp_path):
    rows = complexity.comparison_table(["lenet5", "three_layer_convnet"])
    assert [r.name for r in rows] == ["lenet5", "three_layer_convnet"]
    assert rows[0].multiply_adds == 416_520 and rows[0].params == 61_706
    assert rows[0].input_shape == (32, 32, 1)
    assert rows[1].published_multiply_adds is None
    text = complexity.format_table(rows)
    assert "lenet5" in text and "416.52K" in text and "5.64M" in text
    small = complexity.comparison_table(["lenet5"], input_shape=(64, 64, 1))
    assert small[0].multiply_adds > rows[0].multiply_adds
    png = complexity.plot_comparison(rows, tmp_path / "zoo.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["zoo.png"]


# ----------------------------------------------------------------- published figures (lecture 9)


@pytest.fixture(scope="module")
def vgg16():
    assert "vgg16" in models.list_models(), "zoo builder 'vgg16' is not registered"
    return models.build("vgg16")


@pytest.mark.parametrize("name", sorted(complexity.PUBLISHED_MULTIPLY_ADDS))
def test_published_multiply_adds(name, request):
    assert name in models.list_models(), f"zoo builder {name!r} is not registered"
    published, options, _ = complexity.PUBLISHED_MULTIPLY_ADDS[name]
    # VGG-16 is built once for this module (the slowest builder here).
    model = request.getfixturevalue("vgg16") if name == "vgg16" else models.build(name, **options)
    prof = complexity.profile(model)
    assert prof.unknown_layers == ()
    assert prof.multiply_adds == pytest.approx(published, rel=0.05)


def test_alexnet_single_tower_and_googlenet_true_5x5():
    # Without the paper's two-GPU grouping AlexNet's conv2, conv4 and conv5 see all channels.
    assert complexity.profile(models.build("alexnet")).multiply_adds == pytest.approx(1.14e9, rel=0.01)
    # GoogLeNet with the paper's 5x5 kernels instead of torchvision's 3x3: every "5x5" branch
    # costs H*W*reduce*filters*(25 - 9) more; (H, reduce_5x5, filters_5x5) from the paper's Table 1.
    table1 = [(28, 16, 32), (28, 32, 96), (14, 16, 48), (14, 24, 64), (14, 24, 64), (14, 32, 64),
              (14, 32, 128), (7, 32, 128), (7, 48, 128)]
    extra = sum(h * h * r * f * (25 - 9) for h, r, f in table1)
    three = complexity.profile(models.build("googlenet")).multiply_adds
    five = complexity.profile(models.build("googlenet", kernel_5x5=5)).multiply_adds
    assert five - three == extra == 84_295_680


def test_vgg16_memory_matches_the_lectures_layer_list(vgg16):
    prof = complexity.profile(vgg16)
    assert prof.params == 138_357_544
    assert prof.activation_bytes == 4 * complexity.LECTURE_VGG16_LISTED_VALUES
    # "Most memory is in early CONV, most params are in late FC" (lecture 9): up to conv3_2.
    early = 224 * 224 * 3 + 2 * 224 * 224 * 64 + 112 * 112 * 64 + 2 * 112 * 112 * 128 \
        + 56 * 56 * 128 + 2 * 56 * 56 * 256
    assert prof.early_memory_fraction == pytest.approx(early / complexity.LECTURE_VGG16_LISTED_VALUES)
    assert prof.dense_param_fraction == pytest.approx((25088 * 4096 + 4096 * 4096 + 4096 * 1000
                                                       + 4096 + 4096 + 1000) / 138_357_544)
    conv_relus = 2 * (224 * 224 * 64) + 2 * (112 * 112 * 128) + 3 * (56 * 56 * 256) \
        + 3 * (28 * 28 * 512) + 3 * (14 * 14 * 512)
    separate = complexity.profile(vgg16, inplace_elementwise=False)
    assert separate.activation_bytes - prof.activation_bytes == 4 * conv_relus
    note = complexity.vgg16_memory_note(vgg16)
    assert "15.24M values = 61.0 MB" in note and "28.79M values = 115.1 MB" in note
    assert math.isclose(complexity.LECTURE_VGG16_VALUES * 4 / 1e6, 96)
