"""Per-layer activation and gradient statistics: lecture 6's weight-initialisation experiment.

The lecture pushes a batch of unit-Gaussian data through a 10-layer, 500-unit tanh net and plots
each layer's activation histogram: with ``0.01 * randn`` weights the activations shrink to zero
layer after layer (and so do the gradients), with ``1.0 * randn`` tanh saturates at +-1, with
Xavier they stay spread out; with ReLU, Xavier halves the variance at every layer and He
initialisation keeps it. :func:`deep_net` builds that net and :func:`activation_stats` /
:func:`plot_histograms` measure and draw any functional or Sequential Keras model the same way.

Gradients are those of ``sum(model outputs)`` with respect to each layer's output: an upstream
gradient of ones, so what they show is how the backward pass itself scales the signal.
"""

import dataclasses
import io

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.fileio import atomic_write_bytes
from cs231n_tf.train.initializers import get_initializer

# deep_net's short init names -> initializer names (cs231n_tf.train.initializers).
_DEEP_NET_INITS = {"small": "small_random", "large": "large_random", "xavier": "xavier", "he": "he"}


def deep_net(num_layers=10, width=500, activation="tanh", init="xavier", input_dim=None, seed=0):
    """Lecture 6's deep net: ``num_layers`` bias-free ``Dense(width, activation)`` layers.

    Args:
      num_layers: number of hidden layers (named ``layer1`` ... ``layerN``).
      width: units per layer.
      activation: ``"tanh"`` or ``"relu"`` (or any Keras activation name).
      init: ``"small"`` (0.01 * randn), ``"large"`` (1.0 * randn), ``"xavier"``
        (randn / sqrt(fan_in)), ``"he"`` (randn / sqrt(fan_in / 2)), or any name
        :func:`~cs231n_tf.train.initializers.get_initializer` accepts.
      input_dim: input features; defaults to ``width`` as in the lecture.
      seed: layer ``i`` is initialised with seed ``seed + i`` (distinct draws, reproducible);
        ``None`` for unseeded draws.
    """
    input_dim = width if input_dim is None else input_dim
    num_layers = validation.positive_int("num_layers", num_layers)
    width = validation.positive_int("width", width)
    input_dim = validation.positive_int("input_dim", input_dim)
    try:
        tf.keras.activations.get(activation)
    except ValueError:
        raise ConfigError(f"unknown activation {activation!r}; e.g. 'tanh' or 'relu'") from None
    init_name = _DEEP_NET_INITS.get(init, init)
    get_initializer(init_name)  # fail on a bad name before building anything

    inputs = tf.keras.Input((input_dim,), name="x")
    x = inputs
    for i in range(1, num_layers + 1):
        x = tf.keras.layers.Dense(width, activation=activation, use_bias=False,
                                  kernel_initializer=get_initializer(
                                      init_name, seed=None if seed is None else seed + i),
                                  name=f"layer{i}")(x)
    init_label = init if isinstance(init, str) else type(init).__name__
    return tf.keras.Model(inputs, x, name=f"deep_{activation}_{init_label}")


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """Statistics of one layer's output over a batch (all elements pooled, as in the lecture).

    ``grad_mean``/``grad_std`` are ``None`` when gradients were not asked for.
    ``hist_counts``/``hist_edges`` are a histogram of the activations over a range shared by all
    layers of the model, so that histograms of different layers compare directly (values beyond
    the range fall in the end bins).
    """

    name: str
    mean: float
    std: float
    grad_mean: float
    grad_std: float
    hist_counts: np.ndarray
    hist_edges: np.ndarray


def _probe(model):
    """A model with the same inputs returning every layer's output, then the model's outputs."""
    if not isinstance(model, tf.keras.Model):
        raise InputTypeError(f"model must be a tf.keras.Model, got {type(model).__name__}")
    try:
        inputs = model.inputs
    except AttributeError:
        inputs = None
    if not inputs:
        raise InputTypeError(
            f"model {model.name!r} has no symbolic inputs; activation_stats needs a functional or "
            "Sequential model built on tf.keras.Input"
        )
    layers, outputs = [], []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        try:
            out = layer.output
        except AttributeError:
            raise InputTypeError(
                f"layer {layer.name!r} is used more than once in the model; its activations "
                "are ambiguous"
            ) from None
        if tf.is_tensor(out):
            layers.append(layer.name)
            outputs.append(out)
    return layers, tf.keras.Model(inputs, outputs + tf.nest.flatten(model.outputs))


