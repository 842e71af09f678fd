"""Residual networks and their descendants (lecture 9).

* ``resnet18`` ... ``resnet152``: He et al. 2015 on ImageNet, torchvision-compatible (v1.5:
  the bottleneck's stride sits on its 3x3 convolution).
* ``preact_resnet18`` ... ``preact_resnet152``: He et al. 2016, identity mappings with
  pre-activation units.
* ``resnet20`` ... ``resnet110``: He et al. 2015 section 4.2, the CIFAR-10 networks.
* ``wrn_16_4``, ``wrn_28_10``, ``wrn_40_4``: wide residual networks (Zagoruyko & Komodakis 2016).
* ``resnet110_sd``: ResNet-110 trained with stochastic depth (Huang et al. 2016).
"""

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError
from cs231n_tf.models.layers import (StochasticDepth, ZeroPadShortcut, bn_relu, check_probability, conv_bn)
from cs231n_tf.models.registry import check_input_shape, register

layers = tf.keras.layers

# Total stride of the ImageNet networks; smaller inputs would reach the last stage as padding.
IMAGENET_MIN_SIZE = 32
# Total stride of the CIFAR networks (two stride-2 stages).
CIFAR_MIN_SIZE = 4

# depth -> (block type, blocks per stage), He et al. 2015 Table 1.
_IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
_EXPANSION = {"basic": 1, "bottleneck": 4}


def _imagenet_depth(depth):
    if depth not in _IMAGENET_DEPTHS:
        raise ConfigError(f"ResNet depth must be one of {sorted(_IMAGENET_DEPTHS)}, got {depth!r}")
    return _IMAGENET_DEPTHS[depth]


def _stem(inputs):
    """7x7/2 conv(64) - BN - ReLU - 3x3/2 max pool: 224 -> 56."""
    x = conv_bn(inputs, 64, 7, strides=2, name="conv1")
    # Zero padding is safe before the max: the inputs are ReLU outputs.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPool2D(3, strides=2, name="pool1")(x)


def _head(x, num_classes):
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.Dense(num_classes, name="logits")(x)


# --- He et al. 2015 (v1): conv - BN - ReLU, addition, then ReLU -------------------------------

def _residual_block(x, filters, strides, kind, name, *, shortcut="B", survival_probability=1.0, per_sample=False,
                    seed=None):
    """One post-activation residual block: ``relu(shortcut(x) + F(x))``.

    ``kind`` is ``"basic"`` (3x3 - 3x3) or ``"bottleneck"`` (1x1 - 3x3 - 1x1 with 4x wider
    output). When the shape changes the shortcut is a 1x1 projection with batchnorm
    (``shortcut="B"``) or the parameter-free subsample-and-zero-pad of option A. A survival
    probability below 1 wraps ``F`` in :class:`StochasticDepth`.
    """
    out_filters = filters * _EXPANSION[kind]
    if strides != 1 or x.shape[-1] != out_filters:
        if shortcut == "A":
            identity = ZeroPadShortcut(out_filters, strides, name=f"{name}_shortcut")(x)
        else:
            identity = conv_bn(x, out_filters, 1, strides=strides, activation=False, name=f"{name}_shortcut")
    else:
        identity = x
    if kind == "basic":
        y = conv_bn(x, filters, 3, strides=strides, name=f"{name}_1")
        y = conv_bn(y, filters, 3, activation=False, name=f"{name}_2")
    else:
        y = conv_bn(x, filters, 1, name=f"{name}_1")
        y = conv_bn(y, filters, 3, strides=strides, name=f"{name}_2")
        y = conv_bn(y, out_filters, 1, activation=False, name=f"{name}_3")
    if survival_probability < 1.0:
        y = StochasticDepth(survival_probability, per_sample=per_sample, seed=seed,
                            name=f"{name}_stochastic_depth")(y)
    x = layers.Add(name=f"{name}_add")([identity, y])
    return layers.ReLU(name=f"{name}_out")(x)


