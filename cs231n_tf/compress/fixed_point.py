"""Fixed-point simulation of a trained network (lecture 15's quantization recipe, from Qiu et al.,
2016, "Going deeper with embedded FPGA platform for convolutional neural network": dynamic fixed
point with a radix point chosen per layer).

A signed ``b``-bit fixed-point number with ``f`` fraction bits is an integer ``q`` in
``[-2^(b-1), 2^(b-1) - 1]`` times ``2^-f``; ``b - 1 - f`` bits sit left of the radix point (it may
be negative for tensors much smaller than 1). The recipe:

1. **Collect statistics** (:func:`collect_statistics`): the largest magnitude of every Dense/Conv2D
   kernel and bias, of the input, and of every layer's output over a few calibration batches.
2. **Choose the radix point per layer** (:func:`radix_point`): the most fraction bits whose range
   ``(2^(b-1) - 1) * 2^-f`` still covers the largest magnitude, so nothing observed is clipped.
3. **Quantize-dequantize** (:func:`quantize_dequantize`) weights, biases and activations with
   round-to-nearest (ties to even) and saturation; simulated in float, so any TF op still runs.
4. **Fine-tune** through the rounding with the straight-through estimator (gradient 1), keeping
   float master weights (:func:`fixed_point_model` + :func:`fine_tune`).

Batch normalisation parameters stay in float here (at deployment they fold into the preceding
convolution); its outputs are quantized like every other activation.
"""

import math

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.compress.distill import fine_tune
from cs231n_tf.compress.lowrank import rebuild_graph
from cs231n_tf.compress.ternary import QuantizedConv2D, QuantizedDense
from cs231n_tf.errors import ConfigError

L = tf.keras.layers

# Layers that only move or select values: quantizing their output again would change nothing.
_VIEWS = (L.Flatten, L.Reshape, L.Dropout, L.MaxPool2D, L.ZeroPadding2D, L.InputLayer)


def _check_bits(bits):
    return validation.int_in("bit width", bits, 2, 32)


def radix_point(max_abs, bits):
    """``(integer_bits, fraction_bits)`` for a signed ``bits``-wide number covering ``max_abs``.

    ``fraction_bits`` is the largest ``f`` with ``(2^(bits-1) - 1) * 2^-f >= max_abs``;
    ``integer_bits = bits - 1 - f`` (the remaining bit is the sign). A zero tensor gets ``f = bits - 1``.
    """
    bits = _check_bits(bits)
    max_abs = float(max_abs)
    if not math.isfinite(max_abs) or max_abs < 0:
        raise ConfigError(f"max_abs must be a finite non-negative number, got {max_abs!r}")
    if max_abs == 0.0:
        fraction = bits - 1
    else:
        top = 2 ** (bits - 1) - 1
        fraction = math.floor(math.log2(top / max_abs))
        # log2 rounding can land one step off either way; settle on the exact inequality.
        while top * 2.0 ** -fraction < max_abs:
            fraction -= 1
        while top * 2.0 ** -(fraction + 1) >= max_abs:
            fraction += 1
    return bits - 1 - fraction, fraction


def quantize_dequantize(x, bits, fraction_bits):
    """Round ``x`` to the signed fixed-point grid ``2^-fraction_bits`` with ``bits`` bits, saturating.

    Forward: ``clip(round(x * 2^f), -2^(b-1), 2^(b-1) - 1) * 2^-f``. Backward: the
    straight-through estimator, ``dy`` passed unchanged.
    """
    bits = _check_bits(bits)
    x = tf.convert_to_tensor(x)
    scale = tf.constant(2.0 ** fraction_bits, x.dtype)
    q = tf.clip_by_value(tf.round(x * scale), -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1) / scale
    return x + tf.stop_gradient(q - x)


class FixedPointQuantize(L.Layer):
    """Quantize-dequantize a tensor to ``bits`` bits with ``fraction_bits`` fraction bits."""

    def __init__(self, bits, fraction_bits, **kwargs):
        super().__init__(**kwargs)
        self.bits = _check_bits(bits)
        self.fraction_bits = int(fraction_bits)

    def call(self, inputs):
        return quantize_dequantize(inputs, self.bits, self.fraction_bits)

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "fraction_bits": self.fraction_bits}


class _FixedPointWeights:
    def _setup(self, bits, kernel_fraction_bits, bias_fraction_bits):
        self.bits = _check_bits(bits)
        self.kernel_fraction_bits = int(kernel_fraction_bits)
        self.bias_fraction_bits = int(bias_fraction_bits)

    def quantized_kernel(self):
        return quantize_dequantize(self.kernel, self.bits, self.kernel_fraction_bits)

    def quantized_bias(self):
        return quantize_dequantize(self.bias, self.bits, self.bias_fraction_bits)

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "kernel_fraction_bits": self.kernel_fraction_bits,
                "bias_fraction_bits": self.bias_fraction_bits}


class FixedPointDense(_FixedPointWeights, QuantizedDense):
    """Dense layer computing with fixed-point kernel and bias (float master copies)."""

    def __init__(self, units, bits=8, kernel_fraction_bits=7, bias_fraction_bits=7, **kwargs):
        super().__init__(units, **kwargs)
        self._setup(bits, kernel_fraction_bits, bias_fraction_bits)


