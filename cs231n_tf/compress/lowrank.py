"""Low-rank approximation of Dense and Conv2D layers by truncated SVD (lecture 15).

A Dense kernel ``W`` of shape ``(n_in, n_out)`` is factorised as ``W ~ U_r S_r V_r^T`` and the
layer becomes two Dense layers: ``n_in -> r`` (kernel ``U_r S_r^1/2``, no bias, no activation)
then ``r -> n_out`` (kernel ``S_r^1/2 V_r^T`` with the original bias and activation).

A KxK Conv2D kernel of shape ``(KH, KW, C_in, C_out)`` is reshaped to the ``(KH*KW*C_in, C_out)``
matrix that im2col multiplies by; its SVD gives a KxK convolution with ``r`` filters (same strides,
padding and dilation; kernel ``U_r S_r^1/2`` reshaped to ``(KH, KW, C_in, r)``) followed by a 1x1
convolution ``r -> C_out`` (kernel ``S_r^1/2 V_r^T``, original bias and activation). Because a
convolution is linear in its kernel, at full rank both factorisations reproduce the layer exactly.
Cost: ``r (n_in + n_out)`` weights instead of ``n_in n_out`` (with ``n_in = KH*KW*C_in`` for conv),
and the same ratio of multiply-adds per output position.

The rank is the smallest ``r`` whose singular values keep a fraction ``energy`` of the kernel's
squared Frobenius norm, ``sum_{i<r} s_i^2 >= energy * sum_i s_i^2`` (Denton et al., 2014,
"Exploiting linear structure within convolutional networks"; Jaderberg et al., 2014).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.models.complexity import profile

L = tf.keras.layers


def rebuild_graph(model, replace, name=None):
    """Rebuild a functional ``model`` with fresh layers, letting ``replace`` swap any of them.

    ``replace(layer) -> callable | None`` is asked for every top-level layer call in graph order; a
    callable returned is applied to the layer's inputs in its place (it may chain several new
    layers; a layer called twice is asked twice, so replacements do not share weights). For ``None`` the layer is cloned from its config and gets a copy of its weights, so
    the new model never shares variables with ``model``. Returns the new ``tf.keras.Model``.
    """
    if not isinstance(model, tf.keras.Model) or not getattr(model, "_is_graph_network", False):
        raise InputTypeError(
            f"expected a functional tf.keras.Model (every registered builder returns one), got "
            f"{type(model).__name__}")
    tensors = {}
    new_inputs = []
    for tensor in model.inputs:
        layer = tensor._keras_history.layer
        fresh = L.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=layer.name)
        tensors[id(tensor)] = fresh
        new_inputs.append(fresh)
    clones = {}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.layer
            if isinstance(layer, L.InputLayer):
                continue
            args, kwargs = tf.nest.map_structure(
                lambda v: tensors[id(v)] if tf.keras.backend.is_keras_tensor(v) else v, (node.call_args, node.call_kwargs))
            fn = replace(layer)
            if fn is None:
                # A layer called several times (shared weights) is cloned once and reused.
                first_call = id(layer) not in clones
                if first_call:
                    clones[id(layer)] = layer.__class__.from_config(layer.get_config())
                fn = clones[id(layer)]
                outputs = fn(*args, **kwargs)
                if first_call:
                    fn.set_weights(layer.get_weights())
            else:
                outputs = fn(*args, **kwargs)
            for old, new in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outputs)):
                tensors[id(old)] = new
    outputs = tf.nest.map_structure(lambda t: tensors[id(t)], model.outputs)
    if len(outputs) == 1:
        outputs = outputs[0]
    return tf.keras.Model(new_inputs if len(new_inputs) > 1 else new_inputs[0], outputs,
                          name=name or model.name)


def rank_for_energy(singular_values, energy):
    """Smallest rank whose leading singular values keep ``energy`` of ``sum s_i^2``."""
    s2 = np.asarray(singular_values, np.float64) ** 2
    total = s2.sum()
    if total == 0.0:
        return 1
    cumulative = np.cumsum(s2) / total
    # Rounding can leave the full sum a hair below 1.0; energy 1.0 must still mean full rank.
    return int(min(len(s2), np.searchsorted(cumulative, energy - 1e-12) + 1))


@dataclasses.dataclass(frozen=True)
class LayerFactorization:
    """What happened to one layer. ``rank`` is ``None`` when the layer was kept whole."""

    name: str
    type: str
    full_rank: int
    rank: int
    kept_energy: float
    params_before: int
    params_after: int
    multiply_adds_before: int
    multiply_adds_after: int


@dataclasses.dataclass(frozen=True)
class FactorizationReport:
    """Totals from :func:`cs231n_tf.models.complexity.profile` of both models, plus each layer."""

    energy: float
    params_before: int
    params_after: int
    multiply_adds_before: int
    multiply_adds_after: int
    layers: tuple

    @property
    def param_ratio(self):
        return self.params_before / self.params_after

    @property
    def multiply_add_ratio(self):
        return self.multiply_adds_before / self.multiply_adds_after

    def to_json(self):
        out = dataclasses.asdict(self)
        out["layers"] = [dataclasses.asdict(rec) for rec in self.layers]
        return out


def _kernel_matrix(layer):
    kernel = layer.get_weights()[0]
    return kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)


def _factor_layers(layer, energy, matrix):
    """The two layers replacing ``layer`` at the rank keeping ``energy``, their kernels (float32),
    the rank and the singular values."""
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    rank = rank_for_energy(s, energy)
    root = np.sqrt(s[:rank])
    first = (u[:, :rank] * root).astype(np.float32)
    second = (root[:, None] * vt[:rank]).astype(np.float32)
    cfg = layer.get_config()
    if isinstance(layer, L.Dense):
        basis = L.Dense(rank, use_bias=False, name=f"{layer.name}_basis", dtype=layer.dtype_policy)
        combine = L.Dense(cfg["units"], activation=cfg["activation"], use_bias=cfg["use_bias"],
                          name=layer.name, dtype=layer.dtype_policy)
        kernels = (first, second)
    else:
        kh, kw, c_in, _ = layer.kernel.shape
        basis = L.Conv2D(rank, (kh, kw), strides=cfg["strides"], padding=cfg["padding"],
                         dilation_rate=cfg["dilation_rate"], use_bias=False, name=f"{layer.name}_basis",
                         dtype=layer.dtype_policy)
        combine = L.Conv2D(cfg["filters"], 1, activation=cfg["activation"], use_bias=cfg["use_bias"],
                           name=layer.name, dtype=layer.dtype_policy)
        kernels = (first.reshape(kh, kw, c_in, rank), second.reshape(1, 1, rank, -1))
    return basis, combine, kernels, rank, s


def _factorizable(layer):
    if type(layer) is L.Dense:
        return True
    if type(layer) is L.Conv2D:
        return layer.groups == 1 and layer.data_format == "channels_last"
    return False


def factorize(model, energy, *, only_if_smaller=True, layers=None):
    """Replace each Dense/Conv2D layer of ``model`` by its rank-``r`` SVD factorisation.

    Args:
      model: a built functional Keras model (top-level layers are factorised; nested models are
        cloned unchanged).
      energy: fraction in (0, 1] of each kernel's squared singular values to keep; sets ``r``.
      only_if_smaller: keep a layer whole when the two factors would hold at least as many
        weights as the original (``r (n_in + n_out) >= n_in n_out``). ``False`` factorises anyway
        (useful to check that full rank is exact).
      layers: names of the layers to consider (default: every Dense and Conv2D).

    Returns:
      ``(new_model, FactorizationReport)``. The new model shares no variables with ``model``;
      fine-tune it (e.g. :func:`cs231n_tf.compress.distill.fine_tune`) to recover accuracy.
    """
    if isinstance(energy, bool) or not isinstance(energy, (int, float)) or not 0.0 < energy <= 1.0:
        raise ConfigError(f"energy must be a fraction in (0, 1], got {energy!r}")
    if layers is not None:
        names = {layer.name for layer in model.layers}
        unknown = sorted(set(layers) - names)
        if unknown:
            raise ConfigError(f"model {model.name!r} has no layer(s) {', '.join(unknown)}; "
                              f"layers: {', '.join(sorted(names))}")
        bad = sorted(n for n in layers if not _factorizable(model.get_layer(n)))
        if bad:
            raise ConfigError(f"layer(s) {', '.join(bad)} cannot be factorised: only Dense and "
                              "ungrouped channels_last Conv2D layers can")
    before = profile(model)
    decisions = {}

    def replace(layer):
        if not _factorizable(layer) or (layers is not None and layer.name not in layers):
            return None
        matrix = _kernel_matrix(layer)
        n_in, n_out = matrix.shape
        basis, combine, kernels, rank, s = _factor_layers(layer, energy, matrix)
        kept = float((s[:rank] ** 2).sum() / max((s ** 2).sum(), 1e-300))
        if only_if_smaller and rank * (n_in + n_out) >= n_in * n_out:
            decisions[layer.name] = (len(s), None, kept)
            return None
        decisions[layer.name] = (len(s), rank, kept)
        bias = layer.get_weights()[1:]

        def apply(x):
            y = combine(basis(x))
            basis.set_weights([kernels[0]])
            combine.set_weights([kernels[1], *bias])
            return y

        return apply

    new_model = rebuild_graph(model, replace, name=f"{model.name}_lowrank")
    after = profile(new_model)
    by_name_before = {rec.name: rec for rec in before.layers}
    by_name_after = {rec.name: rec for rec in after.layers}
    records = []
    for name, (full, rank, kept) in decisions.items():
        old = by_name_before[name]
        parts = [by_name_after[name]] + ([by_name_after[f"{name}_basis"]] if rank is not None else [])
        records.append(LayerFactorization(
            name=name, type=old.type, full_rank=full, rank=rank, kept_energy=kept,
            params_before=old.params, params_after=sum(p.params for p in parts),
            multiply_adds_before=old.multiply_adds, multiply_adds_after=sum(p.multiply_adds for p in parts)))
    report = FactorizationReport(energy=float(energy), params_before=before.params, params_after=after.params,
                                 multiply_adds_before=before.multiply_adds, multiply_adds_after=after.multiply_adds,
                                 layers=tuple(records))
    return new_model, report
