"""The course's small networks (lectures 4-5, assignments 1-2) and LeNet.

Each builder returns an uncompiled functional ``tf.keras.Model`` producing logits.

Lecture 7's regularisers are builder options, so ``cs231n-tf train --model-option ...`` reaches them:
``max_norm=c`` puts ``tf.keras.constraints.MaxNorm(c)`` on every kernel (Srivastava et al.,
"Dropout", JMLR 2014: each unit's incoming weight vector is projected back to L2 norm <= c after
every optimizer step), ``fc_net(dropconnect=r)`` makes its hidden layers :class:`DropConnect`
(Wan et al., ICML 2013) and ``pooling="fractional"`` pools by sqrt(2) with
:class:`FractionalMaxPool2D` (Graham, "Fractional Max-Pooling", 2014). DropConnect and max-norm
add no parameters; fractional pooling keeps more positions, so a dense layer after it grows. The
defaults build the plain networks.
"""

import math

import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.models.registry import check_input_shape, register
from cs231n_tf.models.regularization import DropConnect, FractionalMaxPool2D, max_norm as _max_norm_constraint

layers = tf.keras.layers

# Axes of one unit's incoming weights: a Dense kernel is (in, units), a Conv2D kernel (KH, KW, C_in, C_out).
_DENSE_AXES = 0
_CONV_AXES = [0, 1, 2]


def _check_rate(name, value):
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
    return rate


def _check_max_norm(value):
    """``None`` or a positive finite float: the ``max_norm`` option of every builder here."""
    if value is None:
        return None
    try:
        c = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        c = None
    if c is None or not 0 < c < math.inf:
        raise ConfigError(f"max_norm must be None or a positive finite number, got {value!r}")
    return c


def _constraint(c, axes):
    """The ``kernel_constraint`` for max-norm ``c`` (None leaves the kernel free)."""
    return None if c is None else _max_norm_constraint(c, axes)


def _check_pooling(value, accepted):
    if value not in accepted:
        names = ", ".join(repr(a) for a in accepted[:-1]) + f" or {accepted[-1]!r}"
        raise ConfigError(f"pooling must be {names}, got {value!r}")
    return value


def _pool(pooling, name):
    """2x2 max pooling, or fractional max pooling by sqrt(2) (Graham 2014's favourite ratio)."""
    if pooling == "fractional":
        return FractionalMaxPool2D(math.sqrt(2), name=name)
    return layers.MaxPool2D(2, name=name)


def _dims(name, values):
    try:
        dims = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a sequence of positive ints, got {values!r}") from None
    if any(d <= 0 for d in dims):
        raise ConfigError(f"{name} must be positive ints, got {values!r}")
    return dims


@register("two_layer_net", family="fully connected", canonical_input_shape=(32, 32, 3),
          canonical_num_classes=10, reference_params=3072 * 100 + 100 + 100 * 10 + 10,
          reference="CS231n assignment 1, TwoLayerNet (hidden_dim=100)")
def two_layer_net(input_shape, num_classes, *, hidden_dim=100, kernel_initializer="he_normal", max_norm=None):
    """Two-layer net: affine - ReLU - affine (CS231n assignment 1).

    ``max_norm``: None, or the max-norm bound c on every unit's incoming weights (both layers).
    """
    input_shape = check_input_shape(input_shape)
    (hidden_dim,) = _dims("hidden_dim", [hidden_dim])
    c = _check_max_norm(max_norm)
    inputs = layers.Input(input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(hidden_dim, activation="relu", kernel_initializer=kernel_initializer,
                     kernel_constraint=_constraint(c, _DENSE_AXES), name="fc1")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=kernel_initializer,
                           kernel_constraint=_constraint(c, _DENSE_AXES), name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="two_layer_net")


@register("fc_net", family="fully connected", canonical_input_shape=(32, 32, 3),
          canonical_num_classes=10, reference_params=3072 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10,
          reference="CS231n assignment 2, FullyConnectedNet (hidden_dims=[100, 100])")
