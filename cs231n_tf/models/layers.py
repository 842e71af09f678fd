"""Building blocks shared by the architecture zoo (lecture 9).

Two kinds of thing live here:

* functions that add a small sub-graph to a functional model (``conv_bn``, ``ceil_max_pool``,
  the inception modules), so every convolution stays a plain Keras layer that the parameter
  counter, the pruning tools and the exporters see directly;
* the custom layers the zoo needs and Keras lacks: AlexNet's local response normalisation,
  the parameter-free "option A" shortcut of the CIFAR ResNets, stochastic depth and FractalNet's
  drop-path. They hold no weights, respect ``self.compute_dtype`` under mixed precision and are
  registered as serializable, so models using them save and load without custom code.

Layers with randomness draw from Keras's seeded generator (``BaseRandomLayer``), never from
Python-side random state, so a ``tf.function`` step stays one static graph. With
``training=False`` they are deterministic and compute the full network.
"""

import tensorflow as tf

from cs231n_tf.errors import ConfigError

layers = tf.keras.layers

# PyTorch's (and Caffe's) batchnorm settings, which the reference implementations whose
# parameter counts we match were trained with; Keras's defaults (0.99, 1e-3) adapt more slowly.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

_serializable = tf.keras.utils.register_keras_serializable(package="cs231n_tf")
_smart_cond = tf.__internal__.smart_cond.smart_cond


def check_probability(name, value, *, low_open=False, high_open=False):
    """``value`` as a float in [0, 1] (ends excluded as asked), or :class:`ConfigError`."""
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}") from None
    too_low = p <= 0.0 if low_open else p < 0.0
    too_high = p >= 1.0 if high_open else p > 1.0
    if too_low or too_high:
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ConfigError(f"{name} must be in {interval}, got {value!r}")
    return p


