"""Parameters, multiply-adds and activation memory of a Keras model (lecture 9's comparison).

:func:`profile` walks a model's functional graph and counts, analytically from each layer's
configuration and its input/output shapes (no forward pass):

* **params** - trainable parameters; ``total_params`` adds the non-trainable ones (BN statistics).
* **multiply_adds** - multiply-accumulate operations of one forward pass for ONE image, counted
  the way the papers count them: only convolutions, dense layers and recurrent layers. Bias adds,
  normalisation, activations, pooling and merges cost 0 multiply-adds in the headline; their
  arithmetic is recorded separately as ``elementwise_ops`` (a rough count: BN 2 per element,
  layer/group norm 5, an activation 1, a k-way merge k-1, pooling one per window element).
  FLOPs are about twice the multiply-adds (``Profile.flops``).
* **activation_bytes** - float32 forward activations of one image, 4 bytes per element, in the
  lecture's convention by default: the input image counts once, every convolution, pooling and
  dense output counts once, and elementwise layers (activations, batch/layer norm, Add and the
  other elementwise merges, Concatenate - whose branches can write straight into slices of its
  buffer) work in place and add nothing. Flatten, Reshape, zero padding (the convolution pads
  internally), dropout and inference-time augmentation are views and never count.
  ``inplace_elementwise=False`` counts every elementwise output as its own tensor (what a plain
  TensorFlow graph allocates before fusion); ``count_input=False`` leaves out the image.

Nested functional models are walked layer by layer. A layer that holds sublayers but is not a
functional model (a subclassed block, ``Bidirectional``, a model built for other shapes) is traced:
it is called once on symbolic inputs inside a ``tf.function`` and every sublayer call is recorded
with its shapes. The tensor arithmetic such a block does between its sublayer calls is assumed
free of multiply-adds; if the block owns weights directly it is listed in ``unknown_layers``.

Layer types this module does not know (custom layers, ``Lambda``, ``EinsumDense``...) keep their
parameters, count 0 multiply-adds and a new output tensor, and are listed by name in
``Profile.unknown_layers`` so that nothing is silently wrong. :func:`register_layer_cost` teaches
the profiler a custom layer without multiply-adds; the zoo's own layers (LRN, the option-A
shortcut, stochastic depth, FractalNet's joins) are registered here.

:func:`comparison_table`, :func:`format_table` and :func:`plot_comparison` compare the registered
architectures; :func:`vgg16_memory_note` sets VGG-16 against the lecture's memory figure.
"""

import contextlib
import dataclasses
import gc
import math
import os
import tempfile

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, InputTypeError, ShapeError
from cs231n_tf.models import layers as zoo_layers
from cs231n_tf.models import registry

L = tf.keras.layers

BYTES_PER_FLOAT32 = 4

# Published multiply-adds of one forward pass at the canonical input, with the builder options
# that reproduce the counted architecture. Tests hold the profiler to these within 5%.
PUBLISHED_MULTIPLY_ADDS = {
    "alexnet": (0.72e9, {"groups": 2}, "Krizhevsky et al. 2012, two-GPU grouped convolutions"),
    "vgg16": (15.5e9, {}, "Simonyan & Zisserman 2015; CS231n lecture 9"),
    # The paper quotes 1.5G as its design budget; with true 5x5 kernels (kernel_5x5=5) its Table 1
    # counts 1.58G. The registered default is torchvision's layout (3x3 in the "5x5" branch).
    "googlenet": (1.5e9, {}, "Szegedy et al. 2015: a '1.5 billion multiply-adds' budget"),
    "resnet50": (4.1e9, {}, "He et al. 2016 (torchvision-style ResNet-50)"),
    "inception_v4": (12.3e9, {}, "timm model card, inception_v4 (12.3 GMACs at 299x299)"),
    "inception_resnet_v2": (13.2e9, {}, "timm model card, inception_resnet_v2 (13.2 GMACs at 299x299)"),
    "efficientnet_lite0": (0.385e9, {}, "EfficientNet-Lite README (tensorflow/tpu): 0.385 GMACs ('FLOPS') at 224x224"),
}

# Layer kinds that hold the multiply-adds; "weighted layers" when splitting a net into thirds.
WEIGHTED_KINDS = ("conv", "dense", "recurrent")


