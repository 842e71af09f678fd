"""Ternary and binary weight layers (lecture 15).

**Trained Ternary Quantization** (Zhu, Han, Mao & Dally, 2017, "Trained ternary quantization").
Each layer keeps full-precision latent weights ``w~`` and two learned scales ``W_p, W_n > 0``.
With threshold ``D = t * max|w~|`` (``t`` a hyper-parameter, the paper uses 0.05) the weights used
in the forward pass are (eq. 6)

    w_t = W_p  where w~ > D,      0  where |w~| <= D,      -W_n  where w~ < -D.

Gradients (eqs. 7-8), with ``I_p``, ``I_n``, ``I_z`` the three index sets:

    dL/dW_p = sum_{i in I_p} dL/dw_t(i)
    dL/dW_n = -sum_{i in I_n} dL/dw_t(i)     (the paper writes the sum; the sign follows from
                                              w_t = -W_n, as autodiff gives in the authors' code)
    dL/dw~  = W_p * dL/dw_t  on I_p,   1 * dL/dw_t  on I_z,   W_n * dL/dw_t  on I_n.

The threshold is treated as a constant. ``W_p``/``W_n`` start at the mean magnitude of the latent
weights above the threshold, so a float layer converts without a jump in scale.

**Binary weights**: ``w_b = sign(w) * alpha`` with ``alpha = mean|w|`` over the layer (the scale of
XNOR-Net, Rastegari et al., 2016, over BinaryConnect's ``sign(w)``, Courbariaux et al., 2015;
``sign(0) = +1`` so exactly two values). The sign's gradient is the straight-through estimator
clipped to ``|w| <= 1`` (BinaryConnect's hard-tanh STE); ``alpha``'s gradient is exact.

The layers are ``tf.keras.layers.Dense``/``Conv2D`` subclasses that only change which kernel the
product uses, so the trainer, exporters and profiler treat them as ordinary layers. Importing this
module registers ``ternary_lenet300_100``, ``binary_lenet300_100``, ``ternary_lenet5`` and
``binary_lenet5`` in the model registry; the registry imports it when one of those names is looked
up (``cs231n_tf.models.registry.LAZY_BUILDERS``), so ``cs231n_tf.train.train(model=...)`` needs no
import first. :func:`ternarize` and :func:`binarize` convert a trained float model for fine-tuning.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf.compress.lowrank import rebuild_graph
from cs231n_tf.errors import ConfigError
from cs231n_tf.models.registry import check_input_shape, register

L = tf.keras.layers


def _check_threshold(threshold):
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold < 1.0:
        raise ConfigError(f"threshold must be a fraction in [0, 1) of max|w|, got {threshold!r}")
    return float(threshold)


def ternary_weights(latent, w_p, w_n, threshold):
    """TTQ's ternary kernel ``w_t`` (eq. 6) with the paper's gradients (eqs. 7-8).

    ``latent`` is the full-precision kernel (any shape), ``w_p``/``w_n`` positive scalars, and
    ``threshold`` the fraction ``t`` of ``max|latent|`` below which weights are zero.
    """

    @tf.custom_gradient
    def quantize(w, wp, wn):
        delta = threshold * tf.reduce_max(tf.abs(w))
        positive = tf.cast(w > delta, w.dtype)
        negative = tf.cast(w < -delta, w.dtype)
        zero = 1.0 - positive - negative

        def grad(dy):
            d_w = dy * (wp * positive + zero + wn * negative)
            d_wp = tf.reduce_sum(dy * positive)
            d_wn = -tf.reduce_sum(dy * negative)
            return d_w, d_wp, d_wn

        return wp * positive - wn * negative, grad

    return quantize(latent, w_p, w_n)


def binary_weights(latent):
    """``sign(latent) * mean|latent|`` with the clipped straight-through estimator for the sign."""

    @tf.custom_gradient
    def sign(w):
        def grad(dy):
            return dy * tf.cast(tf.abs(w) <= 1.0, dy.dtype)

        return tf.where(w >= 0, tf.ones_like(w), -tf.ones_like(w)), grad

    return sign(latent) * tf.reduce_mean(tf.abs(latent))


class _TernaryMixin:
    """Adds TTQ's scales to a Dense/Conv2D layer and swaps the kernel for its ternary version."""

    def _build_scales(self):
        with tf.init_scope():  # build may run while a functional graph is traced
            w = np.abs(self.kernel.numpy())
        above = w[w > self.threshold * w.max()]
        scale = float(above.mean()) if above.size else 1.0
        self.w_p = self.add_weight("w_p", shape=(), initializer=tf.keras.initializers.Constant(scale),
                                   constraint=tf.keras.constraints.NonNeg())
        self.w_n = self.add_weight("w_n", shape=(), initializer=tf.keras.initializers.Constant(scale),
                                   constraint=tf.keras.constraints.NonNeg())

    def quantized_kernel(self):
        """The ternary kernel the layer computes with (three distinct values)."""
        return ternary_weights(self.kernel, self.w_p, self.w_n, self.threshold)


