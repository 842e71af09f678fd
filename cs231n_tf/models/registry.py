"""Name -> builder registry for every model in the package.

A builder is a plain function ``fn(input_shape, num_classes, **options) -> tf.keras.Model`` in
the style of ``keras.applications``: it returns an uncompiled functional model whose output is
logits (no softmax), so the trainer, the exporters and the compressors can treat all models alike.
"""

import dataclasses
import importlib
import inspect

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, InputTypeError


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one builder."""

    name: str
    builder: object
    family: str
    summary: str
    canonical_input_shape: tuple
    canonical_num_classes: int
    reference_params: int = None
    reference: str = ""
    # Pretrained builders: the fixed input normalisation their weights were trained with, as
    # per-channel (mean, std) of unit-scale pixels (the model sees ``(x - mean) / std``), and the
    # accepted ``weights`` values besides None.
    input_stats: tuple = None
    pretrained: tuple = ()

    def options(self):
        """Keyword options the builder accepts beyond ``input_shape`` and ``num_classes``."""
        sig = inspect.signature(self.builder)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.name not in ("input_shape", "num_classes") and p.kind == p.KEYWORD_ONLY
        }


_REGISTRY = {}

# Builders that register themselves from modules outside this package: name -> that module. It is
# imported only when one of its names is looked up or every model is listed, so that importing
# ``cs231n_tf.models`` does not import ``cs231n_tf.compress``. Add a name here when such a module
# registers a new builder (tests/test_import_rules.py checks the table against the registry).
LAZY_BUILDERS = {
    # The ternary and binary-weight networks of lecture 15 live beside the compression code.
    "ternary_lenet300_100": "cs231n_tf.compress.ternary",
    "binary_lenet300_100": "cs231n_tf.compress.ternary",
    "ternary_lenet5": "cs231n_tf.compress.ternary",
    "binary_lenet5": "cs231n_tf.compress.ternary",
}


def register(
    name,
    *,
    family,
    canonical_input_shape,
    canonical_num_classes,
    reference_params=None,
    reference="",
    input_stats=None,
    pretrained=(),
):
    """Decorator adding a builder to the registry under ``name``.

    ``reference_params`` is the trainable parameter count of the reference implementation at the
    canonical input shape and class count; tests check the builder against it.
    """

    def decorate(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        doc = inspect.getdoc(fn) or ""
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=fn,
            family=family,
            summary=doc.splitlines()[0] if doc else "",
            canonical_input_shape=tuple(canonical_input_shape),
            canonical_num_classes=int(canonical_num_classes),
            reference_params=reference_params,
            reference=reference,
            input_stats=None if input_stats is None else (tuple(input_stats[0]), tuple(input_stats[1])),
            pretrained=tuple(pretrained),
        )
        return fn

    return decorate


def _ensure_loaded(name=None):
    """Import the modules that register builders: all of them, or only those ``name`` needs.

    Builders register themselves on import; the package's own model modules are imported by
    ``cs231n_tf.models``, the ones in :data:`LAZY_BUILDERS` here, on demand.
    """
    import cs231n_tf.models  # noqa: F401

    modules = set(LAZY_BUILDERS.values()) if name is None else {LAZY_BUILDERS.get(name)} - {None}
    for module in sorted(modules):
        importlib.import_module(module)


def list_models():
    """Sorted names of every registered model."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_spec(name):
    """The :class:`ModelSpec` for ``name``; unknown names list the known ones."""
    if not isinstance(name, str):
        raise InputTypeError(f"model name must be a string, got {type(name).__name__}")
    _ensure_loaded(name)
    if name not in _REGISTRY:
        _ensure_loaded()  # so that the message lists every model
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}"
        ) from None


def pretrained_spec(name, weights):
    """The :class:`ModelSpec` of ``name``, checked to offer the pretrained ``weights``.

    What every command that starts from pretrained weights (predict, finetune, export) checks first.
    """
    spec = get_spec(name)
    if not spec.pretrained:
        _ensure_loaded()
        offering = [n for n in sorted(_REGISTRY) if _REGISTRY[n].pretrained]
        raise ConfigError(f"model {name!r} has no pretrained weights; models with pretrained weights: "
                          f"{', '.join(offering) or 'none'} (a trained run is given with --run / run_dir)")
    if weights not in spec.pretrained:
        raise ConfigError(f"model {name!r} offers weights {', '.join(map(repr, spec.pretrained))}, got {weights!r}")
    return spec


def check_input_shape(input_shape, *, min_size=1):
    """Validate an ``(H, W, C)`` image shape and return it as a tuple of ints."""
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input_shape must be (height, width, channels), got {input_shape!r}") from None
    if len(shape) != 3 or any(d <= 0 for d in shape):
        raise ConfigError(f"input_shape must be three positive ints (H, W, C), got {input_shape!r}")
    if min(shape[:2]) < min_size:
        raise ConfigError(
            f"input_shape {shape} is too small for this model: height and width must be at least {min_size}"
        )
    return shape


def build(name, input_shape=None, num_classes=None, **options):
    """Build model ``name`` for ``input_shape`` (H, W, C) and ``num_classes`` classes.

    Missing ``input_shape``/``num_classes`` default to the model's canonical ones. Options the
    builder does not accept raise :class:`ConfigError` naming the accepted ones.
    """
    spec = get_spec(name)
    input_shape = spec.canonical_input_shape if input_shape is None else input_shape
    num_classes = spec.canonical_num_classes if num_classes is None else num_classes
    num_classes = validation.positive_int("num_classes", num_classes)
    accepted = spec.options()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model {name!r} does not accept option(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted)) or 'none'}"
        )
    return spec.builder(input_shape=tuple(input_shape), num_classes=num_classes, **options)