@dataclasses.dataclass(frozen=True)
class LayerProfile:
    """One layer call: shapes exclude the batch axis; costs are for one image."""

    name: str
    type: str
    kind: str
    output_shape: tuple
    params: int
    total_params: int
    multiply_adds: int
    elementwise_ops: int
    activation_bytes: int


@dataclasses.dataclass(frozen=True)
class Profile:
    """Cost of one forward pass. ``multiply_adds``/``activation_bytes`` are per image.

    ``batch_size`` only scales the ``batch_*`` properties; the headline figures stay per image so
    that they compare with the papers.
    """

    params: int
    total_params: int
    multiply_adds: int
    elementwise_ops: int
    activation_bytes: int
    layers: tuple
    unknown_layers: tuple
    input_shapes: tuple
    batch_size: int = 1
    count_input: bool = True
    inplace_elementwise: bool = True

    @property
    def flops(self):
        """Floating-point operations of the multiply-adds (a multiply and an add each)."""
        return 2 * self.multiply_adds

    @property
    def batch_multiply_adds(self):
        return self.multiply_adds * self.batch_size

    @property
    def batch_activation_bytes(self):
        return self.activation_bytes * self.batch_size

    @property
    def early_memory_fraction(self):
        """Share of activation bytes up to the end of the first third of the weighted layers.

        The cut falls after the ceil(n/3)-th convolution/dense/recurrent layer in graph order
        (for VGG-16: after conv3_2, the sixth of 16); the input image belongs to the early part.
        """
        weighted = [i for i, rec in enumerate(self.layers) if rec.kind in WEIGHTED_KINDS]
        if not weighted or not self.activation_bytes:
            return float("nan")
        cut = weighted[math.ceil(len(weighted) / 3) - 1]
        early = sum(rec.activation_bytes for rec in self.layers[: cut + 1])
        return early / self.activation_bytes

    @property
    def dense_param_fraction(self):
        """Share of the trainable parameters held by dense (fully connected) layers."""
        if not self.params:
            return float("nan")
        return sum(rec.params for rec in self.layers if rec.kind == "dense") / self.params


def profile(model, batch_size=1, *, count_input=True, inplace_elementwise=True):
    """Count parameters, multiply-adds and activation memory of ``model`` (see module docstring).

    ``model`` must be a built functional ``tf.keras.Model`` (every registered builder returns one)
    with concrete input shapes; subclassed parts inside it are traced.
    """
    if not isinstance(model, tf.keras.Model):
        raise InputTypeError(f"profile needs a tf.keras.Model, got {type(model).__name__}")
    if not _is_functional(model):
        raise InputTypeError(
            f"profile walks functional models; {model.name!r} is subclassed. Wrap it: "
            "inputs = tf.keras.Input(shape); tf.keras.Model(inputs, model(inputs))"
        )
    batch_size = validation.positive_int("batch_size", batch_size)
    counter = _Counter(count_input=count_input, inplace=inplace_elementwise)
    for tensor in model.inputs:
        counter.add_input(tensor)
    counter.walk(model, prefix="")
    records = tuple(counter.records)
    return Profile(
        params=_count_weights(model.trainable_weights),
        total_params=_count_weights(model.weights),
        multiply_adds=sum(rec.multiply_adds for rec in records),
        elementwise_ops=sum(rec.elementwise_ops for rec in records),
        activation_bytes=sum(rec.activation_bytes for rec in records),
        layers=records,
        unknown_layers=tuple(dict.fromkeys(counter.unknown)),
        input_shapes=tuple(_shape(t.shape)[1:] for t in model.inputs),
        batch_size=batch_size,
        count_input=bool(count_input),
        inplace_elementwise=bool(inplace_elementwise),
    )


# --------------------------------------------------------------------------- graph walking