def resnet(input_shape, num_classes, *, depth=50):
    """ResNet-``depth`` for ImageNet (He, Zhang, Ren & Sun, "Deep Residual Learning for Image
    Recognition", CVPR 2016), depth 18, 34, 50, 101 or 152.

    Stem, four stages of residual blocks with 64/128/256/512 base filters (basic blocks for
    18/34, bottleneck blocks for 50+), global average pooling and one dense layer. Stages 2-4
    halve the resolution in their first block, whose shortcut becomes a 1x1 projection with
    batchnorm (the paper's option B). As in torchvision (the reference for the parameter
    counts), the bottleneck's stride is on its 3x3 convolution ("ResNet v1.5"); convolutions
    have no bias. Inputs must be at least 32x32 (the total stride).
    """
    input_shape = check_input_shape(input_shape, min_size=IMAGENET_MIN_SIZE)
    kind, blocks = _imagenet_depth(depth)
    inputs = layers.Input(input_shape, name="images")
    x = _stem(inputs)
    for stage, (filters, count) in enumerate(zip((64, 128, 256, 512), blocks), start=2):
        for i in range(count):
            strides = 2 if i == 0 and stage > 2 else 1
            x = _residual_block(x, filters, strides, kind, f"conv{stage}_block{i + 1}")
    return tf.keras.Model(inputs, _head(x, num_classes), name=f"resnet{depth}")


_TORCHVISION = "He et al. 2015 / torchvision resnet{} (v1.5)"


