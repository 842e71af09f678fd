"""The course's small networks (lectures 4-5, assignments 1-2) and LeNet.

Each builder returns an uncompiled functional ``tf.keras.Model`` producing logits.
"""

import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.models.registry import check_input_shape, register

layers = tf.keras.layers


def _check_rate(name, value):
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


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
def two_layer_net(input_shape, num_classes, *, hidden_dim=100, kernel_initializer="he_normal"):
    """Two-layer net: affine - ReLU - affine (CS231n assignment 1)."""
    input_shape = check_input_shape(input_shape)
    (hidden_dim,) = _dims("hidden_dim", [hidden_dim])
    inputs = layers.Input(input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(hidden_dim, activation="relu", kernel_initializer=kernel_initializer, name="fc1")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=kernel_initializer, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="two_layer_net")


@register("fc_net", family="fully connected", canonical_input_shape=(32, 32, 3),
          canonical_num_classes=10, reference_params=3072 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10,
          reference="CS231n assignment 2, FullyConnectedNet (hidden_dims=[100, 100])")
def fc_net(input_shape, num_classes, *, hidden_dims=(100, 100), normalization=None, dropout=0.0,
           kernel_initializer="he_normal"):
    """Fully connected net of any depth: {affine - [norm] - ReLU - [dropout]} x L - affine.

    ``normalization`` is ``None``, ``"batchnorm"`` or ``"layernorm"`` (CS231n assignment 2).
    With normalization the affine layers before it carry no bias (the norm's beta replaces it).
    """
    input_shape = check_input_shape(input_shape)
    hidden_dims = _dims("hidden_dims", hidden_dims)
    dropout = _check_rate("dropout", dropout)
    if normalization not in (None, "batchnorm", "layernorm"):
        raise ConfigError(f"normalization must be None, 'batchnorm' or 'layernorm', got {normalization!r}")
    inputs = layers.Input(input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    for i, dim in enumerate(hidden_dims, start=1):
        x = layers.Dense(dim, use_bias=normalization is None, kernel_initializer=kernel_initializer,
                         name=f"fc{i}")(x)
        if normalization == "batchnorm":
            x = layers.BatchNormalization(name=f"bn{i}")(x)
        elif normalization == "layernorm":
            x = layers.LayerNormalization(name=f"ln{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=kernel_initializer, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="fc_net")


@register("three_layer_convnet", family="convolutional", canonical_input_shape=(32, 32, 3),
          canonical_num_classes=10,
          reference_params=(7 * 7 * 3 * 32 + 32) + (16 * 16 * 32 * 100 + 100) + (100 * 10 + 10),
          reference="CS231n assignment 2, ThreeLayerConvNet (32 7x7 filters, hidden_dim=100)")
def three_layer_convnet(input_shape, num_classes, *, num_filters=32, filter_size=7, hidden_dim=100,
                        batchnorm=False, dropout=0.0, kernel_initializer="he_normal"):
    """Three-layer convnet: conv - ReLU - 2x2 max pool - affine - ReLU - affine (assignment 2).

    The convolution is 'same'-padded with stride 1, so the pool halves the input exactly as in the
    assignment. ``batchnorm`` adds spatial batchnorm after the convolution (and drops its bias).
    """
    input_shape = check_input_shape(input_shape, min_size=2)
    num_filters, filter_size, hidden_dim = _dims("num_filters/filter_size/hidden_dim",
                                                 [num_filters, filter_size, hidden_dim])
    dropout = _check_rate("dropout", dropout)
    inputs = layers.Input(input_shape, name="images")
    x = layers.Conv2D(num_filters, filter_size, padding="same", use_bias=not batchnorm,
                      kernel_initializer=kernel_initializer, name="conv1")(inputs)
    if batchnorm:
        x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.MaxPool2D(2, name="pool1")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(hidden_dim, activation="relu", kernel_initializer=kernel_initializer, name="fc1")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout1")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=kernel_initializer, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="three_layer_convnet")


@register("lenet5", family="convolutional", canonical_input_shape=(32, 32, 1), canonical_num_classes=10,
          reference_params=61_706, reference="LeCun et al. 1998, 'Gradient-based learning applied to "
          "document recognition' (C1-S2-C3-S4-C5/F5-F6-output, full C3 connections, dense output)")
def lenet5(input_shape, num_classes, *, activation="tanh", pooling="avg"):
    """LeNet-5 (LeCun et al., 1998): conv5x5(6) - pool - conv5x5(16) - pool - fc120 - fc84 - out.

    The paper feeds 32x32 images (MNIST's 28x28 digits centred in a 32x32 field); smaller inputs
    are zero-padded to 32x32 in the same way, so the parameter count stays 61,706 for 10 classes.
    Larger inputs keep their size (the first dense layer grows). Simplifications shared by every
    modern re-implementation: full C3 connectivity, plain pooling, and a dense output layer in place
    of the RBF units.
    """
    input_shape = check_input_shape(input_shape)
    if pooling not in ("avg", "max"):
        raise ConfigError(f"pooling must be 'avg' or 'max', got {pooling!r}")
    pool = layers.AveragePooling2D if pooling == "avg" else layers.MaxPool2D
    inputs = layers.Input(input_shape, name="images")
    x = inputs
    h, w = input_shape[:2]
    if h < 32 or w < 32:
        pad_h, pad_w = max(0, 32 - h), max(0, 32 - w)
        x = layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)),
                                 name="pad_to_32")(x)
    x = layers.Conv2D(6, 5, activation=activation, name="c1")(x)
    x = pool(2, name="s2")(x)
    x = layers.Conv2D(16, 5, activation=activation, name="c3")(x)
    x = pool(2, name="s4")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation=activation, name="c5")(x)
    x = layers.Dense(84, activation=activation, name="f6")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="lenet5")