class _Counter:
    """Accumulates one :class:`LayerProfile` per layer call while walking a model."""

    def __init__(self, count_input, inplace):
        self.count_input = count_input
        self.inplace = inplace
        self.records = []
        self.unknown = []
        self._seen_weights = set()

    def add_input(self, tensor):
        shape = _shape(tensor.shape)[1:]
        name = tensor.name.split(":")[0]
        nbytes = BYTES_PER_FLOAT32 * _elements(shape, name) if self.count_input else 0
        self.records.append(LayerProfile(name, "InputLayer", "input", shape, 0, 0, 0, 0, nbytes))

    def walk(self, model, prefix):
        # Deepest nodes first is the order Keras itself runs a functional graph in.
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                layer = node.layer
                if isinstance(layer, L.InputLayer):
                    continue
                in_shapes = [_shape(t.shape) for t in _node_inputs(node)]
                out_shapes = [_shape(t.shape) for t in tf.nest.flatten(node.outputs)]
                if _is_functional(layer) and _same_shapes(layer.inputs, in_shapes):
                    self.walk(layer, prefix + layer.name + "/")
                elif _is_leaf(layer):
                    self.add(prefix + layer.name, layer, in_shapes, out_shapes)
                else:
                    self.trace(prefix + layer.name, layer, node)

    def trace(self, name, layer, node):
        """Record every sublayer call of ``layer`` made while it runs on ``node``'s inputs."""
        leaves = dict(_leaves(layer, name + "/"))
        calls = []
        args, kwargs = node.call_args, node.call_kwargs
        flat = tf.nest.flatten((args, kwargs))
        where = [i for i, v in enumerate(flat) if _is_symbolic(v)]

        def run(*tensors):
            values = list(flat)
            for i, t in zip(where, tensors):
                values[i] = t
            a, k = tf.nest.pack_sequence_as((args, kwargs), values)
            return layer(*a, **k)

        with _recording(leaves, calls):
            tf.function(run, autograph=False).get_concrete_function(*[flat[i].type_spec for i in where])
        for leaf, in_shapes, out_shapes in calls:
            self.add(leaves[leaf], leaf, in_shapes, out_shapes)
        if layer._trainable_weights or layer._non_trainable_weights:
            # The block's own weights take part in arithmetic this module cannot see.
            params, total = self._new_params(layer._trainable_weights + layer._non_trainable_weights)
            self.unknown.append(name)
            self.records.append(
                LayerProfile(name, type(layer).__name__, "unknown", (), params, total, 0, 0, 0))

    def add(self, name, layer, in_shapes, out_shapes):
        kind, macs, ops = _classify(layer, name, in_shapes, out_shapes)
        if kind == "unknown":
            self.unknown.append(name)
        out = [s[1:] for s in out_shapes]
        if kind in ("view", "input") or (kind in _INPLACE_KINDS and self.inplace):
            nbytes = 0
        else:
            nbytes = BYTES_PER_FLOAT32 * sum(_elements(s, name) for s in out)
        params, total = self._new_params(layer.weights)
        self.records.append(LayerProfile(
            name=name,
            type=_type_name(layer),
            kind=kind,
            output_shape=out[0] if len(out) == 1 else tuple(out),
            params=params,
            total_params=total,
            multiply_adds=int(macs),
            elementwise_ops=int(ops),
            activation_bytes=int(nbytes),
        ))

    def _new_params(self, weights):
        """(trainable, total) counts of the weights not yet counted.

        A shared layer is called many times but its weights count on the first call only.
        """
        fresh = [w for w in weights if id(w) not in self._seen_weights]
        self._seen_weights.update(id(w) for w in fresh)
        return _count_weights([w for w in fresh if w.trainable]), _count_weights(fresh)


def _node_inputs(node):
    # The first call argument is the layer's ``inputs``; tensors passed elsewhere (masks,
    # attention values) do not shape the layer's cost in the formulas below.
    if node.call_args:
        return [t for t in tf.nest.flatten(node.call_args[0]) if _is_symbolic(t)]
    return list(node.keras_inputs)


def _is_symbolic(value):
    # is_keras_tensor raises on non-tensors (floats, None) that call arguments may hold.
    return tf.is_tensor(value) and tf.keras.backend.is_keras_tensor(value)


def _is_functional(layer):
    return isinstance(layer, tf.keras.Model) and getattr(layer, "_is_graph_network", False)


def _is_leaf(layer):
    """Counted as one unit: recurrent layers (which hold their cell) and layers without sublayers."""
    if _is_functional(layer):
        return False
    sublayers = list(layer._flatten_layers(include_self=False, recursive=False))
    return isinstance(layer, _RECURRENT) or not sublayers


def _leaves(layer, prefix):
    """(leaf layer, dotted path) for every leaf below ``layer``, each once."""
    seen = set()
    for sub in layer._flatten_layers(include_self=False, recursive=False):
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        if _is_leaf(sub):
            yield sub, prefix + sub.name
        else:
            yield from _leaves(sub, prefix + sub.name + "/")


