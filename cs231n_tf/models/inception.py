"""Inception-v4 and Inception-ResNet-v2 (Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning", AAAI 2017; lecture 9).

Both networks are built from "V" (valid, unpadded) convolutions that shrink the grid and
same-padded ones that keep it, as in the paper's figures: 299 -> 35 (stem) -> 17 -> 8 (the two
reduction blocks). Every convolution is followed by batchnorm and has no bias. By default the
batchnorm learns only its offset beta, as in TF-slim and Keras, the reference implementations:
a per-channel scale in front of a ReLU is redundant with the next convolution's weights.
``batchnorm_scale=True`` adds the scale gamma (PyTorch's affine batchnorm).
"""

import functools

import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.models.layers import BN_MOMENTUM, check_probability
from cs231n_tf.models.registry import check_input_shape, register

layers = tf.keras.layers

# Smallest input whose last reduction still leaves a 1x1 grid, for both networks. Inception-v4:
# 75 -> 37 -> 35 -> 35 -> 17 -> 15 -> 7 (stem) -> 3 -> 1; at 74 the stem ends at 6 and the
# second reduction at 0. Inception-ResNet-v2's stem also ends at 7 from 75.
INCEPTION_MIN_SIZE = 75

# TF-slim and Keras train these networks with batchnorm epsilon 1e-3 (PyTorch's default is 1e-5).
BN_EPSILON = 1e-3

# Inception-ResNet-v2's residual scales for its 35x35, 17x17 and 8x8 blocks (Keras and TF-slim;
# the paper, section 3.3, recommends 0.1-0.3).
RESNET_V2_SCALES = (0.17, 0.1, 0.2)


