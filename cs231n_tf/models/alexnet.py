"""AlexNet and ZFNet: the ImageNet winners of 2012 and 2013 (lecture 9)."""

import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.models.layers import LocalResponseNormalization, check_probability
from cs231n_tf.models.registry import check_input_shape, register

layers = tf.keras.layers

# Smallest inputs whose last pooling window still fits (derivations in the builders' docstrings).
ALEXNET_MIN_SIZE = 67
ZFNET_MIN_SIZE = 53


def _classifier(x, num_classes, dropout):
    """fc6 - ReLU - dropout - fc7 - ReLU - dropout - fc8 (logits), as in both papers."""
    x = layers.Flatten(name="flatten")(x)
    for name in ("fc6", "fc7"):
        x = layers.Dense(4096, activation="relu", name=name)(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, name="logits")(x)


@register("alexnet", family="classic convnet", canonical_input_shape=(227, 227, 3),
          canonical_num_classes=1000, reference_params=62_378_344,
          reference="Krizhevsky et al. 2012 as one tower (torchvision-style count, paper layer "
          "sizes); groups=2 gives the paper's two-tower count 60,965,224")
def alexnet(input_shape, num_classes, *, groups=1, dropout=0.5, lrn=True):
    """AlexNet (Krizhevsky, Sutskever & Hinton, NIPS 2012).

    conv11x11/4(96) - LRN - pool - conv5x5(256) - LRN - pool - conv3x3(384) - conv3x3(384) -
    conv3x3(256) - pool - fc4096 - fc4096 - fc, with ReLU after every conv/fc, overlapping 3x3
    stride-2 max pooling and dropout on fc6/fc7. Local response normalisation uses the paper's
    ``k=2, n=5, alpha=1e-4, beta=0.75`` (``lrn=False`` removes it).

    ``groups=2`` reproduces the original two-GPU layout: conv2, conv4 and conv5 see only the
    half of the channels on their own GPU (grouped convolutions), conv3 and the dense layers
    connect across; 60,965,224 parameters for 1000 classes. ``groups=1`` (default) is the
    single-tower network everyone re-implements, 62,378,344 parameters.

    The canonical input is 227x227 (the paper's "224" does not give its 55x55 conv1 output).
    The flattened pool5 grows with the input, so other sizes change fc6. Inputs must be at least
    67x67: conv1 gives 15, pool1 7, pool2 3 and pool5 1.
    """
    input_shape = check_input_shape(input_shape, min_size=ALEXNET_MIN_SIZE)
    if groups not in (1, 2):
        raise ConfigError(f"groups must be 1 (single tower) or 2 (the paper's two towers), got {groups!r}")
    dropout = check_probability("dropout", dropout, high_open=True)
    inputs = layers.Input(input_shape, name="images")
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inputs)
    if lrn:
        x = LocalResponseNormalization(name="norm1")(x)
    x = layers.MaxPool2D(3, 2, name="pool1")(x)
    x = layers.Conv2D(256, 5, padding="same", groups=groups, activation="relu", name="conv2")(x)
    if lrn:
        x = LocalResponseNormalization(name="norm2")(x)
    x = layers.MaxPool2D(3, 2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", groups=groups, activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", groups=groups, activation="relu", name="conv5")(x)
    x = layers.MaxPool2D(3, 2, name="pool5")(x)
    outputs = _classifier(x, num_classes, dropout)
    return tf.keras.Model(inputs, outputs, name="alexnet" if groups == 1 else "alexnet_two_tower")


@register("zfnet", family="classic convnet", canonical_input_shape=(224, 224, 3),
          canonical_num_classes=1000, reference_params=62_357_608,
          reference="Zeiler & Fergus 2014, Fig. 3 (computed from the layer sizes; the paper "
          "gives no total)")
def zfnet(input_shape, num_classes, *, dropout=0.5):
    """ZFNet (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014).

    AlexNet with the first layer changed from 11x11 stride 4 to 7x7 stride 2 (their
    visualisations showed aliasing and dead filters) and conv2 given stride 2, following the
    paper's Fig. 3: 224 -> conv1 110 -> pool 55 -> conv2 26 -> pool 13 -> conv3-5 13 -> pool 6.
    Pooling after layers 1 and 2 is followed by normalisation across feature maps (AlexNet's
    LRN). Dense layers as AlexNet.

    Inputs must be at least 53x53: conv1 gives 25, pool1 13, conv2 5, pool2 3 and pool5 1.
    """
    input_shape = check_input_shape(input_shape, min_size=ZFNET_MIN_SIZE)
    dropout = check_probability("dropout", dropout, high_open=True)
    inputs = layers.Input(input_shape, name="images")
    x = layers.ZeroPadding2D(1, name="conv1_pad")(inputs)
    x = layers.Conv2D(96, 7, strides=2, activation="relu", name="conv1")(x)
    x = layers.MaxPool2D(3, 2, padding="same", name="pool1")(x)
    x = LocalResponseNormalization(name="norm1")(x)
    x = layers.Conv2D(256, 5, strides=2, activation="relu", name="conv2")(x)
    x = layers.MaxPool2D(3, 2, padding="same", name="pool2")(x)
    x = LocalResponseNormalization(name="norm2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPool2D(3, 2, name="pool5")(x)
    outputs = _classifier(x, num_classes, dropout)
    return tf.keras.Model(inputs, outputs, name="zfnet")