@register("lenet300_100", family="fully connected", canonical_input_shape=(28, 28, 1),
          canonical_num_classes=10, reference_params=266_610,
          reference="LeCun et al. 1998 (LeNet-300-100); Han et al. 2015/2016 pruning baseline")
def lenet300_100(input_shape, num_classes, *, activation="relu"):
    """LeNet-300-100: a 784-300-100-10 multilayer perceptron (LeCun et al., 1998).

    The fully connected baseline of the Deep Compression papers (Han et al., 2015, 2016).
    """
    input_shape = check_input_shape(input_shape)
    inputs = layers.Input(input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(300, activation=activation, name="fc1")(x)
    x = layers.Dense(100, activation=activation, name="fc2")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="lenet300_100")


@register("small_convnet", family="convolutional", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=(3 * 3 * 3 * 32 + 2 * 32) + (3 * 3 * 32 * 32 + 2 * 32) + (3 * 3 * 32 * 64 + 2 * 64)
          + (3 * 3 * 64 * 64 + 2 * 64) + (64 * 10 + 10),
          reference="this package: a VGG-style net sized for 8x8 to 32x32 images (count computed by hand)")
def small_convnet(input_shape, num_classes, *, width=32, dropout=0.3):
    """Small VGG-style CNN: 2 x {[conv3x3 - BN - ReLU] x 2 - 2x2 max pool} - global avg pool - dropout - affine.

    The package's default model: the lecture 9 recipe (stacked 3x3 convolutions, batchnorm,
    downsampling by pooling, global average pooling instead of big fully connected layers) at a
    size that trains in seconds on a CPU.
    """
    input_shape = check_input_shape(input_shape, min_size=4)
    (width,) = _dims("width", [width])
    dropout = _check_rate("dropout", dropout)
    inputs = layers.Input(input_shape, name="images")
    x = inputs
    for stage, filters in enumerate((width, 2 * width), start=1):
        for i in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                              name=f"conv{stage}_{i}")(x)
            x = layers.BatchNormalization(name=f"bn{stage}_{i}")(x)
            x = layers.ReLU(name=f"relu{stage}_{i}")(x)
        x = layers.MaxPool2D(2, name=f"pool{stage}")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name="small_convnet")