def _conv(x, filters, kernel_size, *, strides=1, padding="same", scale=False, activation=True, name):
    """Conv (no bias) - batchnorm (beta, and gamma if ``scale``) - [ReLU].

    ``padding="valid"`` is the paper's "V". Shapes: ``(N, H, W, C) -> (N, H', W', filters)`` with
    ``H' = H`` for ``"same"`` at stride 1 and ``H' = (H - kh) // strides + 1`` for ``"valid"``.
    """
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(scale=scale, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if activation else x


def _max_pool(x, name):
    """3x3 stride-2 valid max pool, the pooling branch of every grid reduction."""
    return layers.MaxPool2D(3, strides=2, padding="valid", name=name)(x)


def _avg_pool_proj(conv, x, filters, name):
    """3x3 stride-1 average pool, then a 1x1 projection: the pool branch of Inception-A/B/C.

    Keras's "same" average pooling averages only the in-image values at the border, as TF-slim.
    """
    x = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    return conv(x, filters, 1, name=f"{name}_proj")


def _concat(branches, name):
    return layers.Concatenate(name=name)(branches)


def _head(x, num_classes, dropout):
    """Global average pooling, dropout (the paper's keep probability 0.8) and the classifier."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, name="logits")(x)


def _conv_for(batchnorm_scale):
    """:func:`_conv` with the builder's batchnorm choice bound."""
    if not isinstance(batchnorm_scale, bool):
        raise ConfigError(f"batchnorm_scale must be True or False, got {batchnorm_scale!r}")
    return functools.partial(_conv, scale=batchnorm_scale)


# --- Inception-v4 ------------------------------------------------------------------------------

def _v4_stem(conv, x):
    """Paper Fig. 3: ``(N, 299, 299, 3) -> (N, 35, 35, 384)``.

    The figure marks the last 3x3 convolution (192) only "V"; it needs stride 2, like the max
    pool beside it, for the two to concatenate at 35x35 (TF-slim has stride 2 too).
    """
    x = conv(x, 32, 3, strides=2, padding="valid", name="stem1")
    x = conv(x, 32, 3, padding="valid", name="stem2")
    x = conv(x, 64, 3, name="stem3")
    x = _concat([_max_pool(x, "stem4_pool"), conv(x, 96, 3, strides=2, padding="valid", name="stem4_3x3")],
                "stem4_concat")
    a = conv(x, 64, 1, name="stem5a_1x1")
    a = conv(a, 96, 3, padding="valid", name="stem5a_3x3")
    b = conv(x, 64, 1, name="stem5b_1x1")
    b = conv(b, 64, (7, 1), name="stem5b_7x1")
    b = conv(b, 64, (1, 7), name="stem5b_1x7")
    b = conv(b, 96, 3, padding="valid", name="stem5b_3x3")
    x = _concat([a, b], "stem5_concat")
    return _concat([conv(x, 192, 3, strides=2, padding="valid", name="stem6_3x3"), _max_pool(x, "stem6_pool")],
                   "stem6_concat")


def _inception_a(conv, x, name):
    """Paper Fig. 4, 35x35 grid: 96 | 64-96 | 64-96-96 | avg pool-96. ``(N, H, W, 384)`` kept."""
    b0 = conv(x, 96, 1, name=f"{name}_b0_1x1")
    b1 = conv(x, 64, 1, name=f"{name}_b1_1x1")
    b1 = conv(b1, 96, 3, name=f"{name}_b1_3x3")
    b2 = conv(x, 64, 1, name=f"{name}_b2_1x1")
    b2 = conv(b2, 96, 3, name=f"{name}_b2_3x3a")
    b2 = conv(b2, 96, 3, name=f"{name}_b2_3x3b")
    return _concat([b0, b1, b2, _avg_pool_proj(conv, x, 96, f"{name}_b3")], f"{name}_concat")


def _reduction_a(conv, x, k, l, m, n, name):  # noqa: E741 - the paper's Table 1 names
    """Paper Fig. 7: 35 -> 17 with ``n`` (3x3/2 V) | ``k``-``l``-``m`` (3x3/2 V) | max pool.

    Inception-v4 uses (k, l, m, n) = (192, 224, 256, 384) (paper Table 1): 384 -> 1024 channels.
    """
    b0 = conv(x, n, 3, strides=2, padding="valid", name=f"{name}_b0_3x3")
    b1 = conv(x, k, 1, name=f"{name}_b1_1x1")
    b1 = conv(b1, l, 3, name=f"{name}_b1_3x3a")
    b1 = conv(b1, m, 3, strides=2, padding="valid", name=f"{name}_b1_3x3b")
    return _concat([b0, b1, _max_pool(x, f"{name}_b2_pool")], f"{name}_concat")


def _inception_b(conv, x, name):
    """Paper Fig. 5, 17x17 grid with factorised 7x7s. ``(N, H, W, 1024)`` kept.

    384 | 192-224(1x7)-256(7x1) | 192-192(1x7)-224(7x1)-224(1x7)-256(7x1) | avg pool-128.
    """
    b0 = conv(x, 384, 1, name=f"{name}_b0_1x1")
    b1 = conv(x, 192, 1, name=f"{name}_b1_1x1")
    b1 = conv(b1, 224, (1, 7), name=f"{name}_b1_1x7")
    b1 = conv(b1, 256, (7, 1), name=f"{name}_b1_7x1")
    b2 = conv(x, 192, 1, name=f"{name}_b2_1x1")
    b2 = conv(b2, 192, (1, 7), name=f"{name}_b2_1x7a")
    b2 = conv(b2, 224, (7, 1), name=f"{name}_b2_7x1a")
    b2 = conv(b2, 224, (1, 7), name=f"{name}_b2_1x7b")
    b2 = conv(b2, 256, (7, 1), name=f"{name}_b2_7x1b")
    return _concat([b0, b1, b2, _avg_pool_proj(conv, x, 128, f"{name}_b3")], f"{name}_concat")


def _reduction_b(conv, x, name):
    """Paper Fig. 8: 17 -> 8, 1024 -> 1536 channels.

    192-192(3x3/2 V) | 256-256(1x7)-320(7x1)-320(3x3/2 V) | max pool.
    """
    b0 = conv(x, 192, 1, name=f"{name}_b0_1x1")
    b0 = conv(b0, 192, 3, strides=2, padding="valid", name=f"{name}_b0_3x3")
    b1 = conv(x, 256, 1, name=f"{name}_b1_1x1")
    b1 = conv(b1, 256, (1, 7), name=f"{name}_b1_1x7")
    b1 = conv(b1, 320, (7, 1), name=f"{name}_b1_7x1")
    b1 = conv(b1, 320, 3, strides=2, padding="valid", name=f"{name}_b1_3x3")
    return _concat([b0, b1, _max_pool(x, f"{name}_b2_pool")], f"{name}_concat")


def _inception_c(conv, x, name):
    """Paper Fig. 6, 8x8 grid, 3x3s split into parallel 1x3 and 3x1. ``(N, H, W, 1536)`` kept.

    256 | 384-(256 1x3 || 256 3x1) | 384-448(1x3)-512(3x1)-(256 3x1 || 256 1x3) | avg pool-256.
    """
    b0 = conv(x, 256, 1, name=f"{name}_b0_1x1")
    b1 = conv(x, 384, 1, name=f"{name}_b1_1x1")
    b1 = _concat([conv(b1, 256, (1, 3), name=f"{name}_b1_1x3"), conv(b1, 256, (3, 1), name=f"{name}_b1_3x1")],
                 f"{name}_b1_concat")
    b2 = conv(x, 384, 1, name=f"{name}_b2_1x1")
    b2 = conv(b2, 448, (1, 3), name=f"{name}_b2_1x3a")
    b2 = conv(b2, 512, (3, 1), name=f"{name}_b2_3x1a")
    b2 = _concat([conv(b2, 256, (3, 1), name=f"{name}_b2_3x1b"), conv(b2, 256, (1, 3), name=f"{name}_b2_1x3b")],
                 f"{name}_b2_concat")
    return _concat([b0, b1, b2, _avg_pool_proj(conv, x, 256, f"{name}_b3")], f"{name}_concat")


@register("inception_v4", family="inception", canonical_input_shape=(299, 299, 3), canonical_num_classes=1000,
          reference_params=None,
          reference="Szegedy et al. 2017, Figs. 3-9 (no reference count with these conventions: see the "
          "docstring; batchnorm_scale=True gives the quoted 42,679,816)")
def inception_v4(input_shape, num_classes, *, dropout=0.2, batchnorm_scale=False):
    """Inception-v4 (Szegedy et al., AAAI 2017): Inception blocks without residuals, 42.6M parameters.

    Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4, Inception-ResNet and the Impact of Residual
    Connections on Learning", AAAI 2017, Figs. 3-9.

    Stem (Fig. 3), 4 x Inception-A (Fig. 4), Reduction-A (Fig. 7 with k, l, m, n = 192, 224, 256,
    384), 7 x Inception-B (Fig. 5), Reduction-B (Fig. 8), 3 x Inception-C (Fig. 6), global
    average pooling, dropout (keep probability 0.8, so ``dropout=0.2``) and the classifier.
    Shapes at the canonical input: 299x299x3 -> 35x35x384 -> 17x17x1024 -> 8x8x1536 -> logits.

    Parameters at 299x299x3 and 1000 classes: 42,648,232 trainable with the default batchnorm
    without a learned scale (TF-slim's ``inception_v4`` convention); ``batchnorm_scale=True``
    adds the 31,584 batchnorm gammas, giving 42,679,816, the widely quoted "42.7M" (pytorchcv /
    imgclsmob ``InceptionV4``, whose PyTorch batchnorm is affine, and the keras-hub
    ``inception_v4_imagenet`` preset list exactly that figure). TF-slim itself, built with its
    defaults, matches neither: it adds a 1001st class (+1,537) and an auxiliary classifier on the
    last 17x17 block (+3,359,337 by our count). We found no published count for slim's
    conventions with 1000 classes, so ``reference_params`` is left unset; the tests pin both
    figures above. Inception-C's third branch follows Fig. 6 (1x3 then 3x1); TF-slim swaps the
    two, which changes no count.

    Inputs must be at least 75x75 (:data:`INCEPTION_MIN_SIZE`); any class count works.
    """
    input_shape = check_input_shape(input_shape, min_size=INCEPTION_MIN_SIZE)
    dropout = check_probability("dropout", dropout, high_open=True)
    conv = _conv_for(batchnorm_scale)
    inputs = layers.Input(input_shape, name="images")
    x = _v4_stem(conv, inputs)
    for i in range(4):
        x = _inception_a(conv, x, f"inception_a{i + 1}")
    x = _reduction_a(conv, x, 192, 224, 256, 384, "reduction_a")
    for i in range(7):
        x = _inception_b(conv, x, f"inception_b{i + 1}")
    x = _reduction_b(conv, x, "reduction_b")
    for i in range(3):
        x = _inception_c(conv, x, f"inception_c{i + 1}")
    return tf.keras.Model(inputs, _head(x, num_classes, dropout), name="inception_v4")


# --- Inception-ResNet-v2 -------------------------------------------------------------------------

def _residual(x, branches, scale, activation, name):
    """``relu(x + scale * up(concat(branches)))`` (paper Figs. 16, 17, 19 with section 3.3's scaling).

    ``up`` is a 1x1 convolution with bias and no batchnorm that restores the input depth; the
    paper scales the residual by 0.1-0.3 before the addition because without it very wide
    residual Inception networks "died" early in training. Shapes: ``(N, H, W, C)`` kept.
    """
    mixed = _concat(branches, f"{name}_concat")
    up = layers.Conv2D(x.shape[-1], 1, use_bias=True, kernel_initializer="he_normal", name=f"{name}_up")(mixed)
    if scale != 1.0:
        up = layers.Rescaling(scale, name=f"{name}_scale")(up)
    x = layers.Add(name=f"{name}_add")([x, up])
    return layers.ReLU(name=f"{name}_relu")(x) if activation else x


def _block35(conv, x, scale, name):
    """Inception-ResNet-A on the 35x35 grid (320 channels): 32 | 32-32 | 32-48-64."""
    b0 = conv(x, 32, 1, name=f"{name}_b0_1x1")
    b1 = conv(x, 32, 1, name=f"{name}_b1_1x1")
    b1 = conv(b1, 32, 3, name=f"{name}_b1_3x3")
    b2 = conv(x, 32, 1, name=f"{name}_b2_1x1")
    b2 = conv(b2, 48, 3, name=f"{name}_b2_3x3a")
    b2 = conv(b2, 64, 3, name=f"{name}_b2_3x3b")
    return _residual(x, [b0, b1, b2], scale, True, name)


def _block17(conv, x, scale, name):
    """Inception-ResNet-B on the 17x17 grid (1088 channels): 192 | 128-160(1x7)-192(7x1)."""
    b0 = conv(x, 192, 1, name=f"{name}_b0_1x1")
    b1 = conv(x, 128, 1, name=f"{name}_b1_1x1")
    b1 = conv(b1, 160, (1, 7), name=f"{name}_b1_1x7")
    b1 = conv(b1, 192, (7, 1), name=f"{name}_b1_7x1")
    return _residual(x, [b0, b1], scale, True, name)


def _block8(conv, x, scale, name, *, activation=True):
    """Inception-ResNet-C on the 8x8 grid (2080 channels): 192 | 192-224(1x3)-256(3x1)."""
    b0 = conv(x, 192, 1, name=f"{name}_b0_1x1")
    b1 = conv(x, 192, 1, name=f"{name}_b1_1x1")
    b1 = conv(b1, 224, (1, 3), name=f"{name}_b1_1x3")
    b1 = conv(b1, 256, (3, 1), name=f"{name}_b1_3x1")
    return _residual(x, [b0, b1], scale, activation, name)


def _resnet_v2_stem(conv, x):
    """Keras/TF-slim stem: ``(N, 299, 299, 3) -> (N, 35, 35, 320)``.

    Convolutions 32(3x3/2 V), 32(3x3 V), 64(3x3), a 3x3/2 max pool, 80(1x1 V), 192(3x3 V), a
    3x3/2 max pool, then the Inception-v3-style "mixed 5b" module: 96 | 48-64(5x5) | 64-96-96 |
    avg pool-64.
    """
    x = conv(x, 32, 3, strides=2, padding="valid", name="stem1")
    x = conv(x, 32, 3, padding="valid", name="stem2")
    x = conv(x, 64, 3, name="stem3")
    x = _max_pool(x, "stem3_pool")
    x = conv(x, 80, 1, padding="valid", name="stem4")
    x = conv(x, 192, 3, padding="valid", name="stem5")
    x = _max_pool(x, "stem5_pool")
    b0 = conv(x, 96, 1, name="mixed_5b_b0_1x1")
    b1 = conv(x, 48, 1, name="mixed_5b_b1_1x1")
    b1 = conv(b1, 64, 5, name="mixed_5b_b1_5x5")
    b2 = conv(x, 64, 1, name="mixed_5b_b2_1x1")
    b2 = conv(b2, 96, 3, name="mixed_5b_b2_3x3a")
    b2 = conv(b2, 96, 3, name="mixed_5b_b2_3x3b")
    return _concat([b0, b1, b2, _avg_pool_proj(conv, x, 64, "mixed_5b_b3")], "mixed_5b_concat")


def _resnet_v2_reduction_b(conv, x, name):
    """Paper Fig. 18 as in Keras/TF-slim ("mixed 7a"): 17 -> 8, 1088 -> 2080 channels.

    256-384(3x3/2 V) | 256-288(3x3/2 V) | 256-288-320(3x3/2 V) | max pool.
    """
    b0 = conv(x, 256, 1, name=f"{name}_b0_1x1")
    b0 = conv(b0, 384, 3, strides=2, padding="valid", name=f"{name}_b0_3x3")
    b1 = conv(x, 256, 1, name=f"{name}_b1_1x1")
    b1 = conv(b1, 288, 3, strides=2, padding="valid", name=f"{name}_b1_3x3")
    b2 = conv(x, 256, 1, name=f"{name}_b2_1x1")
    b2 = conv(b2, 288, 3, name=f"{name}_b2_3x3a")
    b2 = conv(b2, 320, 3, strides=2, padding="valid", name=f"{name}_b2_3x3b")
    return _concat([b0, b1, b2, _max_pool(x, f"{name}_b3_pool")], f"{name}_concat")


def _check_scales(residual_scales):
    try:
        scales = tuple(float(s) for s in residual_scales)
    except (TypeError, ValueError):
        raise ConfigError(f"residual_scales must be three numbers in (0, 1], got {residual_scales!r}") from None
    if len(scales) != 3 or not all(0.0 < s <= 1.0 for s in scales):
        raise ConfigError(f"residual_scales must be three numbers in (0, 1], got {residual_scales!r}")
    return scales


@register("inception_resnet_v2", family="inception", canonical_input_shape=(299, 299, 3),
          canonical_num_classes=1000, reference_params=55_813_192,
          reference="Keras tf.keras.applications.InceptionResNetV2(weights=None) (the TF-slim layout): "
          "55,813,192 trainable parameters")
def inception_resnet_v2(input_shape, num_classes, *, dropout=0.2, residual_scales=RESNET_V2_SCALES,
                        batchnorm_scale=False):
    """Inception-ResNet-v2 (Szegedy et al., AAAI 2017): scaled residual Inception blocks, 55.8M parameters.

    Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4, Inception-ResNet and the Impact of Residual
    Connections on Learning", AAAI 2017, Figs. 7 and 15-19, in the layout of Keras's
    ``InceptionResNetV2`` and TF-slim's ``inception_resnet_v2``, which produced the published
    ImageNet weights.

    Stem to 35x35x320, 10 x Inception-ResNet-A (block35), Reduction-A (k, l, m, n = 256, 256,
    384, 384: 1088 channels), 20 x Inception-ResNet-B (block17), Reduction-B (2080 channels),
    9 x Inception-ResNet-C (block8) and a last block8 without scaling or ReLU, a 1x1
    convolution to 1536 channels, global average pooling, dropout (keep probability 0.8, so
    ``dropout=0.2``; Keras omits it, which changes no count) and the classifier. Each block
    adds ``residual_scales`` (35x35, 17x17, 8x8 blocks; Keras's 0.17, 0.1, 0.2) times its
    residual, the scaling of section 3.3.

    The paper's Fig. 15 draws Inception-v4's stem and inconsistent channel counts (e.g. 1154 vs
    1088 at 17x17); the implementation the authors released (TF-slim, ported by Keras) uses
    the stem of :func:`_resnet_v2_stem` and the counts above, so this builder follows it:
    55,813,192 trainable parameters at 299x299x3 and 1000 classes, exactly Keras's count
    (conv without bias, batchnorm beta only, biased 1x1 "up" convolutions).
    ``batchnorm_scale=True`` adds the batchnorm gammas.

    Inputs must be at least 75x75 (:data:`INCEPTION_MIN_SIZE`); any class count works.
    """
    input_shape = check_input_shape(input_shape, min_size=INCEPTION_MIN_SIZE)
    dropout = check_probability("dropout", dropout, high_open=True)
    scale_a, scale_b, scale_c = _check_scales(residual_scales)
    conv = _conv_for(batchnorm_scale)
    inputs = layers.Input(input_shape, name="images")
    x = _resnet_v2_stem(conv, inputs)
    for i in range(10):
        x = _block35(conv, x, scale_a, f"block35_{i + 1}")
    x = _reduction_a(conv, x, 256, 256, 384, 384, "reduction_a")
    for i in range(20):
        x = _block17(conv, x, scale_b, f"block17_{i + 1}")
    x = _resnet_v2_reduction_b(conv, x, "reduction_b")
    for i in range(9):
        x = _block8(conv, x, scale_c, f"block8_{i + 1}")
    x = _block8(conv, x, 1.0, "block8_10", activation=False)
    x = conv(x, 1536, 1, name="conv_7b")
    return tf.keras.Model(inputs, _head(x, num_classes, dropout), name="inception_resnet_v2")
