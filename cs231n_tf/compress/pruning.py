"""Pruning (lecture 15): magnitude pruning with tfmot, Han et al.'s iterative loop, filter pruning.

* Magnitude pruning -- Han et al. 2015, "Learning both Weights and Connections for Efficient
  Neural Networks": zero the smallest-magnitude weights, retrain the rest, repeat. The masks and
  schedules are tensorflow-model-optimization's (``prune_low_magnitude`` with ``ConstantSparsity``
  or Zhu & Gupta's 2017 ``PolynomialDecay``); only kernels are pruned, never biases.
* Structured pruning -- Li et al. 2017, "Pruning Filters for Efficient ConvNets": drop whole conv
  filters / dense units with the smallest L1 norm and rebuild a genuinely smaller model (the next
  layer loses the matching input channels), so parameters and multiply-adds really shrink.

Models are functional or Sequential Keras models taking preprocessed (normalised) images, as the
package's builders produce; data is a :class:`cs231n_tf.data.DataSplits`.
"""

import math

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

from cs231n_tf import validation
from cs231n_tf.engine.hooks import Hook
from cs231n_tf.errors import ConfigError
from cs231n_tf.tasks.classification import train_model

sparsity_api = tfmot.sparsity.keras
SCHEDULES = ("constant", "polynomial")


# ---- shared helpers (also used by clustering and deep_compression) ---------------------------