@contextlib.contextmanager
def _recording(leaves, calls):
    """Temporarily wrap each leaf's ``call`` to append (leaf, input shapes, output shapes)."""

    def wrap(leaf):
        original = leaf.call

        @tf.autograph.experimental.do_not_convert
        def call(*args, **kwargs):
            outputs = original(*args, **kwargs)
            inputs = args[0] if args else next(iter(kwargs.values()))
            calls.append((
                leaf,
                [_shape(t.shape) for t in tf.nest.flatten(inputs) if tf.is_tensor(t)],
                [_shape(t.shape) for t in tf.nest.flatten(outputs) if tf.is_tensor(t)],
            ))
            return outputs

        return call

    # object.__setattr__ keeps Keras's attribute tracking out of this temporary instance override.
    for leaf in leaves:
        object.__setattr__(leaf, "call", wrap(leaf))
    try:
        yield
    finally:
        for leaf in leaves:
            object.__delattr__(leaf, "call")


def _same_shapes(tensors, shapes):
    return [_shape(t.shape)[1:] for t in tensors] == [s[1:] for s in shapes]


def _shape(shape):
    return tuple(None if d is None else int(d) for d in tf.TensorShape(shape))


def _elements(shape, name):
    if any(d is None for d in shape):
        raise ShapeError(
            f"layer {name!r} has shape {shape} with unknown dimensions; build the model with a "
            "concrete input_shape (H, W, C) to profile it"
        )
    return int(np.prod(shape, dtype=np.int64))


def _count_weights(weights):
    unique = {id(w): w for w in weights}
    return int(sum(np.prod(w.shape, dtype=np.int64) for w in unique.values()))


def _type_name(layer):
    name = type(layer).__name__
    symbol = getattr(layer, "symbol", None)
    return f"{name}({symbol})" if symbol else name


# --------------------------------------------------------------------------- per-layer counts

_TRANSPOSED_CONV = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_SEPARABLE_CONV = (L.SeparableConv1D, L.SeparableConv2D)
_DEPTHWISE_CONV = (L.DepthwiseConv1D, L.DepthwiseConv2D)
_CONV = (L.Conv1D, L.Conv2D, L.Conv3D)  # also covers the transposed ones (subclasses)
_LOCALLY_CONNECTED = (L.LocallyConnected1D, L.LocallyConnected2D)
_RECURRENT_GATES = ((L.LSTM, 4), (L.GRU, 3), (L.SimpleRNN, 1))
_RECURRENT = tuple(cls for cls, _ in _RECURRENT_GATES)
_POOLING = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D,
            L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D)
_GLOBAL_POOLING = (L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D,
                   L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D)
# Elementwise arithmetic per output element (the "elementwise_ops" record, not multiply-adds).
_NORMALIZATION_OPS = ((L.BatchNormalization, 2), (L.LayerNormalization, 5),
                      (L.GroupNormalization, 5), (L.UnitNormalization, 3))
_ACTIVATIONS = (L.Activation, L.ReLU, L.LeakyReLU, L.PReLU, L.ELU, L.ThresholdedReLU, L.Softmax,
                L.Rescaling, L.Normalization)
_MERGES = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
_VIEWS = (L.Flatten, L.Reshape, L.Identity, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
          L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D, L.AlphaDropout,
          L.GaussianDropout, L.GaussianNoise, L.ActivityRegularization,
          L.RandomFlip, L.RandomRotation, L.RandomTranslation, L.RandomZoom, L.RandomContrast,
          L.RandomBrightness)
_COPIES = (L.Cropping1D, L.Cropping2D, L.Cropping3D, L.UpSampling1D, L.UpSampling2D,
           L.UpSampling3D, L.Permute, L.RepeatVector, L.Resizing, L.CenterCrop)