def conv_bn(x, filters, kernel_size, *, strides=1, batchnorm=True, activation=True, groups=1, name):
    """Convolution - [batchnorm] - [ReLU], the unit every modern network here is made of.

    The convolution carries a bias only without batchnorm (the norm's beta replaces it). Strided
    convolutions pad symmetrically by ``kernel_size // 2`` as in the papers' Caffe/Torch code, so
    output pixel ``i`` is centred on input pixel ``stride * i`` and lines up with a strided
    shortcut; TensorFlow's ``"same"`` would pad only at the bottom/right for even inputs.
    Shapes: ``(N, H, W, C) -> (N, ceil(H / strides), ceil(W / strides), filters)``.
    """
    if strides > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, groups=groups,
                      use_bias=not batchnorm, kernel_initializer="he_normal", name=f"{name}_conv")(x)
    if batchnorm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    if activation:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def bn_relu(x, *, name):
    """Batchnorm - ReLU: the pre-activation of He et al. (2016) and DenseNet."""
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def ceil_max_pool(x, pool_size, strides, *, name):
    """Max pooling with Caffe's (and PyTorch's ``ceil_mode=True``) output size.

    ``out = ceil((H - pool_size) / strides) + 1``: the last window may hang over the bottom/right
    edge. GoogLeNet and SqueezeNet were designed with it, and it differs from both ``"valid"``
    (floor) and ``"same"`` (``ceil(H / strides)``) for odd sizes. The overhang is filled with
    zeros, which never wins the max because every caller pools ReLU outputs (non-negative).
    """
    height, width = x.shape[1], x.shape[2]

    def overhang(size):
        out = -(-(size - pool_size) // strides) + 1
        return (out - 1) * strides + pool_size - size

    pad_h, pad_w = overhang(height), overhang(width)
    if pad_h or pad_w:
        x = layers.ZeroPadding2D(((0, pad_h), (0, pad_w)), name=f"{name}_pad")(x)
    return layers.MaxPool2D(pool_size, strides, name=name)(x)


def naive_inception_module(x, filters_1x1, filters_3x3, filters_5x5, *, batchnorm=False, name):
    """Naive inception module (Szegedy et al. 2015, Fig. 2a; lecture 9).

    Parallel 1x1, 3x3 and 5x5 'same' convolutions and a 3x3 max pool, concatenated on channels.
    The pool branch passes all input channels through, so the output depth only grows and the
    3x3/5x5 convolutions run on the full input depth — the cost the bottleneck version removes.
    Shapes: ``(N, H, W, C) -> (N, H, W, filters_1x1 + filters_3x3 + filters_5x5 + C)``.
    """
    b1 = conv_bn(x, filters_1x1, 1, batchnorm=batchnorm, name=f"{name}_1x1")
    b2 = conv_bn(x, filters_3x3, 3, batchnorm=batchnorm, name=f"{name}_3x3")
    b3 = conv_bn(x, filters_5x5, 5, batchnorm=batchnorm, name=f"{name}_5x5")
    b4 = layers.MaxPool2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    return layers.Concatenate(name=f"{name}_concat")([b1, b2, b3, b4])


def inception_module(x, filters_1x1, reduce_3x3, filters_3x3, reduce_5x5, filters_5x5, pool_proj, *,
                     batchnorm=True, kernel_5x5=5, name):
    """Inception module with 1x1 bottlenecks (Szegedy et al. 2015, Fig. 2b; lecture 9).

    1x1 convolutions reduce the depth before the 3x3 and 5x5 convolutions and project the pool
    branch, which is what makes GoogLeNet cheap. The arguments follow the columns of the paper's
    Table 1. ``kernel_5x5`` is the kernel of the "5x5" branch: 5 in the paper, 3 in torchvision's
    GoogLeNet (a known slip kept there for its pretrained weights).
    Shapes: ``(N, H, W, C) -> (N, H, W, filters_1x1 + filters_3x3 + filters_5x5 + pool_proj)``.
    """
    b1 = conv_bn(x, filters_1x1, 1, batchnorm=batchnorm, name=f"{name}_1x1")
    b2 = conv_bn(x, reduce_3x3, 1, batchnorm=batchnorm, name=f"{name}_3x3_reduce")
    b2 = conv_bn(b2, filters_3x3, 3, batchnorm=batchnorm, name=f"{name}_3x3")
    b3 = conv_bn(x, reduce_5x5, 1, batchnorm=batchnorm, name=f"{name}_5x5_reduce")
    b3 = conv_bn(b3, filters_5x5, kernel_5x5, batchnorm=batchnorm, name=f"{name}_5x5")
    b4 = layers.MaxPool2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    b4 = conv_bn(b4, pool_proj, 1, batchnorm=batchnorm, name=f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([b1, b2, b3, b4])


@_serializable
class LocalResponseNormalization(layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al. 2012, section 3.3).

    ``b[c] = a[c] / (k + alpha * sum(a[c']^2 for |c' - c| <= n // 2)) ** beta`` with the paper's
    ``k=2, n=5, alpha=1e-4, beta=0.75``. Note alpha is not divided by ``n`` (Caffe's LRN layer
    does divide). Computed in float32 even under mixed precision, because the squared sum of
    ReLU activations overflows float16 (max 65504) for activations above ~115.
    Shapes: ``(N, H, W, C) -> (N, H, W, C)``.
    """

    def __init__(self, size=5, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if int(size) != size or size < 1 or size % 2 == 0:
            raise ConfigError(f"LRN size must be a positive odd int, got {size!r}")
        self.size = int(size)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        y = tf.nn.local_response_normalization(
            x, depth_radius=self.size // 2, bias=self.bias, alpha=self.alpha, beta=self.beta)
        return tf.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "bias": self.bias, "alpha": self.alpha,
                "beta": self.beta}


@_serializable
class ZeroPadShortcut(layers.Layer):
    """He et al. (2015) option A shortcut: subsample by ``strides``, zero-pad the new channels.

    Parameter-free, so the CIFAR ResNets keep the paper's counts (0.27M for ResNet-20).
    Shapes: ``(N, H, W, C) -> (N, ceil(H / strides), ceil(W / strides), filters)``.
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels > self.filters:
            raise ConfigError(f"ZeroPadShortcut cannot shrink {channels} channels to {self.filters}")
        self.extra_channels = self.filters - channels
        super().build(input_shape)

    def call(self, inputs):
        x = inputs[:, ::self.strides, ::self.strides, :]
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, self.extra_channels]])

    def compute_output_shape(self, input_shape):
        n, h, w, _ = tf.TensorShape(input_shape).as_list()
        ceil = lambda d: None if d is None else -(-d // self.strides)  # noqa: E731
        return tf.TensorShape([n, ceil(h), ceil(w), self.filters])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


@_serializable
class StochasticDepth(tf.keras.__internal__.layers.BaseRandomLayer):
    """Randomly drops a residual branch while training (Huang et al. 2016, "Deep Networks with
    Stochastic Depth").

    Apply it to the residual branch ``f(x)`` just before the addition: ``x + StochasticDepth(p)(f(x))``.
    While training the branch is kept with probability ``p`` (the survival probability) and,
    when kept, scaled by ``1 / p``; when dropped the block is the identity. At test time the layer
    passes ``f(x)`` through unchanged, so the deterministic full network is used as is. This is
    the "inverted" form of the paper's rule (train with ``b * f``, test with ``p * f``): the same
    expected output, with the scaling moved to training like inverted dropout.

    One coin is tossed per mini-batch as in the paper; ``per_sample=True`` tosses one per example
    (the variant most later code uses).
    Shapes: any ``(N, ...) -> (N, ...)``.
    """

    def __init__(self, survival_probability, per_sample=False, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.survival_probability = check_probability(
            "survival_probability", survival_probability, low_open=True)
        self.per_sample = bool(per_sample)
        self.seed = seed

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        p = self.survival_probability
        if p == 1.0:
            return tf.identity(inputs)

        def dropped():
            if self.per_sample:
                shape = tf.concat([tf.shape(inputs)[:1], tf.ones([inputs.shape.rank - 1], tf.int32)], 0)
            else:
                shape = [1] * inputs.shape.rank
            keep = self._random_generator.random_uniform(shape, dtype=tf.float32) < p
            return inputs * tf.cast(tf.cast(keep, tf.float32) / p, inputs.dtype)

        return _smart_cond(training, dropped, lambda: tf.identity(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "survival_probability": self.survival_probability,
                "per_sample": self.per_sample, "seed": self.seed}


@_serializable
class DropPathSelector(tf.keras.__internal__.layers.BaseRandomLayer):
    """Chooses FractalNet's drop-path mode once per mini-batch (Larsson et al. 2016, section 3.1).

    With probability ``global_fraction`` the batch uses *global* drop-path: one column, drawn
    uniformly, is the only path kept by every join in the network, so the batch trains a single
    plain column. Otherwise it uses *local* drop-path, where each :class:`FractalJoin` drops its
    inputs independently. The choice is encoded as a ``(N, num_columns)`` tensor of 0/1 flags
    (every row identical): all ones for local mode, one-hot of the chosen column for global mode.
    Its input is only used for the batch size. At test time it returns all ones.
    """

    def __init__(self, num_columns, global_fraction=0.5, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if int(num_columns) != num_columns or num_columns < 1:
            raise ConfigError(f"num_columns must be a positive int, got {num_columns!r}")
        self.num_columns = int(num_columns)
        self.global_fraction = check_probability("global_fraction", global_fraction)
        self.seed = seed

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        batch = tf.shape(inputs)[0]
        local = tf.ones([self.num_columns], self.compute_dtype)

        def sampled():
            draws = self._random_generator.random_uniform([self.num_columns + 1], dtype=tf.float32)
            column = tf.argmax(draws[1:])  # uniform over columns: the largest of iid uniforms
            one_hot = tf.one_hot(column, self.num_columns, dtype=self.compute_dtype)
            return tf.where(draws[0] < self.global_fraction, one_hot, local)

        flags = _smart_cond(training, sampled, lambda: local)
        return tf.tile(flags[tf.newaxis], tf.stack([batch, 1]))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], self.num_columns])

    def get_config(self):
        return {**super().get_config(), "num_columns": self.num_columns,
                "global_fraction": self.global_fraction, "seed": self.seed}


@_serializable
class FractalJoin(tf.keras.__internal__.layers.BaseRandomLayer):
    """FractalNet's join: element-wise mean of the columns meeting here, with drop-path.

    ``inputs`` is the list of column outputs (same shape), followed by the
    :class:`DropPathSelector` flags when ``columns`` (the column index of each input) is given.
    While training:

    * local mode: each input is dropped with probability ``drop_rate``, keeping at least one
      (one survivor is drawn at random when all would be dropped);
    * global mode: only the selected column is kept. A join the selected column does not pass
      through feeds only paths that a later join drops, so it keeps all its inputs (its value
      is unused; this just keeps the batch statistics of the layers after it ordinary).

    The output is the mean of the kept inputs. At test time every input is kept: the full
    network. Shapes: ``k x (N, H, W, C) [+ (N, num_columns)] -> (N, H, W, C)``.
    """

    def __init__(self, columns=None, drop_rate=0.15, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.columns = None if columns is None else [int(c) for c in columns]
        self.drop_rate = check_probability("drop_rate", drop_rate, high_open=True)
        self.seed = seed

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        inputs = list(inputs)
        if self.columns is not None:
            flags = inputs.pop()[0]
            if len(self.columns) != len(inputs):
                raise ConfigError(
                    f"FractalJoin got {len(inputs)} inputs for {len(self.columns)} column indices")
        stacked = tf.stack(inputs)
        k = len(inputs)
        dtype = stacked.dtype

        def drop_path():
            draws = self._random_generator.random_uniform([2 * k], dtype=tf.float32)
            keep = draws[:k] >= self.drop_rate
            survivor = tf.one_hot(tf.argmax(draws[k:]), k, on_value=True, off_value=False)
            mask = tf.cast(tf.where(tf.reduce_any(keep), keep, survivor), dtype)
            if self.columns is not None:
                allowed = tf.gather(flags, self.columns)
                is_global = tf.reduce_min(flags) < 0.5
                global_mask = tf.where(tf.reduce_any(allowed > 0.5), allowed, tf.ones_like(allowed))
                mask = tf.where(is_global, global_mask, mask)
            weights = tf.reshape(mask / tf.reduce_sum(mask), [k] + [1] * (stacked.shape.rank - 1))
            return tf.reduce_sum(stacked * weights, axis=0)

        return _smart_cond(training, drop_path, lambda: tf.reduce_mean(stacked, axis=0))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "columns": self.columns, "drop_rate": self.drop_rate,
                "seed": self.seed}
