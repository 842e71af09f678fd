"""Fully convolutional segmentation networks (lecture 11): an FCN with every upsampling, and a U-Net.

Both map images ``(N, H, W, C)`` (unit scale, [0, 1]) to per-pixel class logits ``(N, H, W, K)``
(float32). The encoder has ``depth`` stages of two 3x3 conv-BN-ReLU blocks followed by a 2x
downsampling (``pool``: 2x2 max pooling; ``strided``: a 3x3 stride-2 conv); a bottleneck block
then runs at ``H / 2**depth``. The decoder mirrors it: ``depth`` 2x upsamplings (one of
:data:`~cs231n_tf.segmentation.layers.UPSAMPLING`), each followed by two conv blocks, and a 1x1
conv to ``num_classes`` logits.

- :func:`fcn` (Long, Shelhamer & Darrell 2015, "Fully Convolutional Networks for Semantic
  Segmentation"; the encoder-decoder form of Noh et al. 2015): the decoder sees only the
  bottleneck, so fine detail must come back through the upsampling itself.
- :func:`unet` (Ronneberger, Fischer & Brox 2015): each decoder stage concatenates the encoder's
  feature map of the same resolution (skip connections) after upsampling.

``max_unpool`` uses the switches of the matching encoder pool (SegNet, Badrinarayanan et al.
2015), so it needs ``downsampling="pool"``; the decoder brings the channels back to the pooled
map's count before unpooling. Layer names are stable: ``enc{i}_conv{j}``, ``enc{i}_down``,
``bottleneck_conv{j}``, ``dec{i}_up``, ``dec{i}_skip``, ``dec{i}_conv{j}``, ``logits``
(stage ``i`` counted from the full-resolution one, 1-based).
"""

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, ShapeError
from cs231n_tf.segmentation.layers import UPSAMPLING, MaxPoolWithArgmax, upsample

DOWNSAMPLING = ("pool", "strided")
ARCHITECTURES = ("fcn", "unet")


def _block(x, filters, name, batch_norm):
    layers = tf.keras.layers
    x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, name=name)(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _check(input_shape, num_classes, upsampling, downsampling, depth, filters):
    if len(tuple(input_shape)) != 3:
        raise ShapeError(f"input_shape must be (H, W, C), got {input_shape!r}")
    h, w, _ = input_shape
    depth = validation.positive_int("depth", depth)
    filters = validation.positive_int("filters", filters)
    validation.int_in("num_classes", num_classes, 2)
    validation.one_of("upsampling", upsampling, UPSAMPLING)
    validation.one_of("downsampling", downsampling, DOWNSAMPLING)
    if upsampling == "max_unpool" and downsampling != "pool":
        raise ConfigError("upsampling 'max_unpool' needs the switches of max pooling: use downsampling 'pool', "
                          f"not {downsampling!r}")
    for axis, size in (("H", h), ("W", w)):
        if size is not None and size % 2 ** depth:
            raise ShapeError(f"input {axis} = {size} must be divisible by 2**depth = {2 ** depth} "
                             f"(depth {depth} halves it {depth} times)")
    return depth, filters


def _encoder_decoder(input_shape, num_classes, upsampling, downsampling, depth, filters, batch_norm, skips, name):
    depth, filters = _check(input_shape, num_classes, upsampling, downsampling, depth, filters)
    layers = tf.keras.layers
    images = tf.keras.Input(tuple(input_shape), name="images")
    x = images
    features, switches = [], []
    for i in range(1, depth + 1):
        width = filters * 2 ** (i - 1)
        x = _block(x, width, f"enc{i}_conv1", batch_norm)
        x = _block(x, width, f"enc{i}_conv2", batch_norm)
        features.append(x)
        if downsampling == "strided":
            x = layers.Conv2D(width, 3, strides=2, padding="same", name=f"enc{i}_down")(x)
            switches.append(None)
        elif upsampling == "max_unpool":
            before = x
            x, argmax = MaxPoolWithArgmax(2, name=f"enc{i}_down")(x)
            switches.append((argmax, before))
        else:
            x = layers.MaxPool2D(2, name=f"enc{i}_down")(x)
            switches.append(None)
    bottom = filters * 2 ** depth
    x = _block(x, bottom, "bottleneck_conv1", batch_norm)
    x = _block(x, bottom, "bottleneck_conv2", batch_norm)
    for i in range(depth, 0, -1):
        width = filters * 2 ** (i - 1)
        if upsampling == "max_unpool":  # the unpooled map has the pooled map's channels
            x = _block(x, width, f"dec{i}_pre", batch_norm)
        x = upsample(x, upsampling, 2, filters=width, name=f"dec{i}_up", switches=switches[i - 1])
        if skips:
            x = layers.Concatenate(name=f"dec{i}_skip")([x, features[i - 1]])
        x = _block(x, width, f"dec{i}_conv1", batch_norm)
        x = _block(x, width, f"dec{i}_conv2", batch_norm)
    logits = layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)
    return tf.keras.Model(images, logits, name=name)