# Keras turns raw TensorFlow calls on symbolic tensors into TFOpLambda layers named by symbol.
_OP_KINDS = {
    "__operators__.add": "merge", "math.add": "merge", "math.add_n": "merge",
    "math.subtract": "merge", "math.multiply": "merge", "math.maximum": "merge",
    "math.minimum": "merge", "math.truediv": "merge",
    "nn.relu": "activation", "nn.relu6": "activation", "nn.elu": "activation",
    "nn.leaky_relu": "activation", "nn.silu": "activation", "nn.softmax": "activation",
    "math.sigmoid": "activation", "math.tanh": "activation",
    "concat": "concat", "reshape": "view", "identity": "view", "expand_dims": "view",
    "squeeze": "view", "__operators__.getitem": "copy", "pad": "copy", "transpose": "copy",
}
_INPLACE_KINDS = ("activation", "norm", "merge", "concat")


# Custom layer class -> (kind, ops per output element: a number or fn(layer, in_shapes)).
_REGISTERED_COSTS = {}
_REGISTRABLE_KINDS = ("activation", "norm", "merge", "concat", "pool", "view", "copy")


def register_layer_cost(layer_class, kind, ops_per_element=0):
    """Teach :func:`profile` a custom layer that does no multiply-adds.

    ``kind`` sets how its output counts in activation memory: ``"view"`` never, ``"copy"`` and
    ``"pool"`` always, the elementwise kinds (``"activation"``, ``"norm"``, ``"merge"``,
    ``"concat"``) only when ``inplace_elementwise=False``. ``ops_per_element`` (a number, or
    ``fn(layer, input_shapes)``) feeds the ``elementwise_ops`` record. Unregistered custom layers
    are listed in ``Profile.unknown_layers``.
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, L.Layer)):
        raise InputTypeError(f"layer_class must be a tf.keras.layers.Layer subclass, got {layer_class!r}")
    if kind not in _REGISTRABLE_KINDS:
        raise ConfigError(f"kind must be one of {', '.join(_REGISTRABLE_KINDS)}, got {kind!r}")
    _REGISTERED_COSTS[layer_class] = (kind, ops_per_element)


def _classify(layer, name, in_shapes, out_shapes):
    """(kind, multiply-adds, elementwise ops) of one call of ``layer`` on one image."""
    inp = in_shapes[0][1:] if in_shapes else ()
    out = out_shapes[0][1:]
    n_out = sum(_elements(s[1:], name) for s in out_shapes)
    for cls, (kind, per_element) in _REGISTERED_COSTS.items():
        if isinstance(layer, cls):
            per_element = per_element(layer, in_shapes) if callable(per_element) else per_element
            return kind, 0, int(per_element * n_out)
    if isinstance(layer, (*_CONV, *_DEPTHWISE_CONV, *_SEPARABLE_CONV, *_LOCALLY_CONNECTED)):
        return "conv", _conv_macs(layer, name, inp, out), 0
    if isinstance(layer, L.Dense):
        return "dense", _elements(inp, name) * layer.units, 0
    for cls, gates in _RECURRENT_GATES:
        if isinstance(layer, cls):
            steps, features, units = _elements(inp[:1], name), inp[-1], layer.units
            return "recurrent", steps * gates * (features * units + units * units), 0
    if isinstance(layer, _POOLING):
        return "pool", 0, n_out * int(np.prod(layer.pool_size))
    if isinstance(layer, _GLOBAL_POOLING):
        return "pool", 0, _elements(inp, name)
    for cls, per_element in _NORMALIZATION_OPS:
        if isinstance(layer, cls):
            return "norm", 0, per_element * n_out
    if isinstance(layer, _ACTIVATIONS):
        return "activation", 0, n_out
    if isinstance(layer, _MERGES):
        return "merge", 0, (len(in_shapes) - 1) * n_out
    if isinstance(layer, L.Concatenate):
        return "concat", 0, 0
    if isinstance(layer, _VIEWS):
        return "view", 0, 0
    if isinstance(layer, _COPIES):
        return "copy", 0, 0
    kind = _OP_KINDS.get(getattr(layer, "symbol", None))
    if kind in ("merge", "activation"):
        return kind, 0, n_out
    if kind is not None:
        return kind, 0, 0
    return "unknown", 0, 0


def _conv_macs(layer, name, inp, out):
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
    c_in = inp[-1] if channels_last else inp[0]
    spatial_out = out[:-1] if channels_last else out[1:]
    spatial_in = inp[:-1] if channels_last else inp[1:]
    kernel = int(np.prod(layer.kernel_size))
    if isinstance(layer, _TRANSPOSED_CONV):
        # Every input pixel scatters a full kernel into the output.
        return _elements(spatial_in, name) * c_in * kernel * layer.filters
    if isinstance(layer, _SEPARABLE_CONV):
        mid = c_in * layer.depth_multiplier
        return _elements(spatial_out, name) * (mid * kernel + mid * layer.filters)
    if isinstance(layer, _DEPTHWISE_CONV):
        return _elements(out, name) * kernel
    groups = getattr(layer, "groups", 1)
    return _elements(out, name) * kernel * (c_in // groups)


# The zoo's own parameter-free layers (cs231n_tf.models.layers).
register_layer_cost(zoo_layers.LocalResponseNormalization, "norm", lambda layer, _: layer.size + 3)
register_layer_cost(zoo_layers.ZeroPadShortcut, "copy")
register_layer_cost(zoo_layers.StochasticDepth, "view")  # identity at inference
register_layer_cost(zoo_layers.DropPathSelector, "view")  # constant flags at inference
# A k-way mean: k - 1 adds and a divide per element; the drop-path flags are not a column.
register_layer_cost(zoo_layers.FractalJoin, "merge",
                    lambda layer, ins: len(ins) - (layer.columns is not None))


# --------------------------------------------------------------------------- model comparison


@dataclasses.dataclass(frozen=True)
class ComparisonRow:
    """One architecture at its canonical input (or the table's ``input_shape``)."""

    name: str
    family: str
    input_shape: tuple
    params: int
    multiply_adds: int
    activation_bytes: int
    early_memory_fraction: float
    dense_param_fraction: float
    published_multiply_adds: float = None
    unknown_layers: tuple = ()


def comparison_table(names=None, input_shape=None):
    """Profile every registered builder (or ``names``) at its canonical input shape.

    Architectures with a published multiply-add count are built with the options that match it
    (AlexNet with its two-group convolutions). ``input_shape`` overrides every canonical shape.
    Each model is freed before the next is built, so peak memory is that of the largest one.
    """
    if names is None:
        names = registry.list_models()
    elif isinstance(names, str):
        names = [names]
    rows = []
    for name in names:
        spec = registry.get_spec(name)
        published, options, _ = PUBLISHED_MULTIPLY_ADDS.get(name, (None, {}, ""))
        accepted = spec.options()
        options = {k: v for k, v in options.items() if k in accepted}
        model = registry.build(name, input_shape, **options)
        prof = profile(model)
        # Keras models hold reference cycles; collect now so only one big model lives at a time.
        del model
        gc.collect()
        if input_shape is not None:
            published = None  # the published figure is for the canonical input only
        rows.append(ComparisonRow(
            name=name,
            family=spec.family,
            input_shape=prof.input_shapes[0],
            params=prof.params,
            multiply_adds=prof.multiply_adds,
            activation_bytes=prof.activation_bytes,
            early_memory_fraction=prof.early_memory_fraction,
            dense_param_fraction=prof.dense_param_fraction,
            published_multiply_adds=published,
            unknown_layers=prof.unknown_layers,
        ))
    return rows


def _human(value, unit=""):
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.2f}{suffix}{unit}"
    return f"{value:.0f}{unit}"