class FixedPointConv2D(_FixedPointWeights, QuantizedConv2D):
    """Conv2D layer computing with fixed-point kernel and bias (float master copies)."""

    def __init__(self, filters, kernel_size, bits=8, kernel_fraction_bits=7, bias_fraction_bits=7, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self._setup(bits, kernel_fraction_bits, bias_fraction_bits)


def _weighted(layer):
    return type(layer) in (L.Dense, L.Conv2D) and (type(layer) is L.Dense or layer.groups == 1)


def collect_statistics(model, dataset, batches=8):
    """Largest magnitudes seen in ``model`` over ``batches`` batches of ``dataset``.

    Returns ``{"input": max|x|, "activations": {layer: max|output|}, "kernels": {layer: max|W|},
    "biases": {layer: max|b|}}`` for the top-level layers of a functional model. ``dataset``
    yields ``(normalised images, labels)``.
    """
    batches = validation.positive_int("batches", batches)
    layers = [layer for layer in model.layers if not isinstance(layer, _VIEWS)]
    probe = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    activations = np.zeros(len(layers))
    input_max, seen = 0.0, 0
    for x, _ in dataset.take(batches):
        input_max = max(input_max, float(tf.reduce_max(tf.abs(x))))
        outs = probe(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        activations = np.maximum(activations, [float(tf.reduce_max(tf.abs(o))) for o in outs])
        seen += 1
    if seen == 0:
        raise ConfigError("the calibration dataset yielded no batches")
    weighted = [layer for layer in model.layers if _weighted(layer)]
    return {
        "input": input_max,
        "activations": {layer.name: float(a) for layer, a in zip(layers, activations)},
        "kernels": {layer.name: float(np.abs(layer.kernel.numpy()).max()) for layer in weighted},
        "biases": {layer.name: float(np.abs(layer.bias.numpy()).max()) if layer.use_bias else 0.0
                   for layer in weighted},
    }


def fixed_point_model(model, statistics, bits):
    """A copy of ``model`` simulating ``bits``-bit fixed point with per-layer radix points.

    The input and every layer output (except pure data movement: flatten, reshape, dropout, max
    pooling, padding) pass through :class:`FixedPointQuantize`; Dense/Conv2D layers compute with
    fixed-point kernels and biases. Radix points come from ``statistics``
    (:func:`collect_statistics`) and stay fixed while fine-tuning.
    """
    bits = _check_bits(bits)

    def replace(layer):
        if isinstance(layer, _VIEWS):
            return None
        if _weighted(layer):
            config = layer.get_config()
            extra = {"bits": bits, "kernel_fraction_bits": radix_point(statistics["kernels"][layer.name], bits)[1],
                     "bias_fraction_bits": radix_point(statistics["biases"][layer.name], bits)[1]}
            new = (FixedPointDense if type(layer) is L.Dense else FixedPointConv2D).from_config({**config, **extra})
        else:
            new = layer.__class__.from_config(layer.get_config())
        out_q = FixedPointQuantize(bits, radix_point(statistics["activations"][layer.name], bits)[1],
                                   name=f"{layer.name}_fixed{bits}")

        def apply(*args, **kwargs):
            y = new(*args, **kwargs)
            new.set_weights(layer.get_weights())
            return out_q(y)

        return apply

    rebuilt = rebuild_graph(model, replace, name=f"{model.name}_fixed{bits}")
    inputs = tf.keras.Input(batch_shape=model.inputs[0].shape, name="images")
    x = FixedPointQuantize(bits, radix_point(statistics["input"], bits)[1], name=f"input_fixed{bits}")(inputs)
    return tf.keras.Model(inputs, rebuilt(x), name=rebuilt.name)


def accuracy(model, dataset):
    """Top-1 accuracy of ``model`` on a batched ``(images, labels)`` dataset."""
    predict = tf.function(lambda x: tf.argmax(model(x, training=False), -1, output_type=tf.int32))
    correct = total = 0
    for x, y in dataset:
        correct += int(tf.reduce_sum(tf.cast(predict(x) == tf.cast(y, tf.int32), tf.int32)))
        total += int(y.shape[0])
    return correct / total


def _training_steps(data, steps, seed):
    """The first ``steps`` batches of training epochs 0, 1, ... (each shuffled by ``(seed, epoch)``)."""
    epochs = -(-steps // data.steps_per_epoch())
    batches = data.train_epoch(0, seed)
    for epoch in range(1, epochs):
        batches = batches.concatenate(data.train_epoch(epoch, seed))
    return batches.take(steps)


def accuracy_per_bit_width(model, data, widths=(16, 8, 6, 4), finetune_steps=100, lr=1e-4,
                           calibration_batches=8, split="test", seed=0):
    """Accuracy of ``model`` simulated at each fixed-point bit width, before and after fine-tuning.

    ``data`` is a :class:`cs231n_tf.data.pipeline.DataSplits`; statistics come from
    ``calibration_batches`` training batches, fine-tuning runs ``finetune_steps`` Adam steps at
    ``lr`` on training batches in the order fixed by ``seed`` (0 skips it); every width starts
    from ``model``'s weights, which are never changed. Returns one dict per width: ``bits``,
    ``float_accuracy``, ``accuracy`` (straight after quantization), ``finetuned_accuracy``.
    """
    finetune_steps = validation.non_negative_int("finetune_steps", finetune_steps)
    widths = [_check_bits(b) for b in widths]
    stats = collect_statistics(model, data.train_epoch(0, seed), calibration_batches)
    evaluation = data.split(split)
    float_accuracy = accuracy(model, evaluation)
    rows = []
    for bits in widths:
        fixed = fixed_point_model(model, stats, bits)
        row = {"bits": bits, "float_accuracy": float_accuracy, "accuracy": accuracy(fixed, evaluation)}
        if finetune_steps:
            fine_tune(fixed, _training_steps(data, finetune_steps, seed), 1, lr)
            row["finetuned_accuracy"] = accuracy(fixed, evaluation)
        rows.append(row)
    return rows