class _BinaryMixin:
    def quantized_kernel(self):
        """The binary kernel the layer computes with (two distinct values)."""
        return binary_weights(self.kernel)


class QuantizedDense(L.Dense):
    """Dense computing with ``quantized_kernel()`` and ``quantized_bias()`` in place of the variables."""

    def quantized_kernel(self):
        return self.kernel

    def quantized_bias(self):
        return self.bias

    def call(self, inputs):
        y = tf.tensordot(tf.cast(inputs, self.compute_dtype), tf.cast(self.quantized_kernel(), self.compute_dtype),
                         [[inputs.shape.rank - 1], [0]])
        if self.use_bias:
            y = tf.nn.bias_add(y, tf.cast(self.quantized_bias(), self.compute_dtype))
        return self.activation(y) if self.activation is not None else y


class QuantizedConv2D(L.Conv2D):
    """Conv2D computing with ``quantized_kernel()`` and ``quantized_bias()`` in place of the variables."""

    def quantized_kernel(self):
        return self.kernel

    def quantized_bias(self):
        return self.bias

    def call(self, inputs):
        y = tf.nn.conv2d(tf.cast(inputs, self.compute_dtype), tf.cast(self.quantized_kernel(), self.compute_dtype),
                         strides=self.strides, padding=self.padding.upper(), dilations=self.dilation_rate)
        if self.use_bias:
            y = tf.nn.bias_add(y, tf.cast(self.quantized_bias(), self.compute_dtype))
        return self.activation(y) if self.activation is not None else y


def _check_conv(layer):
    if layer.groups != 1 or layer.data_format != "channels_last":
        raise ConfigError(f"layer {layer.name!r}: quantized convolutions need groups=1 and channels_last")


class TernaryDense(_TernaryMixin, QuantizedDense):
    """Dense layer with Trained Ternary Quantization weights; ``threshold`` = TTQ's ``t``."""

    def __init__(self, units, threshold=0.05, **kwargs):
        super().__init__(units, **kwargs)
        self.threshold = _check_threshold(threshold)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_scales()

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class TernaryConv2D(_TernaryMixin, QuantizedConv2D):
    """Conv2D layer with Trained Ternary Quantization weights; ``threshold`` = TTQ's ``t``."""

    def __init__(self, filters, kernel_size, threshold=0.05, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.threshold = _check_threshold(threshold)
        _check_conv(self)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_scales()

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class BinaryDense(_BinaryMixin, QuantizedDense):
    """Dense layer with binary weights ``sign(w) * mean|w|``."""


class BinaryConv2D(_BinaryMixin, QuantizedConv2D):
    """Conv2D layer with binary weights ``sign(w) * mean|w|``."""

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        _check_conv(self)


def _convert(model, dense_cls, conv_cls, extra, keep_float):
    def replace(layer):
        if layer.name in keep_float or type(layer) not in (L.Dense, L.Conv2D):
            return None
        cls = dense_cls if type(layer) is L.Dense else conv_cls
        config = layer.get_config()
        new = cls.from_config({**config, **extra})

        def apply(x):
            y = new(x)
            # The scales were initialised from the random kernel; reset them from the trained one.
            new.kernel.assign(layer.kernel)
            if new.use_bias:
                new.bias.assign(layer.bias)
            if hasattr(new, "w_p"):
                w = np.abs(layer.kernel.numpy())
                above = w[w > new.threshold * w.max()]
                scale = float(above.mean()) if above.size else 1.0
                new.w_p.assign(scale)
                new.w_n.assign(scale)
            return y

        return apply

    unknown = sorted(set(keep_float) - {layer.name for layer in model.layers})
    if unknown:
        raise ConfigError(f"model {model.name!r} has no layer(s) {', '.join(unknown)}")
    return rebuild_graph(model, replace)


def ternarize(model, threshold=0.05, keep_float=()):
    """A copy of a trained functional ``model`` with every Dense/Conv2D made TTQ-ternary.

    Latent weights start from the trained kernels; fine-tune afterwards. ``keep_float`` names
    layers to leave in full precision (the TTQ paper keeps the first and last layers).
    """
    _check_threshold(threshold)
    return _convert(model, TernaryDense, TernaryConv2D, {"threshold": threshold}, tuple(keep_float))


def binarize(model, keep_float=()):
    """A copy of a trained functional ``model`` with every Dense/Conv2D given binary weights."""
    return _convert(model, BinaryDense, BinaryConv2D, {}, tuple(keep_float))


def quantized_kernels(model):
    """``{layer name: kernel used at inference (NumPy)}`` for every ternary/binary layer."""
    return {layer.name: layer.quantized_kernel().numpy()
            for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, (_TernaryMixin, _BinaryMixin))}