def fc_net(input_shape, num_classes, *, hidden_dims=(100, 100), normalization=None, dropout=0.0,
           dropconnect=0.0, kernel_initializer="he_normal", max_norm=None):
    """Fully connected net of any depth: {affine - [norm] - ReLU - [dropout]} x L - affine.

    ``normalization`` is ``None``, ``"batchnorm"`` or ``"layernorm"`` (CS231n assignment 2).
    With normalization the affine layers before it carry no bias (the norm's beta replaces it).
    ``dropout`` and ``dropconnect`` are drop rates in [0, 1): dropout zeroes hidden activations,
    DropConnect (Wan et al., ICML 2013) zeroes each hidden layer's weights, keeping each with
    probability ``1 - dropconnect`` (one mask per mini-batch, see :class:`DropConnect`); the
    output layer stays a plain affine layer. ``max_norm``: None, or the bound c on every unit's
    incoming weights in every layer (Srivastava et al., JMLR 2014).
    """
    input_shape = check_input_shape(input_shape)
    hidden_dims = _dims("hidden_dims", hidden_dims)
    dropout = _check_rate("dropout", dropout)
    dropconnect = _check_rate("dropconnect", dropconnect)
    c = _check_max_norm(max_norm)
    if normalization not in (None, "batchnorm", "layernorm"):
        raise ConfigError(f"normalization must be None, 'batchnorm' or 'layernorm', got {normalization!r}")
    inputs = layers.Input(input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    for i, dim in enumerate(hidden_dims, start=1):
        affine = dict(use_bias=normalization is None, kernel_initializer=kernel_initializer,
                      kernel_constraint=_constraint(c, _DENSE_AXES), name=f"fc{i}")
        if dropconnect:
            x = DropConnect(dim, keep_probability=1.0 - dropconnect, **affine)(x)
        else:
            x = layers.Dense(dim, **affine)(x)
        if normalization == "batchnorm":
            x = layers.BatchNormalization(name=f"bn{i}")(x)
        elif normalization == "layernorm":
            x = layers.LayerNormalization(name=f"ln{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=kernel_initializer,
                           kernel_constraint=_constraint(c, _DENSE_AXES), name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="fc_net")


@register("three_layer_convnet", family="convolutional", canonical_input_shape=(32, 32, 3),
          canonical_num_classes=10,
          reference_params=(7 * 7 * 3 * 32 + 32) + (16 * 16 * 32 * 100 + 100) + (100 * 10 + 10),
          reference="CS231n assignment 2, ThreeLayerConvNet (32 7x7 filters, hidden_dim=100)")
def three_layer_convnet(input_shape, num_classes, *, num_filters=32, filter_size=7, hidden_dim=100,
                        batchnorm=False, dropout=0.0, kernel_initializer="he_normal", pooling="max",
                        max_norm=None):
    """Three-layer convnet: conv - ReLU - 2x2 max pool - affine - ReLU - affine (assignment 2).

    The convolution is 'same'-padded with stride 1, so the pool halves the input exactly as in the
    assignment. ``batchnorm`` adds spatial batchnorm after the convolution (and drops its bias).
    ``pooling="fractional"`` pools by sqrt(2) instead (Graham 2014): (H, W) -> (floor(H / sqrt 2),
    floor(W / sqrt 2)), so the first affine layer has that many more inputs (e.g. 32x32 -> 22x22
    instead of 16x16). ``max_norm``: None, or the bound c on every unit's incoming weights in all
    three layers (Srivastava et al., JMLR 2014).
    """
    input_shape = check_input_shape(input_shape, min_size=2)
    num_filters, filter_size, hidden_dim = _dims("num_filters/filter_size/hidden_dim",
                                                 [num_filters, filter_size, hidden_dim])
    dropout = _check_rate("dropout", dropout)
    pooling = _check_pooling(pooling, ("max", "fractional"))
    c = _check_max_norm(max_norm)
    inputs = layers.Input(input_shape, name="images")
    x = layers.Conv2D(num_filters, filter_size, padding="same", use_bias=not batchnorm,
                      kernel_initializer=kernel_initializer, kernel_constraint=_constraint(c, _CONV_AXES),
                      name="conv1")(inputs)
    if batchnorm:
        x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = _pool(pooling, "pool1")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(hidden_dim, activation="relu", kernel_initializer=kernel_initializer,
                     kernel_constraint=_constraint(c, _DENSE_AXES), name="fc1")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout1")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=kernel_initializer,
                           kernel_constraint=_constraint(c, _DENSE_AXES), name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="three_layer_convnet")


@register("lenet5", family="convolutional", canonical_input_shape=(32, 32, 1), canonical_num_classes=10,
          reference_params=61_706, reference="LeCun et al. 1998, 'Gradient-based learning applied to "
          "document recognition' (C1-S2-C3-S4-C5/F5-F6-output, full C3 connections, dense output)")
