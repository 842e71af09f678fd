"""The command line's argument layer, standard library only (``cs231n-tf --help`` never imports TensorFlow).

* :class:`Parser`: argparse that reports a mistake in one line (no usage dump) as :class:`UsageError`,
  which ``main`` prints and turns into exit code 2.
* Argument types (``positive_int``, ``unit_float``, ``step_list``...): argparse ``type=`` callables.
* :func:`add_config_flags` / :func:`config_values`: one flag per field of a config dataclass, from the
  field's metadata (``help``, ``kind``, ``choices``, ``flag``, ``group``) and its default -- so a
  default or a list of choices is written once, in the config, and every ``--help`` shows it.
"""

import argparse
import dataclasses
import json

PROG = "cs231n-tf"


class UsageError(Exception):
    """A user mistake on the command line: one line on stderr, exit code 2."""


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to every option that has a default and does not show it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" not in text and action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse that reports mistakes in one line (no usage dump) with exit code 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def _int(text, low, what):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text):
    return _int(text, 1, "a positive integer")


def non_negative_int(text):
    return _int(text, 0, "an integer >= 0")


def _float(text, ok, what):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_float(text):
    return _float(text, lambda v: v > 0, "a positive finite number")


def non_negative_float(text):
    return _float(text, lambda v: v >= 0, "a finite number >= 0")


def unit_float(text):
    return _float(text, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def number(text):
    return _float(text, lambda v: True, "a finite number")


def integer(text):
    return _int(text, -(2 ** 63), "an integer")


def step_list(text):
    try:
        steps = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated step numbers, e.g. 32000,48000, got {text!r}") from None
    if any(s < 1 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:])):
        raise argparse.ArgumentTypeError(f"expected strictly increasing positive step numbers, got {text!r}")
    return steps


def add_source_arguments(parser, run_help):
    """``--run DIR`` or ``--model NAME [--weights W]``: a trained run or a pretrained model, exactly one."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help=run_help)
    source.add_argument("--model", help="pretrained registry model, e.g. efficientnet_lite0")
    parser.add_argument("--weights", default="imagenet", help="with --model: which pretrained weights")


def image_size(text):
    """``S`` or ``H,W`` (also ``HxW``): a positive image size, as ``[H, W]``."""
    parts = text.replace("x", ",").split(",")
    try:
        size = [int(p) for p in parts]
    except ValueError:
        size = []
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"expected an image size S or H,W of positive integers, got {text!r}")
    return size


def name_list(text):
    return [s.strip() for s in text.split(",") if s.strip()]


def model_option(text):
    """``key=value`` with the value parsed as JSON when it can be (numbers, lists, booleans)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def method_eps(text, choices):
    """``METHOD[:EPS]`` (``fgsm:0.25``): the method, one of ``choices``, and an optional positive number."""
    method, sep, eps = text.partition(":")
    accepted = ["none" if c is None else c for c in choices]
    if method not in accepted:
        raise argparse.ArgumentTypeError(f"invalid choice {method!r} (choose from {', '.join(accepted)}, "
                                         f"optionally followed by :EPS)")
    if not sep:
        return method, None
    if method == "none":
        raise argparse.ArgumentTypeError(f"'none' takes no :EPS, got {text!r}")
    return method, positive_float(eps)


KINDS = {"positive_int": positive_int, "non_negative_int": non_negative_int, "positive_float": positive_float,
         "non_negative_float": non_negative_float, "unit_float": unit_float, "step_list": step_list,
         "name_list": name_list, "number": number, "integer": integer, "image_size": image_size}


_KIND_OF_TYPE = {bool: "bool", "bool": "bool", int: "integer", "int": "integer", float: "number", "float": "number"}


def _default(field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _shown(value):
    if value is None:
        return "unset"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value) if value else "none"
    return str(value)


def flag_fields(cls, skip=()):
    """The fields of dataclass ``cls`` that have a flag, minus ``skip``."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("flag", "") is not None and f.name not in skip]


def add_config_flags(parser, cls, skip=(), help_overrides=None):
    """Add a flag for every field of ``cls`` (see the module docstring); values default to ``None``
    (= not given), and the help shows the dataclass default."""
    groups = {}
    help_overrides = help_overrides or {}
    for field in flag_fields(cls, skip):
        meta = field.metadata
        name = meta.get("flag") or "--" + field.name.replace("_", "-")
        group_name = meta.get("group")
        target = parser
        if group_name:
            if group_name not in groups:
                groups[group_name] = parser.add_argument_group(group_name)
            target = groups[group_name]
        kind = meta.get("kind") or _KIND_OF_TYPE.get(field.type)
        text = help_overrides.get(field.name, meta.get("help", ""))
        default = _default(field)
        kwargs = {"help": f"{text} (default: {_shown(default)})".replace("%%", "%").replace("%", "%%")}
        if kind == "bool":
            # A switch that is on by default also gets its --no- form.
            kwargs.update(action=argparse.BooleanOptionalAction if default else "store_true", default=None)
        elif kind == "model_option":
            kwargs.update(action="append", type=model_option, metavar="KEY=VALUE", dest=field.name)
        elif kind == "method_eps":
            choices = meta["choices"]
            kwargs.update(type=lambda text, choices=choices: method_eps(text, choices),
                          metavar="{" + ",".join(c for c in choices if c is not None) + "}[:EPS]")
        else:
            if kind is not None:
                kwargs["type"] = KINDS[kind]
            if meta.get("choices"):
                kwargs["choices"] = ["none" if c is None else c for c in meta["choices"]]
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
        target.add_argument(name, **kwargs)
    return parser


def config_values(cls, args, skip=()):
    """``{field: value}`` of the flags of ``cls`` given in ``args`` (``none`` choices become ``None``;
    a ``method_eps`` flag ``METHOD:EPS`` also sets its ``eps_field``)."""
    values = {}
    for field in flag_fields(cls, skip):
        value = getattr(args, field.name, None)
        if value is None:
            continue
        if field.metadata.get("kind") == "model_option":
            value = dict(value)
        elif field.metadata.get("kind") == "method_eps":
            # METHOD:EPS sets the field and the eps field named in the metadata, unless that flag says otherwise.
            value, eps = value
            eps_field = field.metadata["eps_field"]
            given = getattr(args, eps_field, None)
            if eps is not None and given is not None and given != eps:
                raise UsageError(f"{PROG}: --{field.name.replace('_', '-')} {value}:{eps:g} and "
                                 f"--{eps_field.replace('_', '-')} {given:g} disagree; give eps once")
            if eps is not None:
                values[eps_field] = eps
        if field.metadata.get("choices") and None in field.metadata["choices"] and value == "none":
            value = None
        values[field.name] = value
    return values


def resumed_config(saved, given, resumable, command):
    """``saved`` (a run's config dataclass) updated by the ``given`` flags for ``--resume``.

    Only the ``resumable`` fields (epochs, step budgets...) may change; any other flag that differs
    from the run's value is a :class:`UsageError` naming it. Returns the validated config.
    """
    conflicts = [k for k, v in given.items() if k not in resumable and getattr(saved, k) != v]
    if conflicts:
        raise UsageError(f"{PROG} {command}: --resume keeps the run's settings; these differ from it: "
                         + ", ".join(f"{k} (run has {getattr(saved, k)!r})" for k in conflicts))
    for k in resumable:
        if k in given:
            setattr(saved, k, given[k])
    return saved.validate()
