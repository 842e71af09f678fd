"""SqueezeNet (Iandola et al. 2016): AlexNet accuracy with 50x fewer parameters (lecture 9)."""

import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.models.layers import ceil_max_pool, check_probability
from cs231n_tf.models.registry import check_input_shape, register

layers = tf.keras.layers


def _conv_relu(x, filters, kernel_size, name, strides=1, padding="same"):
    return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, activation="relu",
                         kernel_initializer="he_normal", name=name)(x)


def fire_module(x, squeeze, expand, *, name):
    """Fire module: a 1x1 "squeeze" layer feeding parallel 1x1 and 3x3 "expand" layers.

    The squeeze keeps the 3x3 filters' input depth small (paper strategy 2); half the expand
    filters are 1x1 (strategy 1). ReLU after every convolution, no batchnorm.
    Shapes: ``(N, H, W, C) -> (N, H, W, 2 * expand)``.
    """
    s = _conv_relu(x, squeeze, 1, f"{name}_squeeze1x1")
    e1 = _conv_relu(s, expand, 1, f"{name}_expand1x1")
    e3 = _conv_relu(s, expand, 3, f"{name}_expand3x3")
    return layers.Concatenate(name=f"{name}_concat")([e1, e3])


def squeezenet(input_shape, num_classes, *, version="1.0", dropout=0.5):
    """SqueezeNet ``version`` "1.0" or "1.1" (Iandola et al., "SqueezeNet: AlexNet-level accuracy
    with 50x fewer parameters and <0.5MB model size", 2016).

    A stem convolution, eight fire modules with three ceil-mode 3x3/2 max pools between them,
    dropout, and a 1x1 convolution to one map per class followed by ReLU and global average
    pooling — no dense layer at all. Version 1.1 (from the authors' repository) uses a 3x3 stem
    with 64 filters and pools earlier, for 2.4x less computation at the same accuracy. Counts
    match torchvision. The outputs pass the paper's final ReLU, so these logits are never
    negative.

    Inputs must be at least 29x29 (version 1.0) or 25x25 (1.1): the stem's output must be 12
    pixels for every pool window to fit (12 -> 6 -> 3 -> 1).
    """
    if version not in ("1.0", "1.1"):
        raise ConfigError(f"version must be '1.0' or '1.1', got {version!r}")
    input_shape = check_input_shape(input_shape, min_size=29 if version == "1.0" else 25)
    dropout = check_probability("dropout", dropout, high_open=True)
    inputs = layers.Input(input_shape, name="images")
    if version == "1.0":
        x = _conv_relu(inputs, 96, 7, "conv1", strides=2, padding="valid")
        x = ceil_max_pool(x, 3, 2, name="pool1")
        x = fire_module(x, 16, 64, name="fire2")
        x = fire_module(x, 16, 64, name="fire3")
        x = fire_module(x, 32, 128, name="fire4")
        x = ceil_max_pool(x, 3, 2, name="pool4")
        x = fire_module(x, 32, 128, name="fire5")
        x = fire_module(x, 48, 192, name="fire6")
        x = fire_module(x, 48, 192, name="fire7")
        x = fire_module(x, 64, 256, name="fire8")
        x = ceil_max_pool(x, 3, 2, name="pool8")
        x = fire_module(x, 64, 256, name="fire9")
    else:
        x = _conv_relu(inputs, 64, 3, "conv1", strides=2, padding="valid")
        x = ceil_max_pool(x, 3, 2, name="pool1")
        x = fire_module(x, 16, 64, name="fire2")
        x = fire_module(x, 16, 64, name="fire3")
        x = ceil_max_pool(x, 3, 2, name="pool3")
        x = fire_module(x, 32, 128, name="fire4")
        x = fire_module(x, 32, 128, name="fire5")
        x = ceil_max_pool(x, 3, 2, name="pool5")
        x = fire_module(x, 48, 192, name="fire6")
        x = fire_module(x, 48, 192, name="fire7")
        x = fire_module(x, 64, 256, name="fire8")
        x = fire_module(x, 64, 256, name="fire9")
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = _conv_relu(x, num_classes, 1, "conv10")
    outputs = layers.GlobalAveragePooling2D(name="logits")(x)
    return tf.keras.Model(inputs, outputs, name=f"squeezenet{version.replace('.', '_')}")


@register("squeezenet1_0", family="SqueezeNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=1_248_424, reference="Iandola et al. 2016 / torchvision squeezenet1_0")
def squeezenet1_0(input_shape, num_classes, *, dropout=0.5):
    """SqueezeNet 1.0 (Iandola et al. 2016): 1.25M parameters."""
    return squeezenet(input_shape, num_classes, version="1.0", dropout=dropout)


@register("squeezenet1_1", family="SqueezeNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=1_235_496, reference="SqueezeNet v1.1 (authors' repository) / torchvision squeezenet1_1")
def squeezenet1_1(input_shape, num_classes, *, dropout=0.5):
    """SqueezeNet 1.1 (Iandola et al.): 1.24M parameters and 2.4x less computation than 1.0."""
    return squeezenet(input_shape, num_classes, version="1.1", dropout=dropout)