def lenet5(input_shape, num_classes, *, activation="tanh", pooling="avg", max_norm=None):
    """LeNet-5 (LeCun et al., 1998): conv5x5(6) - pool - conv5x5(16) - pool - fc120 - fc84 - out.

    The paper feeds 32x32 images (MNIST's 28x28 digits centred in a 32x32 field); smaller inputs
    are zero-padded to 32x32 in the same way, so the parameter count stays 61,706 for 10 classes.
    Larger inputs keep their size (the first dense layer grows). Simplifications shared by every
    modern re-implementation: full C3 connectivity, plain pooling, and a dense output layer in place
    of the RBF units. ``max_norm``: None, or the bound c on every unit's incoming weights
    (Srivastava et al., JMLR 2014).
    """
    input_shape = check_input_shape(input_shape)
    pooling = _check_pooling(pooling, ("avg", "max"))
    c = _check_max_norm(max_norm)
    pool = layers.AveragePooling2D if pooling == "avg" else layers.MaxPool2D
    inputs = layers.Input(input_shape, name="images")
    x = inputs
    h, w = input_shape[:2]
    if h < 32 or w < 32:
        pad_h, pad_w = max(0, 32 - h), max(0, 32 - w)
        x = layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)),
                                 name="pad_to_32")(x)
    conv_limit, dense_limit = _constraint(c, _CONV_AXES), _constraint(c, _DENSE_AXES)
    x = layers.Conv2D(6, 5, activation=activation, kernel_constraint=conv_limit, name="c1")(x)
    x = pool(2, name="s2")(x)
    x = layers.Conv2D(16, 5, activation=activation, kernel_constraint=conv_limit, name="c3")(x)
    x = pool(2, name="s4")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation=activation, kernel_constraint=dense_limit, name="c5")(x)
    x = layers.Dense(84, activation=activation, kernel_constraint=dense_limit, name="f6")(x)
    outputs = layers.Dense(num_classes, kernel_constraint=dense_limit, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="lenet5")


@register("lenet300_100", family="fully connected", canonical_input_shape=(28, 28, 1),
          canonical_num_classes=10, reference_params=266_610,
          reference="LeCun et al. 1998 (LeNet-300-100); Han et al. 2015/2016 pruning baseline")
def lenet300_100(input_shape, num_classes, *, activation="relu", max_norm=None):
    """LeNet-300-100: a 784-300-100-10 multilayer perceptron (LeCun et al., 1998).

    The fully connected baseline of the Deep Compression papers (Han et al., 2015, 2016).
    ``max_norm``: None, or the bound c on every unit's incoming weights (Srivastava et al., 2014).
    """
    input_shape = check_input_shape(input_shape)
    c = _check_max_norm(max_norm)
    inputs = layers.Input(input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(300, activation=activation, kernel_constraint=_constraint(c, _DENSE_AXES), name="fc1")(x)
    x = layers.Dense(100, activation=activation, kernel_constraint=_constraint(c, _DENSE_AXES), name="fc2")(x)
    outputs = layers.Dense(num_classes, kernel_constraint=_constraint(c, _DENSE_AXES), name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="lenet300_100")


@register("small_convnet", family="convolutional", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=(3 * 3 * 3 * 32 + 2 * 32) + (3 * 3 * 32 * 32 + 2 * 32) + (3 * 3 * 32 * 64 + 2 * 64)
          + (3 * 3 * 64 * 64 + 2 * 64) + (64 * 10 + 10),
          reference="this package: a VGG-style net sized for 8x8 to 32x32 images (count computed by hand)")
def small_convnet(input_shape, num_classes, *, width=32, dropout=0.3, pooling="max", max_norm=None):
    """Small VGG-style CNN: 2 x {[conv3x3 - BN - ReLU] x 2 - 2x2 max pool} - global avg pool - dropout - affine.

    The package's default model: the lecture 9 recipe (stacked 3x3 convolutions, batchnorm,
    downsampling by pooling, global average pooling instead of big fully connected layers) at a
    size that trains in seconds on a CPU. ``pooling="fractional"`` shrinks by sqrt(2) per stage
    instead of 2 (Graham 2014; 8x8 -> 5x5 -> 3x3); global pooling keeps the parameter count.
    ``max_norm``: None, or the bound c on every unit's incoming weights in the convolutions and
    the output layer (Srivastava et al., JMLR 2014).
    """
    input_shape = check_input_shape(input_shape, min_size=4)
    (width,) = _dims("width", [width])
    dropout = _check_rate("dropout", dropout)
    pooling = _check_pooling(pooling, ("max", "fractional"))
    c = _check_max_norm(max_norm)
    inputs = layers.Input(input_shape, name="images")
    x = inputs
    for stage, filters in enumerate((width, 2 * width), start=1):
        for i in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                              kernel_constraint=_constraint(c, _CONV_AXES), name=f"conv{stage}_{i}")(x)
            x = layers.BatchNormalization(name=f"bn{stage}_{i}")(x)
            x = layers.ReLU(name=f"relu{stage}_{i}")(x)
        x = _pool(pooling, f"pool{stage}")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, kernel_constraint=_constraint(c, _DENSE_AXES), name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="small_convnet")
