"""VGGNet (Simonyan & Zisserman, ICLR 2015): small 3x3 filters, deeper networks (lecture 9)."""

import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.models.layers import BN_EPSILON, BN_MOMENTUM, check_probability
from cs231n_tf.models.registry import check_input_shape, register

layers = tf.keras.layers

# Filters of each 3x3 convolution per stage; every stage ends in a 2x2 max pool. These are the
# paper's Table 1 configurations A, B, D and E.
_CONFIGS = {
    11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    13: ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    19: ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}

# Five 2x2 pools: the smallest input that keeps a 1x1 map after the last one.
VGG_MIN_SIZE = 32


def vgg(input_shape, num_classes, *, depth=16, batchnorm=False, dropout=0.5):
    """VGG-``depth`` (11, 13, 16 or 19 weight layers; Simonyan & Zisserman 2015, Table 1).

    Stacks of 3x3 stride-1 'same' convolutions with ReLU, a 2x2 max pool after each of the five
    stages, then fc4096 - fc4096 - fc with dropout on the first two. Three stacked 3x3 layers
    see a 7x7 region with fewer parameters and more non-linearities than one 7x7 layer.

    ``batchnorm=True`` adds batchnorm after every convolution (not in the paper; it makes the
    deep configurations trainable from scratch without the paper's staged initialisation). Those
    convolutions drop their bias, so the count is torchvision's ``vgg*_bn`` minus the conv
    biases. The flattened pool5 grows with the input (7x7x512 at 224x224); inputs must be at
    least 32x32.
    """
    input_shape = check_input_shape(input_shape, min_size=VGG_MIN_SIZE)
    if depth not in _CONFIGS:
        raise ConfigError(f"VGG depth must be one of {sorted(_CONFIGS)}, got {depth!r}")
    dropout = check_probability("dropout", dropout, high_open=True)
    inputs = layers.Input(input_shape, name="images")
    x = inputs
    for stage, filters in enumerate(_CONFIGS[depth], start=1):
        for i, f in enumerate(filters, start=1):
            name = f"conv{stage}_{i}"
            x = layers.Conv2D(f, 3, padding="same", use_bias=not batchnorm,
                              kernel_initializer="he_normal", name=name)(x)
            if batchnorm:
                x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
            x = layers.ReLU(name=f"{name}_relu")(x)
        x = layers.MaxPool2D(2, name=f"pool{stage}")(x)
    x = layers.Flatten(name="flatten")(x)
    for name in ("fc6", "fc7"):
        x = layers.Dense(4096, activation="relu", name=name)(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name=f"vgg{depth}{'_bn' if batchnorm else ''}")


_REFERENCE = "Simonyan & Zisserman 2015, Table 2 / torchvision vgg{}"


@register("vgg11", family="VGG", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=132_863_336, reference=_REFERENCE.format(11))
def vgg11(input_shape, num_classes, *, batchnorm=False, dropout=0.5):
    """VGG-11 (configuration A, Simonyan & Zisserman 2015): 133M parameters."""
    return vgg(input_shape, num_classes, depth=11, batchnorm=batchnorm, dropout=dropout)


@register("vgg13", family="VGG", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=133_047_848, reference=_REFERENCE.format(13))
def vgg13(input_shape, num_classes, *, batchnorm=False, dropout=0.5):
    """VGG-13 (configuration B, Simonyan & Zisserman 2015): 133M parameters."""
    return vgg(input_shape, num_classes, depth=13, batchnorm=batchnorm, dropout=dropout)


@register("vgg16", family="VGG", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=138_357_544, reference=_REFERENCE.format(16))
def vgg16(input_shape, num_classes, *, batchnorm=False, dropout=0.5):
    """VGG-16 (configuration D, Simonyan & Zisserman 2015): 138M parameters."""
    return vgg(input_shape, num_classes, depth=16, batchnorm=batchnorm, dropout=dropout)


@register("vgg19", family="VGG", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=143_667_240, reference=_REFERENCE.format(19))
def vgg19(input_shape, num_classes, *, batchnorm=False, dropout=0.5):
    """VGG-19 (configuration E, Simonyan & Zisserman 2015): 144M parameters."""
    return vgg(input_shape, num_classes, depth=19, batchnorm=batchnorm, dropout=dropout)