@register("resnet18", family="ResNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=11_689_512, reference=_TORCHVISION.format(18))
def resnet18(input_shape, num_classes):
    """ResNet-18 (He et al. 2015): basic blocks, 11.7M parameters."""
    return resnet(input_shape, num_classes, depth=18)


@register("resnet34", family="ResNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=21_797_672, reference=_TORCHVISION.format(34))
def resnet34(input_shape, num_classes):
    """ResNet-34 (He et al. 2015): basic blocks, 21.8M parameters."""
    return resnet(input_shape, num_classes, depth=34)


@register("resnet50", family="ResNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=25_557_032, reference=_TORCHVISION.format(50))
def resnet50(input_shape, num_classes):
    """ResNet-50 (He et al. 2015): bottleneck blocks, 25.6M parameters."""
    return resnet(input_shape, num_classes, depth=50)


@register("resnet101", family="ResNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=44_549_160, reference=_TORCHVISION.format(101))
def resnet101(input_shape, num_classes):
    """ResNet-101 (He et al. 2015): bottleneck blocks, 44.5M parameters."""
    return resnet(input_shape, num_classes, depth=101)


@register("resnet152", family="ResNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=60_192_808, reference=_TORCHVISION.format(152))
def resnet152(input_shape, num_classes):
    """ResNet-152 (He et al. 2015): bottleneck blocks, 60.2M parameters."""
    return resnet(input_shape, num_classes, depth=152)


# --- He et al. 2016 (v2): BN - ReLU - conv, nothing after the addition -------------------------

def _preact_block(x, filters, strides, kind, name, *, input_activated=False, dropout=0.0):
    """One pre-activation unit: ``x + F(relu(bn(x)))``, with a clean identity path.

    When the unit changes the shape, its projection shortcut (a 1x1 convolution without
    batchnorm) reads the pre-activated input, as in the authors' code (fb.resnet.torch
    ``preresnet.lua``, "both_preact"). ``input_activated`` marks a unit whose input is already a
    BN-ReLU output (the first unit after the ImageNet stem), which therefore skips its own.
    """
    out_filters = filters * _EXPANSION[kind]
    pre = x if input_activated else bn_relu(x, name=f"{name}_preact")
    if strides != 1 or x.shape[-1] != out_filters:
        identity = layers.Conv2D(out_filters, 1, strides=strides, use_bias=False, kernel_initializer="he_normal",
                                 name=f"{name}_shortcut_conv")(pre)
    else:
        identity = x
    if kind == "basic":
        y = conv_bn(pre, filters, 3, strides=strides, name=f"{name}_1")
        if dropout:
            y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                          name=f"{name}_2_conv")(y)
    else:
        y = conv_bn(pre, filters, 1, name=f"{name}_1")
        y = conv_bn(y, filters, 3, strides=strides, name=f"{name}_2")
        y = layers.Conv2D(out_filters, 1, use_bias=False, kernel_initializer="he_normal", name=f"{name}_3_conv")(y)
    return layers.Add(name=f"{name}_add")([identity, y])


def preact_resnet(input_shape, num_classes, *, depth=50):
    """Pre-activation ResNet-``depth`` for ImageNet (He, Zhang, Ren & Sun, "Identity Mappings in
    Deep Residual Networks", ECCV 2016), depth 18, 34, 50, 101 or 152.

    Same stages as :func:`resnet`, but every unit computes ``x + F(relu(bn(x)))`` with
    batchnorm and ReLU *before* each convolution, so the shortcut path from any unit to any
    later one is a pure identity. A final BN-ReLU precedes the pooling. The stem keeps its
    conv-BN-ReLU-pool; projection shortcuts are 1x1 convolutions without batchnorm. Every
    convolution feeds, directly or along the identity path, a batchnorm that would cancel a
    bias, so all are bias-free. Inputs must be at least 32x32.
    """
    input_shape = check_input_shape(input_shape, min_size=IMAGENET_MIN_SIZE)
    kind, blocks = _imagenet_depth(depth)
    inputs = layers.Input(input_shape, name="images")
    x = _stem(inputs)
    for stage, (filters, count) in enumerate(zip((64, 128, 256, 512), blocks), start=2):
        for i in range(count):
            strides = 2 if i == 0 and stage > 2 else 1
            x = _preact_block(x, filters, strides, kind, f"conv{stage}_block{i + 1}",
                              input_activated=i == 0 and stage == 2)
    x = bn_relu(x, name="post")
    return tf.keras.Model(inputs, _head(x, num_classes), name=f"preact_resnet{depth}")


# No published reference: the counts are torchvision's ResNet with the batchnorms moved in front of
# the convolutions (input-side widths), a final batchnorm, and none on the projection shortcuts.
_PREACT = "He et al. 2016 (identity mappings), ImageNet layout of fb.resnet.torch preresnet.lua; count computed"


@register("preact_resnet18", family="ResNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=11_687_720, reference=_PREACT)
def preact_resnet18(input_shape, num_classes):
    """Pre-activation ResNet-18 (He et al. 2016)."""
    return preact_resnet(input_shape, num_classes, depth=18)


@register("preact_resnet34", family="ResNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=21_795_880, reference=_PREACT)
def preact_resnet34(input_shape, num_classes):
    """Pre-activation ResNet-34 (He et al. 2016)."""
    return preact_resnet(input_shape, num_classes, depth=34)


@register("preact_resnet50", family="ResNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=25_549_352, reference=_PREACT)
def preact_resnet50(input_shape, num_classes):
    """Pre-activation ResNet-50 (He et al. 2016)."""
    return preact_resnet(input_shape, num_classes, depth=50)


@register("preact_resnet101", family="ResNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=44_541_480, reference=_PREACT)
def preact_resnet101(input_shape, num_classes):
    """Pre-activation ResNet-101 (He et al. 2016)."""
    return preact_resnet(input_shape, num_classes, depth=101)


@register("preact_resnet152", family="ResNet", canonical_input_shape=(224, 224, 3), canonical_num_classes=1000,
          reference_params=60_185_128, reference=_PREACT)
def preact_resnet152(input_shape, num_classes):
    """Pre-activation ResNet-152 (He et al. 2016)."""
    return preact_resnet(input_shape, num_classes, depth=152)


# --- CIFAR-10 ResNets (He et al. 2015, section 4.2) ---------------------------------------------

def _cifar_blocks(depth):
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ConfigError(f"CIFAR ResNet depth must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth!r}")
    return (depth - 2) // 6


def cifar_resnet(input_shape, num_classes, *, depth=20, shortcut="A", final_survival=1.0, per_sample=False,
                 seed=None):
    """ResNet-``depth`` for CIFAR-10 (He et al. 2015, section 4.2), ``depth = 6n + 2``.

    3x3 conv(16), then three stages of ``n`` basic blocks with 16, 32 and 64 filters on 32x32,
    16x16 and 8x8 maps, global average pooling and one dense layer. Shortcuts are identities;
    where the shape changes, option A (``shortcut="A"``, the paper's CIFAR choice) subsamples and
    zero-pads the channels with no parameters, option B uses a 1x1 projection with batchnorm.

    ``final_survival < 1`` trains with stochastic depth (Huang et al. 2016): the survival
    probability of block ``l`` of ``L`` decays linearly, ``p_l = 1 - l / L * (1 - final_survival)``,
    see :class:`~cs231n_tf.models.layers.StochasticDepth` for the train/test convention.
    ``seed`` seeds block ``l``'s generator with ``seed + l`` (None: unseeded).
    Inputs must be at least 4x4.
    """
    input_shape = check_input_shape(input_shape, min_size=CIFAR_MIN_SIZE)
    n = _cifar_blocks(depth)
    if shortcut not in ("A", "B"):
        raise ConfigError(f"shortcut must be 'A' (zero-padding identity) or 'B' (projection), got {shortcut!r}")
    final_survival = check_probability("final_survival", final_survival, low_open=True)
    total = 3 * n
    inputs = layers.Input(input_shape, name="images")
    x = conv_bn(inputs, 16, 3, name="conv1")
    index = 0
    for stage, filters in enumerate((16, 32, 64), start=2):
        for i in range(n):
            index += 1
            strides = 2 if i == 0 and stage > 2 else 1
            survival = 1.0 - index / total * (1.0 - final_survival)
            x = _residual_block(x, filters, strides, "basic", f"conv{stage}_block{i + 1}", shortcut=shortcut,
                                survival_probability=survival, per_sample=per_sample,
                                seed=None if seed is None else seed + index)
    name = f"resnet{depth}" + ("_sd" if final_survival < 1.0 else "")
    return tf.keras.Model(inputs, _head(x, num_classes), name=name)


_CIFAR = "He et al. 2015, Table 6 ({} parameters), option A shortcuts; exact count computed"


@register("resnet20", family="ResNet (CIFAR)", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=269_722, reference=_CIFAR.format("0.27M"))
def resnet20(input_shape, num_classes, *, shortcut="A"):
    """ResNet-20 for CIFAR-10 (He et al. 2015, section 4.2): 0.27M parameters with option A shortcuts."""
    return cifar_resnet(input_shape, num_classes, depth=20, shortcut=shortcut)


@register("resnet32", family="ResNet (CIFAR)", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=464_154, reference=_CIFAR.format("0.46M"))
def resnet32(input_shape, num_classes, *, shortcut="A"):
    """ResNet-32 for CIFAR-10 (He et al. 2015, section 4.2): 0.46M parameters with option A shortcuts."""
    return cifar_resnet(input_shape, num_classes, depth=32, shortcut=shortcut)


@register("resnet44", family="ResNet (CIFAR)", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=658_586, reference=_CIFAR.format("0.66M"))
def resnet44(input_shape, num_classes, *, shortcut="A"):
    """ResNet-44 for CIFAR-10 (He et al. 2015, section 4.2): 0.66M parameters with option A shortcuts."""
    return cifar_resnet(input_shape, num_classes, depth=44, shortcut=shortcut)


@register("resnet56", family="ResNet (CIFAR)", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=853_018, reference=_CIFAR.format("0.85M"))
def resnet56(input_shape, num_classes, *, shortcut="A"):
    """ResNet-56 for CIFAR-10 (He et al. 2015, section 4.2): 0.85M parameters with option A shortcuts."""
    return cifar_resnet(input_shape, num_classes, depth=56, shortcut=shortcut)


@register("resnet110", family="ResNet (CIFAR)", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=1_727_962, reference=_CIFAR.format("1.7M"))
def resnet110(input_shape, num_classes, *, shortcut="A"):
    """ResNet-110 for CIFAR-10 (He et al. 2015, section 4.2): 1.7M parameters with option A shortcuts."""
    return cifar_resnet(input_shape, num_classes, depth=110, shortcut=shortcut)


@register("resnet110_sd", family="ResNet (CIFAR)", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=1_727_962,
          reference="Huang et al. 2016, 'Deep Networks with Stochastic Depth' (ResNet-110, p_L = 0.5)")
def resnet_stochastic_depth(input_shape, num_classes, *, depth=110, final_survival=0.5, per_sample=False,
                            seed=None):
    """ResNet-110 with stochastic depth (Huang, Sun, Liu, Sedra & Weinberger, ECCV 2016).

    The CIFAR ResNet of He et al. (option A shortcuts, same parameters as ``resnet110``) whose
    residual branches are dropped at random while training: block ``l`` of ``L`` survives with
    probability ``1 - l / L * (1 - final_survival)`` (linear decay from 1 to ``p_L = 0.5``), one
    coin per mini-batch (``per_sample=True``: per example). A dropped block is the identity.
    Surviving branches are scaled by ``1 / p_l`` during training, so at test time
    (``training=False``) the full network runs unscaled. Train with ``training=True``.
    """
    if check_probability("final_survival", final_survival, low_open=True) == 1.0:
        raise ConfigError(f"final_survival must be below 1 for stochastic depth, got {final_survival!r}")
    return cifar_resnet(input_shape, num_classes, depth=depth, shortcut="A", final_survival=final_survival,
                        per_sample=per_sample, seed=seed)


# --- Wide residual networks -----------------------------------------------------------------------

def wide_resnet(input_shape, num_classes, *, depth=28, width=10, dropout=0.0):
    """WRN-``depth``-``width`` (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016).

    A CIFAR pre-activation ResNet with ``n = (depth - 4) / 6`` basic blocks per stage and
    ``width`` times the filters: 3x3 conv(16), stages of 16k, 32k and 64k filters (strides 1, 2,
    2), final BN-ReLU, global average pooling, dense. Where the width changes the shortcut is a
    1x1 convolution of the pre-activated input. ``dropout`` goes between the two convolutions of
    each block (the paper uses 0.3 in some runs). Bias-free convolutions, as the authors' code.
    Inputs must be at least 4x4.
    """
    input_shape = check_input_shape(input_shape, min_size=CIFAR_MIN_SIZE)
    if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ConfigError(f"WRN depth must be 6n + 4 (10, 16, 22, 28, 40, ...), got {depth!r}")
    width = validation.positive_int("WRN width", width)
    dropout = check_probability("dropout", dropout, high_open=True)
    n = (depth - 4) // 6
    inputs = layers.Input(input_shape, name="images")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name="conv1")(inputs)
    for stage, filters in enumerate((16 * width, 32 * width, 64 * width), start=2):
        for i in range(n):
            strides = 2 if i == 0 and stage > 2 else 1
            x = _preact_block(x, filters, strides, "basic", f"conv{stage}_block{i + 1}", dropout=dropout)
    x = bn_relu(x, name="post")
    return tf.keras.Model(inputs, _head(x, num_classes), name=f"wrn_{depth}_{width}")


_WRN = "Zagoruyko & Komodakis 2016, Table 1 ({}); count of the authors' PyTorch code"


@register("wrn_16_4", family="ResNet (CIFAR)", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=2_748_890, reference=_WRN.format("2.7M"))
def wrn_16_4(input_shape, num_classes, *, dropout=0.0):
    """WRN-16-4 (Zagoruyko & Komodakis 2016): 2.7M parameters on CIFAR-10."""
    return wide_resnet(input_shape, num_classes, depth=16, width=4, dropout=dropout)


@register("wrn_28_10", family="ResNet (CIFAR)", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=36_479_194, reference=_WRN.format("36.5M"))
def wrn_28_10(input_shape, num_classes, *, dropout=0.0):
    """WRN-28-10 (Zagoruyko & Komodakis 2016): 36.5M parameters on CIFAR-10."""
    return wide_resnet(input_shape, num_classes, depth=28, width=10, dropout=dropout)


@register("wrn_40_4", family="ResNet (CIFAR)", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=8_949_210, reference=_WRN.format("8.9M"))
def wrn_40_4(input_shape, num_classes, *, dropout=0.0):
    """WRN-40-4 (Zagoruyko & Komodakis 2016): 8.9M parameters on CIFAR-10."""
    return wide_resnet(input_shape, num_classes, depth=40, width=4, dropout=dropout)