def format_table(rows):
    """Plain-text table of :func:`comparison_table` rows."""
    header = ("model", "input", "params", "mult-adds", "published", "act. mem/img",
              "mem in 1st third", "params in FC")
    lines = [header]
    for row in rows:
        lines.append((
            row.name,
            "x".join(str(d) for d in row.input_shape),
            _human(row.params),
            _human(row.multiply_adds),
            _human(row.published_multiply_adds) if row.published_multiply_adds else "",
            _human(row.activation_bytes, "B"),
            f"{row.early_memory_fraction:.0%}",
            f"{row.dense_param_fraction:.0%}",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = []
    for j, line in enumerate(lines):
        text.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                              for i, (cell, w) in enumerate(zip(line, widths))))
        if j == 0:
            text.append("  ".join("-" * w for w in widths))
    text.append("mult-adds: one forward pass, one image, conv + dense layers only; "
                "act. mem: float32 forward activations, input + conv/pool/fc outputs, ReLU in place.")
    for row in rows:
        if row.unknown_layers:
            text.append(f"{row.name}: layers of unknown cost (0 mult-adds assumed): "
                        + ", ".join(row.unknown_layers))
    return "\n".join(text)


def plot_comparison(rows, path):
    """Write a PNG: multiply-adds (x, log) against params (y, log), bubble area = activation memory."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in rows if r.multiply_adds > 0 and r.params > 0]
    if not rows:
        raise ConfigError("plot_comparison needs at least one row with multiply-adds and params > 0")
    path = os.fspath(path)
    biggest = max(r.activation_bytes for r in rows)
    fig = Figure(figsize=(11, 7.5))
    FigureCanvasAgg(fig)  # attaches the Agg canvas; no pyplot, no global backend switch
    ax = fig.add_subplot()
    families = sorted({r.family for r in rows})
    colors = {f: f"C{i % 10}" for i, f in enumerate(families)}
    for family in families:
        members = [r for r in rows if r.family == family]
        ax.scatter([r.multiply_adds for r in members], [r.params for r in members],
                   s=[20 + 1500 * r.activation_bytes / biggest for r in members], c=colors[family],
                   alpha=0.45, edgecolors="black", linewidths=0.6, label=family)
    # Variants with the same counts (resnet50 and preact_resnet50) share one label; labels of
    # neighbouring points (in x order) take turns above and below to limit collisions.
    points = {}
    for r in rows:
        key = (float(f"{r.multiply_adds:.3g}"), float(f"{r.params:.3g}"))
        points.setdefault(key, []).append(r.name)
    for i, ((xi, yi), labels) in enumerate(sorted(points.items())):
        ax.annotate(" = ".join(labels), (xi, yi), xytext=(5, 5 if i % 2 == 0 else -11),
                    textcoords="offset points", fontsize=7)
    legend = ax.legend(loc="lower right", fontsize=8, markerscale=0.5, title="family")
    for handle in legend.legend_handles:
        handle.set_sizes([40])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("multiply-adds per image (forward)")
    ax.set_ylabel("trainable parameters")
    ax.set_title(f"Model complexity (bubble area = forward activation memory, max "
                 f"{biggest / 1e6:.0f} MB/image)")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    # Written beside the target and renamed into place, so a crash never leaves half a PNG.
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".zoo-", suffix=".png", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=120)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


# The lecture's VGG-16 walk-through (CS231n 2017 lecture 9 / course notes) lists the size of
# every representation and states "TOTAL memory: 24M * 4 bytes ~= 93MB / image (only forward!
# ~*2 for bwd)". Its own per-layer list sums to 15,237,608 values.
LECTURE_VGG16_VALUES = 24e6
LECTURE_VGG16_LISTED_VALUES = 15_237_608


def vgg16_memory_note(model=None):
    """A paragraph comparing VGG-16's forward activation memory with the lecture's ~96 MB/image.

    Builds the registered ``vgg16`` at 224x224x3 unless a VGG-16 ``model`` is given.
    """
    if model is None:
        model = registry.build("vgg16")
    inplace = profile(model)
    separate = profile(model, inplace_elementwise=False)
    values = inplace.activation_bytes / BYTES_PER_FLOAT32
    values_sep = separate.activation_bytes / BYTES_PER_FLOAT32
    return (
        f"VGG-16 forward activations, one {'x'.join(map(str, inplace.input_shapes[0]))} image: "
        f"{values / 1e6:.2f}M values = {inplace.activation_bytes / 1e6:.1f} MB in float32, counting "
        "the input and every conv/pool/fc output once with ReLU in place (the lecture's "
        f"convention). The lecture's per-layer list sums to the same "
        f"{LECTURE_VGG16_LISTED_VALUES / 1e6:.2f}M values; its stated total of "
        f"{LECTURE_VGG16_VALUES / 1e6:.0f}M values (~{LECTURE_VGG16_VALUES * 4 / 1e6:.0f} MB, "
        "quoted as ~93 MB) does not follow from that list and overstates it by "
        f"{LECTURE_VGG16_VALUES / LECTURE_VGG16_LISTED_VALUES:.2f}x. Storing the output of every "
        "ReLU layer as its own tensor, as an unfused TensorFlow graph does, gives "
        f"{values_sep / 1e6:.2f}M "
        f"values = {separate.activation_bytes / 1e6:.1f} MB. Training keeps the forward "
        "activations for the backward pass and needs about as much again for their gradients: "
        f"~{2 * inplace.activation_bytes / 1e6:.0f} MB per image (the lecture's '~x2 for bwd')."
    )
