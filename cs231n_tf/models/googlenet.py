"""GoogLeNet / Inception v1 (Szegedy et al., CVPR 2015): inception modules, no big FC layers."""

import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.models.layers import (LocalResponseNormalization, ceil_max_pool, check_probability, conv_bn,
                                     inception_module)
from cs231n_tf.models.registry import check_input_shape, register

layers = tf.keras.layers

# The network's total stride; every ceil-mode pool still has a full window at this size.
GOOGLENET_MIN_SIZE = 32
# The auxiliary heads' 5x5 average pool needs a 5x5 map at inception 4a/4d:
# 79 -> conv1 40 -> pool1 20 -> pool2 10 -> pool3 5.
GOOGLENET_AUX_MIN_SIZE = 79

# Paper Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

# Recommended weight of each auxiliary loss in the total training loss (paper, section 5).
AUX_LOSS_WEIGHT = 0.3


def _aux_head(x, num_classes, batchnorm, name):
    """Auxiliary classifier (paper section 5): 5x5/3 avg pool - 1x1 conv(128) - fc1024 - dropout 0.7 - fc."""
    x = layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = conv_bn(x, 128, 1, batchnorm=batchnorm, name=f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, name=f"{name}_logits")(x)


def _lrn(x, name):
    # BVLC GoogLeNet's LRN: local_size 5, alpha 1e-4 (Caffe divides it by the size), k=1.
    return LocalResponseNormalization(size=5, bias=1.0, alpha=1e-4 / 5, beta=0.75, name=name)(x)


@register("googlenet", family="inception", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=6_624_904,
          reference="torchvision googlenet (aux_logits=False): conv-BN without bias, 3x3 kernel in the "
          "'5x5' branch")
def googlenet(input_shape, num_classes, *, aux_logits=False, batchnorm=True, kernel_5x5=3, dropout=0.4):
    """GoogLeNet (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015).

    Stem (7x7/2 conv, pool, 1x1 and 3x3 convs, pool), nine inception modules with 1x1
    bottlenecks (Table 1) and three more pools, then global average pooling, dropout and one
    dense layer — no fc6/fc7, hence ~12x fewer parameters than AlexNet.

    Defaults match torchvision's ``googlenet`` (6,624,904 parameters): batchnorm after every
    convolution (convolutions without bias) and a 3x3 kernel in the "5x5" branch, a slip kept in
    torchvision for its pretrained weights. ``kernel_5x5=5`` restores the paper's 5x5 kernel
    (7,005,832 parameters); ``batchnorm=False`` gives the paper's plain ReLU convolutions with
    bias and its two LRN layers. Both together are the paper's network: 6,998,552 parameters
    (BVLC GoogLeNet without the auxiliary heads). Pools use ceil-mode output sizes as in the
    Caffe original.

    ``aux_logits=True`` adds the two auxiliary classifiers after inception 4a and 4d, and the
    model returns ``[logits, aux1_logits, aux2_logits]``. They exist for training only: the
    trainer should minimise ``loss(logits) + AUX_LOSS_WEIGHT * (loss(aux1) + loss(aux2))``
    (0.3, paper section 5) and predict with ``logits`` alone (or rebuild with
    ``aux_logits=False`` and load the weights by name). They need inputs of at least 79x79.
    Without them inputs must be at least 32x32.
    """
    min_size = GOOGLENET_AUX_MIN_SIZE if aux_logits else GOOGLENET_MIN_SIZE
    input_shape = check_input_shape(input_shape, min_size=min_size)
    if kernel_5x5 not in (3, 5):
        raise ConfigError(f"kernel_5x5 must be 3 (torchvision) or 5 (the paper), got {kernel_5x5!r}")
    dropout = check_probability("dropout", dropout, high_open=True)

    def module(x, key):
        return inception_module(x, *_MODULES[key], batchnorm=batchnorm, kernel_5x5=kernel_5x5,
                                name=f"inception{key}")

    inputs = layers.Input(input_shape, name="images")
    x = conv_bn(inputs, 64, 7, strides=2, batchnorm=batchnorm, name="conv1")
    x = ceil_max_pool(x, 3, 2, name="pool1")
    if not batchnorm:
        x = _lrn(x, "norm1")
    x = conv_bn(x, 64, 1, batchnorm=batchnorm, name="conv2")
    x = conv_bn(x, 192, 3, batchnorm=batchnorm, name="conv3")
    if not batchnorm:
        x = _lrn(x, "norm2")
    x = ceil_max_pool(x, 3, 2, name="pool2")
    x = module(x, "3a")
    x = module(x, "3b")
    x = ceil_max_pool(x, 3, 2, name="pool3")
    x = module(x, "4a")
    aux1 = _aux_head(x, num_classes, batchnorm, "aux1") if aux_logits else None
    x = module(x, "4b")
    x = module(x, "4c")
    x = module(x, "4d")
    aux2 = _aux_head(x, num_classes, batchnorm, "aux2") if aux_logits else None
    x = module(x, "4e")
    x = ceil_max_pool(x, 2, 2, name="pool4")
    x = module(x, "5a")
    x = module(x, "5b")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    outputs = [logits, aux1, aux2] if aux_logits else logits
    return tf.keras.Model(inputs, outputs, name="googlenet")