def check_sparsity(value, name="sparsity"):
    """``value`` as a float in [0, 1), else :class:`ConfigError`."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must be in [0, 1) (the fraction of weights set to zero), got {value!r}")
    return value


def kernel_layers(model):
    """Layers of ``model`` that own a ``kernel`` (Dense, Conv*): the ones compression targets."""
    return [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]


def per_layer(model, value, check, what):
    """Resolve ``value`` (one number for every kernel layer, or ``{layer name: number}``) to a dict.

    Unknown layer names raise :class:`ConfigError` listing the layers that can be targeted.
    """
    names = [layer.name for layer in kernel_layers(model)]
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(layer.name for layer in model.layers))
        if unknown:
            raise ConfigError(f"unknown layer name(s) {', '.join(map(repr, unknown))} for {what}; "
                              f"layers with weights: {', '.join(names)}")
        return {name: check(v, f"{what} of layer {name!r}") for name, v in value.items()}
    return {name: check(value, what) for name in names}


def copy_model(model):
    """A functional/Sequential clone of ``model`` with the same weights and no shared state."""
    try:
        clone = tf.keras.models.clone_model(model)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model {model.name!r} cannot be cloned (subclassed models are not supported): "
                          f"{str(exc).splitlines()[0]}") from exc
    clone.set_weights(model.get_weights())
    return clone


def wrap_layers(model, targets, wrap, what):
    """Clone ``model`` with ``wrap(layer, value)`` applied to the layers named in ``targets``.

    ``wrap`` raising ``ValueError`` (tfmot's answer to a layer type it cannot handle) becomes a
    :class:`ConfigError` naming the layer.
    """
    source = copy_model(model)

    def clone_function(layer):
        if layer.name not in targets:
            return layer
        try:
            return wrap(layer, targets[layer.name])
        except ValueError as exc:
            raise ConfigError(f"layer {layer.name!r} ({type(layer).__name__}) cannot be {what}: "
                              f"{str(exc).splitlines()[0]}") from exc

    return tf.keras.models.clone_model(source, clone_function=clone_function)


def train_epochs(data, seed=0):
    """``epoch -> dataset``: the training split in an order fixed by ``(seed, epoch)``, every example used."""
    return lambda epoch: data.train_epoch(epoch, seed, drop_remainder=False)


def fit(model, data, epochs, lr=1e-3, seed=0, hooks=(), **settings):
    """Fine-tune ``model`` with Adam on the training split for ``epochs`` epochs, on the engine.

    ``seed`` fixes the engine's random state and the data order, so a fine-tuning run is
    repeatable. tfmot's pruning wrappers need :class:`UpdatePruningStep` among the ``hooks``
    (:func:`fine_tune_pruned` adds it); ``settings`` are engine settings (``strategy``...).
    """
    if epochs <= 0:
        return model
    train_model(model, train_epochs(data, seed), int(epochs), tf.keras.optimizers.Adam(lr), hooks=hooks,
                seed=seed, **settings)
    return model


class UpdatePruningStep(Hook):
    """tfmot's ``UpdatePruningStep`` callback as an engine hook, in the compiled step.

    The callback sets every wrapper's ``pruning_step`` to the number of batches trained before each
    batch (from 0 on a fresh model) and re-applies the masks at epoch ends; here the counter is
    advanced in the graph after every update, so several steps can run per call and under any
    strategy, and the counter is a weight of the model, so it is checkpointed with it.
    """

    def __init__(self, model):
        self.layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
                       if isinstance(layer, PruneLowMagnitude)]

    def on_train_begin(self, engine):
        if self.layers and int(self.layers[0].pruning_step.numpy()) == -1:
            for layer in self.layers:
                layer.pruning_step.assign(0)

    def after_step(self, engine):
        for layer in self.layers:
            layer.pruning_step.assign_add(1)

    def on_epoch_end(self, engine, record):
        for layer in self.layers:
            layer.pruning_obj.weight_mask_op()


def accuracy(model, data, split="test"):
    """Top-1 accuracy of ``model`` (float logits) on ``split`` of ``data``; NaN for an empty split
    (a run trained with ``validation_fraction=0`` has no validation examples).

    Runs eagerly: the splits are a few batches, and a fresh ``tf.function`` per compressed model
    would only add tracing.
    """
    correct = count = 0
    for x, y in data.split(split, batch_size=256):
        logits = model(x, training=False)
        correct += int(tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == y, tf.int32)))
        count += int(y.shape[0])
    return correct / count if count else float("nan")


# ---- magnitude pruning ------------------------------------------------------------------------


def make_schedule(target, kind="constant", begin_step=1, end_step=None, frequency=100, initial_sparsity=0.0,
                  power=3):
    """A tfmot pruning schedule reaching ``target`` sparsity.

    tfmot counts training steps from 1 and updates the masks at steps ``begin_step + j * frequency``
    (``j = 0, 1, ...``), so the default ``begin_step=1`` prunes on the first batch.
    ``constant``: prune to ``target`` at ``begin_step`` and re-prune every ``frequency`` steps.
    ``polynomial``: Zhu & Gupta 2017, sparsity rises from ``initial_sparsity`` to ``target`` as
    ``target + (initial - target) * (1 - t)**power`` over ``[begin_step, end_step]``.
    """
    target = check_sparsity(target)
    if kind not in SCHEDULES:
        raise ConfigError(f"pruning schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
    frequency = validation.positive_int("pruning frequency", frequency)
    if kind == "constant":
        return sparsity_api.ConstantSparsity(target, begin_step=begin_step, frequency=frequency)
    initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
    if end_step is None or end_step <= begin_step:
        raise ConfigError(f"a polynomial schedule needs end_step > begin_step ({begin_step}), got {end_step!r}")
    return sparsity_api.PolynomialDecay(initial_sparsity, target, begin_step=begin_step, end_step=end_step,
                                        power=power, frequency=frequency)


def prune(model, sparsity, schedule="constant", begin_step=1, end_step=None, frequency=100):
    """Wrap ``model``'s kernel layers in ``prune_low_magnitude`` (the original model is untouched).

    Args:
      sparsity: target fraction of zeros, one float for every Dense/Conv layer or
        ``{layer name: sparsity}`` for per-layer targets (other layers stay dense).
      schedule, begin_step, end_step, frequency: see :func:`make_schedule` (steps are optimizer steps).

    Returns the wrapped model; train it with :func:`fine_tune_pruned` (the :class:`UpdatePruningStep` hook)
    and finish with :func:`strip_pruning`.
    """
    targets = {name: s for name, s in per_layer(model, sparsity, check_sparsity, "sparsity").items() if s > 0}
    for name in targets:
        if getattr(model.get_layer(name), "kernel", None) is None:
            raise ConfigError(f"layer {name!r} ({type(model.get_layer(name)).__name__}) has no kernel to prune")

    def wrap(layer, target):
        return sparsity_api.prune_low_magnitude(
            layer, pruning_schedule=make_schedule(target, schedule, begin_step, end_step, frequency))

    return wrap_layers(model, targets, wrap, "pruned")


def strip_pruning(model):
    """Remove the pruning wrappers, leaving plain layers whose kernels hold the zeros."""
    return sparsity_api.strip_pruning(model)


def fine_tune_pruned(model, data, epochs, lr=1e-3, seed=0):
    """:func:`fit` with the :class:`UpdatePruningStep` hook (required by the wrappers)."""
    return fit(model, data, epochs, lr, seed, hooks=[UpdatePruningStep(model)])


def round_targets(target, rounds):
    """Per-round sparsities of the iterative loop: the kept fraction shrinks geometrically.

    Round ``r`` of ``R`` keeps ``(1 - target) ** (r / R)`` of the weights, so every round removes
    the same share of what is left (Han et al. 2015 prune in steps and retrain in between).
    """
    return [1.0 - (1.0 - target) ** (r / rounds) for r in range(1, rounds + 1)]


def iterative_prune(model, data, sparsity, rounds=3, epochs_per_round=2, lr=1e-3, seed=0, log=None):
    """Han et al. 2015's loop: prune to an intermediate sparsity, retrain, repeat up to ``sparsity``.

    ``sparsity`` is a float or ``{layer name: sparsity}``. Each round wraps the (stripped) model with
    ``ConstantSparsity`` at the round's target (already-zero weights have the smallest magnitude, so
    they stay pruned) and retrains for ``epochs_per_round`` epochs.

    Returns ``(stripped model, history)``; ``history`` lists, per round, the target, the measured
    sparsity of the targeted kernels and the validation accuracy.
    """
    rounds = validation.positive_int("rounds", rounds)
    # tfmot applies the masks inside training steps: without a step nothing would be pruned.
    epochs_per_round = validation.positive_int("epochs_per_round", epochs_per_round)
    targets = per_layer(model, sparsity, check_sparsity, "sparsity")
    steps = max(1, math.ceil(data.info.num_train / data.batch_size))
    history = []
    current = model
    for r in range(rounds):
        round_sparsity = {name: round_targets(s, rounds)[r] for name, s in targets.items()}
        wrapped = prune(current, round_sparsity, schedule="constant", frequency=steps)
        fine_tune_pruned(wrapped, data, epochs_per_round, lr, seed + r)
        current = strip_pruning(wrapped)
        report = sparsity_report(current, names=list(targets))
        row = {"round": r + 1, "target": max(round_sparsity.values(), default=0.0),
               "sparsity": report["total"]["sparsity"], "val_accuracy": accuracy(current, data, "validation")}
        history.append(row)
        if log:
            log(f"prune round {row['round']}/{rounds}: sparsity {row['sparsity']:.3f}, "
                f"validation accuracy {row['val_accuracy']:.4f}")
    return current, history


def _kernel_values(layer):
    if isinstance(layer, PruneLowMagnitude):
        weight, mask, _ = layer.pruning_vars[0]
        return (weight * mask).numpy(), layer.layer
    return layer.kernel.numpy(), layer


def sparsity_report(model, names=None):
    """Per-layer sparsity of the kernels: ``{"layers": [...], "total": {...}}``.

    Each row: ``name``, ``type``, ``shape``, ``weights``, ``zeros``, ``sparsity``. Pruning wrappers
    report their masked kernel. ``names`` restricts the report to those layers.
    """
    rows = []
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if getattr(inner, "kernel", None) is None or (names is not None and layer.name not in names
                                                      and inner.name not in names):
            continue
        values, inner = _kernel_values(layer)
        zeros = int((values == 0).sum())
        rows.append({"name": inner.name, "type": type(inner).__name__, "shape": list(values.shape),
                     "weights": int(values.size), "zeros": zeros, "sparsity": zeros / values.size})
    weights = sum(r["weights"] for r in rows)
    zeros = sum(r["zeros"] for r in rows)
    return {"layers": rows, "total": {"weights": weights, "zeros": zeros, "sparsity": zeros / weights if weights else 0.0}}


# ---- structured (filter / unit) pruning -------------------------------------------------------

# Layers that act on every channel separately and have no weights: a channel subset passes through.
_CHANNELWISE = (tf.keras.layers.ReLU, tf.keras.layers.Activation, tf.keras.layers.Dropout,
                tf.keras.layers.MaxPool2D, tf.keras.layers.AveragePooling2D, tf.keras.layers.GlobalAveragePooling2D,
                tf.keras.layers.GlobalMaxPool2D, tf.keras.layers.ZeroPadding2D, tf.keras.layers.LeakyReLU,
                tf.keras.layers.ELU, tf.keras.layers.SpatialDropout2D)
_PRUNABLE = (tf.keras.layers.Conv2D, tf.keras.layers.Dense)


def _filter_norms(layer):
    """L1 norm of every output filter / unit (Li et al. 2017): sum of |w| over all other axes."""
    kernel = layer.kernel.numpy()
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


def _inbound(layer):
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        raise ConfigError(f"layer {layer.name!r} is used {len(nodes)} times; shared layers cannot be filter-pruned")
    inbound = nodes[0].inbound_layers
    return inbound if isinstance(inbound, list) else [inbound]


def prune_filters(model, fraction):
    """Remove the lowest-L1 filters/units of Conv2D and Dense layers; returns ``(smaller model, report)``.

    ``fraction`` is the share of output channels removed, one float for every Conv2D/Dense layer
    whose output does not leave the model, or ``{layer name: fraction}``. A pruned layer keeps
    ``max(1, round((1 - fraction) * n))`` channels; the next weighted layer loses the matching input
    channels (through batchnorm, activations, pooling and ``Flatten``). The new model is built
    from the old one's config with smaller ``filters``/``units`` and the kept weights copied in.

    ``report``: ``{"layers": [{name, channels_before, channels_after}], "params_before", "params_after"}``.
    """
    output_names = {t._keras_history.layer.name for t in tf.nest.flatten(model.outputs)}
    if isinstance(fraction, dict):
        fractions = per_layer(model, fraction, check_sparsity, "filter fraction")
    else:
        fraction = check_sparsity(fraction, "filter fraction")
        fractions = {layer.name: fraction for layer in model.layers
                     if isinstance(layer, _PRUNABLE) and layer.name not in output_names}
    for name in fractions:
        layer = model.get_layer(name)
        if not isinstance(layer, _PRUNABLE) or isinstance(layer, tf.keras.layers.DepthwiseConv2D):
            raise ConfigError(f"layer {name!r} ({type(layer).__name__}) cannot be filter-pruned; "
                              "only Conv2D and Dense layers can")
        if name in output_names:
            raise ConfigError(f"layer {name!r} produces the model output; its units are the classes and cannot be pruned")

    # Layer name -> kept output channel indices (None: all). Sequential models do not list their
    # InputLayer in ``model.layers``, so the inputs are entered up front.
    kept_out = {t._keras_history.layer.name: None for t in tf.nest.flatten(model.inputs)}
    slices = {}  # layer name -> (kept input indices, kept output indices) for the weight copy
    rows = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            kept_out[layer.name] = None
            continue
        inbound = _inbound(layer)
        in_maps = [kept_out[i.name] for i in inbound]
        if len(inbound) != 1:
            if any(m is not None for m in in_maps):
                raise ConfigError(f"pruned channels reach the multi-input layer {layer.name!r}; "
                                  "prune only layers that feed a single chain")
            kept_out[layer.name] = None
            continue
        in_map = in_maps[0]
        if isinstance(layer, _PRUNABLE) and not isinstance(layer, tf.keras.layers.DepthwiseConv2D):
            out_map = None
            if fractions.get(layer.name, 0.0) > 0:
                norms = _filter_norms(layer)
                keep = max(1, int(round((1.0 - fractions[layer.name]) * norms.size)))
                out_map = np.sort(np.argsort(-norms, kind="stable")[:keep])
                rows.append({"name": layer.name, "channels_before": int(norms.size), "channels_after": keep})
            slices[layer.name] = (in_map, out_map)
            kept_out[layer.name] = out_map
        elif in_map is None:
            kept_out[layer.name] = None
        elif isinstance(layer, (tf.keras.layers.BatchNormalization, tf.keras.layers.LayerNormalization)):
            axes = list(layer.axis) if isinstance(layer.axis, (list, tuple)) else [layer.axis]
            ndim = len(layer.input_shape)
            if len(axes) != 1 or axes[0] % ndim != ndim - 1:
                raise ConfigError(f"normalization layer {layer.name!r} does not normalise the channel axis")
            slices[layer.name] = (in_map, in_map)
            kept_out[layer.name] = in_map
        elif isinstance(layer, _CHANNELWISE):
            kept_out[layer.name] = in_map
        elif isinstance(layer, tf.keras.layers.Flatten):
            shape = tuple(int(d) for d in layer.input_shape[1:])
            kept_out[layer.name] = np.arange(int(np.prod(shape))).reshape(shape)[..., in_map].reshape(-1)
        else:
            raise ConfigError(f"pruned channels reach layer {layer.name!r} ({type(layer).__name__}), "
                              "which filter pruning cannot pass through")

    config = model.get_config()
    for entry in config["layers"]:
        name = entry["config"]["name"]
        out_map = slices.get(name, (None, None))[1]
        if name in fractions and out_map is not None:
            key = "filters" if "filters" in entry["config"] else "units"
            entry["config"][key] = int(out_map.size)
    if isinstance(model, tf.keras.Sequential):
        smaller = tf.keras.Sequential.from_config(config)
    else:
        smaller = tf.keras.Model.from_config(config)

    for old, new in zip(model.layers, smaller.layers):
        weights = old.get_weights()
        if old.name in slices:
            in_map, out_map = slices[old.name]
            if isinstance(old, _PRUNABLE):
                kernel = weights[0]
                if in_map is not None:
                    kernel = np.take(kernel, in_map, axis=-2)
                if out_map is not None:
                    kernel = np.take(kernel, out_map, axis=-1)
                weights = [kernel] + [w if out_map is None else w[out_map] for w in weights[1:]]
            else:
                weights = [w[in_map] for w in weights]
        new.set_weights(weights)
    return smaller, {"layers": rows, "params_before": int(model.count_params()),
                     "params_after": int(smaller.count_params())}
