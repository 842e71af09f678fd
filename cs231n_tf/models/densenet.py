"""DenseNet (Huang, Liu, van der Maaten & Weinberger, CVPR 2017): dense connectivity (lecture 9)."""

import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.models.layers import bn_relu, conv_bn
from cs231n_tf.models.registry import check_input_shape, register

layers = tf.keras.layers

# The network's total stride (stem /4, three transitions /2).
DENSENET_MIN_SIZE = 32


def _dense_layer(x, growth_rate, bottleneck_width, name):
    """BN-ReLU-conv1x1(bottleneck_width * k)-BN-ReLU-conv3x3(k), concatenated onto its input."""
    y = bn_relu(x, name=f"{name}_0")
    y = conv_bn(y, bottleneck_width * growth_rate, 1, name=f"{name}_1")
    y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                      name=f"{name}_2_conv")(y)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def _transition(x, compression, name):
    """BN-ReLU-conv1x1 shrinking the channels by ``compression``, then 2x2 average pooling."""
    x = bn_relu(x, name=name)
    x = layers.Conv2D(int(x.shape[-1] * compression), 1, use_bias=False, kernel_initializer="he_normal",
                      name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, name=f"{name}_pool")(x)


def densenet(input_shape, num_classes, *, blocks=(6, 12, 24, 16), growth_rate=32, stem_filters=64,
             bottleneck_width=4, compression=0.5):
    """DenseNet-BC (Huang et al., "Densely Connected Convolutional Networks", CVPR 2017).

    Every layer of a dense block receives the concatenated feature maps of all layers before
    it and adds ``growth_rate`` new ones. ImageNet layout: 7x7/2 conv and 3x3/2 max pool, dense
    blocks of ``blocks`` layers (DenseNet-B bottleneck layers) separated by transitions that
    halve the channels (the "C" of DenseNet-BC) and the resolution, a final BN-ReLU, global
    average pooling and one dense layer. Parameter counts match torchvision. Inputs must be at
    least 32x32.
    """
    input_shape = check_input_shape(input_shape, min_size=DENSENET_MIN_SIZE)
    if not 0.0 < float(compression) <= 1.0:
        raise ConfigError(f"compression must be in (0, 1], got {compression!r}")
    inputs = layers.Input(input_shape, name="images")
    x = conv_bn(inputs, stem_filters, 7, strides=2, name="conv1")
    # Zero padding is safe before the max: the inputs are ReLU outputs.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPool2D(3, strides=2, name="pool1")(x)
    for b, count in enumerate(blocks, start=1):
        for i in range(count):
            x = _dense_layer(x, growth_rate, bottleneck_width, f"block{b}_layer{i + 1}")
        if b < len(blocks):
            x = _transition(x, compression, f"transition{b}")
    x = bn_relu(x, name="post")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name=f"densenet{sum(blocks) * 2 + 5}")


_REFERENCE = "Huang et al. 2017, Table 1 / torchvision densenet{}"


@register("densenet121", family="DenseNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=7_978_856, reference=_REFERENCE.format(121))
def densenet121(input_shape, num_classes):
    """DenseNet-121 (Huang et al. 2017): k=32, blocks (6, 12, 24, 16), 8.0M parameters."""
    return densenet(input_shape, num_classes, blocks=(6, 12, 24, 16))


@register("densenet169", family="DenseNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=14_149_480, reference=_REFERENCE.format(169))
def densenet169(input_shape, num_classes):
    """DenseNet-169 (Huang et al. 2017): k=32, blocks (6, 12, 32, 32), 14.1M parameters."""
    return densenet(input_shape, num_classes, blocks=(6, 12, 32, 32))


@register("densenet201", family="DenseNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=20_013_928, reference=_REFERENCE.format(201))
def densenet201(input_shape, num_classes):
    """DenseNet-201 (Huang et al. 2017): k=32, blocks (6, 12, 48, 32), 20.0M parameters."""
    return densenet(input_shape, num_classes, blocks=(6, 12, 48, 32))


@register("densenet161", family="DenseNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=28_681_000, reference=_REFERENCE.format(161))
def densenet161(input_shape, num_classes):
    """DenseNet-161 (Huang et al. 2017): k=48, 96 stem filters, blocks (6, 12, 36, 24), 28.7M parameters."""
    return densenet(input_shape, num_classes, blocks=(6, 12, 36, 24), growth_rate=48, stem_filters=96)