def layer_activations(model, x, include_gradients=False):
    """Run ``x`` through ``model``; return ``[(layer name, activations, gradients or None)]``.

    The forward pass runs in inference mode (``training=False``: no dropout, batch-norm moving
    statistics). Arrays are NumPy. Layers with more than one output tensor are left out; the
    gradient of a layer that does not reach the outputs is ``None``.
    """
    names, probe = _probe(model)
    with tf.GradientTape() as tape:
        results = probe(x, training=False)
        activations = results[: len(names)]
        loss = tf.add_n([tf.reduce_sum(tf.cast(o, tf.float32)) for o in results[len(names):]])
    grads = tape.gradient(loss, activations) if include_gradients else [None] * len(names)
    return [
        (name, np.asarray(a), None if g is None else np.asarray(g))
        for name, a, g in zip(names, activations, grads)
    ]


def activation_stats(model, x, include_gradients=True, bins=50):
    """Per-layer mean/std of activations (and of their gradients) for the batch ``x``.

    Returns a list of :class:`LayerStats`, in layer order.
    """
    bins = validation.positive_int("bins", bins)
    layers = layer_activations(model, x, include_gradients)
    # One symmetric range for all layers, so a shrinking layer shows as a narrowing spike. It
    # spans the 99.9th percentile of |a| (a few outliers would squash every histogram), and values
    # beyond it are counted in the end bins.
    limit = max((float(np.percentile(np.abs(a), 99.9)) for _, a, _ in layers), default=0.0) or 1.0
    stats = []
    for name, a, g in layers:
        counts, edges = np.histogram(np.clip(a, -limit, limit), bins=bins, range=(-limit, limit))
        stats.append(LayerStats(
            name=name,
            mean=float(np.mean(a, dtype=np.float64)),
            std=float(np.std(a, dtype=np.float64)),
            grad_mean=None if g is None else float(np.mean(g, dtype=np.float64)),
            grad_std=None if g is None else float(np.std(g, dtype=np.float64)),
            hist_counts=counts,
            hist_edges=edges,
        ))
    return stats


def format_table(stats):
    """The statistics as a Markdown table (one row per layer)."""
    rows = ["| layer | act mean | act std | grad mean | grad std |", "|---|---:|---:|---:|---:|"]
    for s in stats:
        grad = ("-", "-") if s.grad_std is None else (f"{s.grad_mean:.3g}", f"{s.grad_std:.3g}")
        rows.append(f"| {s.name} | {s.mean:.3g} | {s.std:.3g} | {grad[0]} | {grad[1]} |")
    return "\n".join(rows)


def plot_histograms(stats_or_model, x=None, path="activations.png", title=None):
    """Save lecture 6's figure as a PNG: mean/std per layer on top, one histogram per layer below.

    ``stats_or_model`` is either the output of :func:`activation_stats` or a model, in which case
    the statistics are computed on the batch ``x``. Returns the statistics plotted.
    """
    # A bare Figure renders with Agg and leaves pyplot's global backend and state alone.
    from matplotlib.figure import Figure

    if isinstance(stats_or_model, tf.keras.Model):
        if x is None:
            raise ConfigError("plot_histograms needs the batch x when given a model")
        stats = activation_stats(stats_or_model, x)
        title = title or stats_or_model.name
    else:
        stats = list(stats_or_model)
        if not stats or not all(isinstance(s, LayerStats) for s in stats):
            raise InputTypeError("stats_or_model must be a tf.keras.Model or a list of LayerStats")

    n = len(stats)
    fig = Figure(figsize=(max(8.0, 1.6 * n), 5.5))
    grid = fig.add_gridspec(2, n, height_ratios=[1.0, 1.0])
    depth = np.arange(1, n + 1)
    ax = fig.add_subplot(grid[0, : (n + 1) // 2])
    ax.plot(depth, [s.mean for s in stats], "o-", label="mean")
    ax.plot(depth, [s.std for s in stats], "s-", label="std")
    ax.set_xlabel("layer")
    ax.set_title("activations")
    ax.legend()
    if stats[0].grad_std is not None and n > 1:
        ax = fig.add_subplot(grid[0, (n + 1) // 2:])
        # The last layer's gradient is the constant upstream ones (std 0): leave it off the log axis.
        grad_std = np.array([np.nan if s.grad_std is None else s.grad_std for s in stats])
        ax.semilogy(depth, np.where(grad_std > 0, grad_std, np.nan), "s-", color="C2")
        ax.set_xlabel("layer")
        ax.set_title("gradient std (upstream ones)")
    for i, s in enumerate(stats):
        ax = fig.add_subplot(grid[1, i])
        ax.stairs(s.hist_counts, s.hist_edges, fill=True)
        ax.set_title(s.name, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    atomic_write_bytes(path, buffer.getvalue())
    return stats