def fcn(input_shape, num_classes, upsampling="nearest", downsampling="pool", depth=3, filters=16, batch_norm=True):
    """An encoder-decoder FCN without skips (module docstring): ``images -> logits (N, H, W, num_classes)``.

    ``upsampling``: ``nearest``, ``bed_of_nails``, ``max_unpool`` (needs ``downsampling="pool"``),
    ``transposed`` (learnable, 4x4 stride 2) or ``bilinear``. ``H`` and ``W`` must be divisible by
    ``2**depth``; stage ``i`` has ``filters * 2**(i-1)`` channels.
    """
    return _encoder_decoder(input_shape, num_classes, upsampling, downsampling, depth, filters, batch_norm,
                            skips=False, name=f"fcn_{upsampling}_{downsampling}")


def unet(input_shape, num_classes, upsampling="transposed", downsampling="pool", depth=3, filters=16,
         batch_norm=True):
    """A U-Net: :func:`fcn` plus a skip connection (concatenation) at every decoder stage.

    Ronneberger et al. upsample with a learnable "up-convolution" (``transposed``, the default);
    every other upsampling of :func:`fcn` works too.
    """
    return _encoder_decoder(input_shape, num_classes, upsampling, downsampling, depth, filters, batch_norm,
                            skips=True, name=f"unet_{upsampling}_{downsampling}")


def build_segmenter(architecture, input_shape, num_classes, **options):
    """:func:`fcn` or :func:`unet` by name (``architecture`` in :data:`ARCHITECTURES`)."""
    validation.one_of("architecture", architecture, ARCHITECTURES)
    return (fcn if architecture == "fcn" else unet)(input_shape, num_classes, **options)


ENCODERS = ("efficientnet_lite0",)
# The last layer of each resolution of EfficientNet-Lite0, output stride 2, 4, 8, 16, 32.
_EFFICIENTNET_TAPS = ("block1a_project_bn", "block2b_add", "block3b_add", "block5c_add", "top_activation")


def encoder_unet(input_shape, num_classes, encoder="efficientnet_lite0", weights=None, upsampling="bilinear",
                 skips=True, filters=16, batch_norm=True):
    """A U-Net (or, ``skips=False``, an FCN) whose encoder is a registry backbone: EfficientNet-Lite0.

    The backbone (:func:`cs231n_tf.models.efficientnet_lite.efficientnet_lite0` without its top,
    ``weights=None`` or ``"imagenet"``) runs on the images normalised with its ``input_stats`` (a
    ``Normalization`` layer, so the model still takes unit-scale images) and has output stride
    32: its feature maps at strides 2, 4, 8, 16 and 32 are tapped (the last layer of each
    resolution). The decoder upsamples 2x five times from stride 32 back to the input, each time
    (with ``skips``) concatenating the tap of that stride, then two conv blocks of
    ``filters * (8, 4, 2, 1, 1)`` channels. ``H`` and ``W`` must be divisible by 32 (and >= 32).
    Max unpooling has no switches here (the backbone downsamples with strided convolutions).
    Layer names: ``encoder`` (the nested backbone), ``normalize``, ``dec{i}_up``, ``dec{i}_skip``,
    ``dec{i}_conv{j}``, ``logits`` (``i`` = 5 at stride 32 down to 1).
    """
    from cs231n_tf.models.efficientnet_lite import INPUT_STATS, efficientnet_lite0

    validation.one_of("encoder", encoder, ENCODERS)
    validation.one_of("upsampling", upsampling, tuple(u for u in UPSAMPLING if u != "max_unpool"))
    validation.int_in("num_classes", num_classes, 2)
    filters = validation.positive_int("filters", filters)
    if len(tuple(input_shape)) != 3 or any(s is not None and (s % 32 or s < 32) for s in tuple(input_shape)[:2]):
        raise ShapeError(f"the {encoder} encoder has output stride 32: input_shape must be (H, W, 3) with H and W "
                         f"multiples of 32, got {input_shape!r}")
    layers = tf.keras.layers
    backbone = efficientnet_lite0(tuple(input_shape), include_top=False, weights=weights)
    taps = tf.keras.Model(backbone.input, [backbone.get_layer(n).output for n in _EFFICIENTNET_TAPS], name="encoder")
    images = tf.keras.Input(tuple(input_shape), name="images")
    x = layers.Normalization(mean=INPUT_STATS[0], variance=[s * s for s in INPUT_STATS[1]], name="normalize")(images)
    features = taps(x)
    x = features[-1]
    for i, width in zip(range(5, 0, -1), (8, 4, 2, 1, 1)):
        width *= filters
        x = upsample(x, upsampling, 2, filters=width, name=f"dec{i}_up")
        if skips and i > 1:
            x = layers.Concatenate(name=f"dec{i}_skip")([x, features[i - 2]])
        x = _block(x, width, f"dec{i}_conv1", batch_norm)
        x = _block(x, width, f"dec{i}_conv2", batch_norm)
    logits = layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)
    return tf.keras.Model(images, logits, name=f"{encoder}_{'unet' if skips else 'fcn'}_{upsampling}")