def _lenet300_100(input_shape, num_classes, dense, name, **extra):
    input_shape = check_input_shape(input_shape)
    inputs = L.Input(input_shape, name="images")
    x = L.Flatten(name="flatten")(inputs)
    x = dense(300, activation="relu", name="fc1", **extra)(x)
    x = dense(100, activation="relu", name="fc2", **extra)(x)
    outputs = dense(num_classes, name="logits", **extra)(x)
    return tf.keras.Model(inputs, outputs, name=name)


def _lenet5(input_shape, num_classes, dense, conv, name, **extra):
    input_shape = check_input_shape(input_shape)
    inputs = L.Input(input_shape, name="images")
    x = inputs
    h, w = input_shape[:2]
    if h < 32 or w < 32:
        pad_h, pad_w = max(0, 32 - h), max(0, 32 - w)
        x = L.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)), name="pad_to_32")(x)
    x = conv(6, 5, activation="relu", name="c1", **extra)(x)
    x = L.MaxPool2D(2, name="s2")(x)
    x = conv(16, 5, activation="relu", name="c3", **extra)(x)
    x = L.MaxPool2D(2, name="s4")(x)
    x = L.Flatten(name="flatten")(x)
    x = dense(120, activation="relu", name="c5", **extra)(x)
    x = dense(84, activation="relu", name="f6", **extra)(x)
    outputs = dense(num_classes, name="logits", **extra)(x)
    return tf.keras.Model(inputs, outputs, name=name)


_TTQ = "Zhu et al. 2017, 'Trained ternary quantization'"
_BIN = "Courbariaux et al. 2015 (BinaryConnect); Rastegari et al. 2016 (XNOR-Net scale)"


@register("ternary_lenet300_100", family="compressed", canonical_input_shape=(28, 28, 1), canonical_num_classes=10,
          reference_params=266_610 + 2 * 3, reference=_TTQ + "; LeNet-300-100 plus two scales per layer")
def ternary_lenet300_100(input_shape, num_classes, *, threshold=0.05):
    """LeNet-300-100 with Trained Ternary Quantization weights in every layer (Zhu et al., 2017)."""
    return _lenet300_100(input_shape, num_classes, TernaryDense, "ternary_lenet300_100",
                         threshold=_check_threshold(threshold))


@register("binary_lenet300_100", family="compressed", canonical_input_shape=(28, 28, 1), canonical_num_classes=10,
          reference_params=266_610, reference=_BIN)
def binary_lenet300_100(input_shape, num_classes):
    """LeNet-300-100 with binary weights ``sign(w) * mean|w|`` in every layer."""
    return _lenet300_100(input_shape, num_classes, BinaryDense, "binary_lenet300_100")


@register("ternary_lenet5", family="compressed", canonical_input_shape=(32, 32, 1), canonical_num_classes=10,
          reference_params=61_706 + 2 * 5, reference=_TTQ + "; LeNet-5 (ReLU, max pooling) plus two scales per layer")
def ternary_lenet5(input_shape, num_classes, *, threshold=0.05):
    """LeNet-5 (ReLU, max pooling) with Trained Ternary Quantization weights in every layer."""
    return _lenet5(input_shape, num_classes, TernaryDense, TernaryConv2D, "ternary_lenet5",
                   threshold=_check_threshold(threshold))


@register("binary_lenet5", family="compressed", canonical_input_shape=(32, 32, 1), canonical_num_classes=10,
          reference_params=61_706, reference=_BIN + "; LeNet-5 (ReLU, max pooling)")
def binary_lenet5(input_shape, num_classes):
    """LeNet-5 (ReLU, max pooling) with binary weights ``sign(w) * mean|w|`` in every layer."""
    return _lenet5(input_shape, num_classes, BinaryDense, BinaryConv2D, "binary_lenet5")
