"""Random hyperparameter search with coarse-to-fine refinement (CS231n lecture 6).

Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization" (JMLR 2012): with a fixed
trial budget, random points explore each important hyperparameter at as many distinct values as
there are trials, where a grid wastes trials repeating the values of the unimportant ones. Scale
parameters (learning rate, regularisation strength) are sampled uniformly in log space. The lecture's
recipe is coarse to fine: a first round over wide ranges, then a second round over ranges narrowed
around the best trials.

A search is a directory::

    DIR/search.json      the search (base config, parameter specs, seed, rounds)
    DIR/trial-000/ ...   one ordinary run directory per trial (config.json, checkpoints, metrics.json)
    DIR/results.csv      every trial, best validation accuracy first
    DIR/search.png       validation accuracy against each numeric parameter

Trial ``i`` of round ``r`` draws its values from ``numpy.random.default_rng([seed, r, i])``, so the
trials are the same on every invocation; re-running a search skips finished trials and resumes
unfinished ones from their checkpoints.
"""

import csv
import dataclasses
import io
import json
import math
import numbers
import os

import numpy as np

from cs231n_tf.errors import ConfigError, NonFiniteLossError, RunDirError
from cs231n_tf.fileio import atomic_write_bytes, atomic_write_json, read_json
from cs231n_tf.train import config as config_lib
from cs231n_tf.train.config import TrainConfig

SCALES = ("log", "linear", "choice")
SEARCH_FILE = "search.json"
RESULTS_FILE = "results.csv"
PLOT_FILE = "search.png"
DIVERGED_FILE = "diverged.json"
# Fields that define the search itself rather than a trial's hyperparameters.
FIXED_FIELDS = ("model", "model_options", "dataset", "data_dir", "seed", "strategy")
METRIC_COLUMNS = ("val_accuracy", "val_loss", "test_accuracy", "train_loss", "model_params", "steps", "wall_seconds")


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One searched hyperparameter.

    ``scale`` is ``log`` (uniform in ``log(value)`` on ``[low, high]``), ``linear`` (uniform on
    ``[low, high]``) or ``choice`` (uniform over ``choices``). ``integer`` rounds sampled values
    (``batch_size``, ``hidden_dim``...). ``target`` is ``config`` for a :class:`TrainConfig` field
    or ``model_options`` for an option of the model's builder.
    """

    name: str
    scale: str
    low: float = None
    high: float = None
    choices: tuple = None
    integer: bool = False
    target: str = "config"

    def __str__(self):
        if self.scale == "choice":
            return f"{self.name}=choice:{','.join(json.dumps(c) for c in self.choices)}"
        return f"{self.name}={self.low:g}:{self.high:g}:{self.scale}"

    @property
    def numeric(self):
        """True when every value is a number (so it can be plotted on an axis)."""
        if self.scale != "choice":
            return True
        return all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in self.choices)

    def sample(self, rng):
        """One value drawn with the numpy Generator ``rng``."""
        if self.scale == "choice":
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.scale == "log":
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if self.integer:
            return int(min(max(round(value), math.ceil(self.low)), math.floor(self.high)))
        return float(value)

    def to_json(self):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, obj):
        obj = dict(obj)
        if obj.get("choices") is not None:
            obj["choices"] = tuple(obj["choices"])
        return cls(**obj)


def _number(text, where):
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"search parameter {where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"search parameter {where}: bounds must be finite, got {text!r}")
    return value


def _is_int_text(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


def parse_param(text):
    """Parse ``NAME=LOW:HIGH:log``, ``NAME=LOW:HIGH:linear`` or ``NAME=choice:A,B,C`` (syntax only).

    Choice values are read as JSON where they can be (``32`` is an int, ``true`` a bool), else as
    strings. Ranges written with integers (``16:256:log``) sample integers. :func:`resolve_params`
    then checks the name against the config and the model.
    """
    name, sep, spec = str(text).partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not spec:
        raise ConfigError(f"search parameter {text}: expected NAME=LOW:HIGH:SCALE or NAME=choice:A,B,...")
    if spec.startswith("choice:"):
        items = [s.strip() for s in spec[len("choice:"):].split(",")]
        if not items or any(not s for s in items):
            raise ConfigError(f"search parameter {text}: choice needs a comma-separated list of values, "
                              "e.g. choice:32,64,128")
        choices = []
        for item in items:
            try:
                choices.append(json.loads(item))
            except ValueError:
                choices.append(item)
        if len(set(json.dumps(c) for c in choices)) != len(choices):
            raise ConfigError(f"search parameter {text}: choice values repeat")
        return ParamSpec(name, "choice", choices=tuple(choices))
    parts = spec.split(":")
    if len(parts) != 3:
        raise ConfigError(f"search parameter {text}: expected NAME=LOW:HIGH:SCALE with SCALE log or linear, "
                          f"or NAME=choice:A,B,...")
    low_text, high_text, scale = (p.strip() for p in parts)
    if scale not in ("log", "linear"):
        raise ConfigError(f"search parameter {text}: unknown scale {scale!r}; use log, linear or choice:A,B,...")
    low, high = _number(low_text, text), _number(high_text, text)
    if not low < high:
        raise ConfigError(f"search parameter {text}: low must be below high, got {low:g} >= {high:g}")
    if scale == "log" and low <= 0:
        raise ConfigError(f"search parameter {text}: a log scale needs low > 0, got {low:g}")
    return ParamSpec(name, scale, low, high, integer=_is_int_text(low_text) and _is_int_text(high_text))


def _integer_bounds(spec):
    return float(spec.low).is_integer() and float(spec.high).is_integer()


def _field_types():
    return {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def resolve_params(specs, base):
    """Check ``specs`` against the base :class:`TrainConfig` and return them with targets set.

    A name is a TrainConfig field or an option of ``base.model``'s builder; ``integer`` follows the
    field's type or the option's default. Unknown names, fixed fields, duplicates, names also fixed
    by the base config's ``model_options``, and bounds or choices the config rejects raise
    ConfigError. Model option values are checked by the builder when a trial is built.
    """
    from cs231n_tf import models

    fields = _field_types()
    model_options = models.get_spec(base.model).options()
    seen, resolved = set(), []
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"search parameter {spec.name} is given twice")
        seen.add(spec.name)
        if spec.name in FIXED_FIELDS:
            raise ConfigError(f"search parameter {spec.name}: {spec.name} is fixed for the whole search "
                              f"(searchable: TrainConfig fields other than {', '.join(FIXED_FIELDS)}, "
                              "or model options)")
        if spec.name in fields:
            integer = fields[spec.name] in (int, "int")
            if integer and spec.scale != "choice" and not _integer_bounds(spec):
                raise ConfigError(f"search parameter {spec}: {spec.name} is an integer; give integer bounds")
            spec = dataclasses.replace(spec, target="config", integer=integer if spec.scale != "choice" else False)
            probes = spec.choices if spec.scale == "choice" else (spec.low, spec.high)
            for value in probes:
                value = int(value) if spec.integer else value
                try:
                    dataclasses.replace(base, **{spec.name: value}).validate()
                except ConfigError as exc:
                    raise ConfigError(f"search parameter {spec}: {exc}") from None
        elif spec.name in model_options:
            if spec.name in base.model_options:
                raise ConfigError(f"search parameter {spec.name}: also fixed by model option {spec.name}; give it once")
            # The builder's default says whether the option is an int (hidden_dim=100) or a float
            # (dropout=0.0); without a numeric default, integer bounds mean integers.
            default = model_options[spec.name]
            integer = spec.integer
            if isinstance(default, (int, float)) and not isinstance(default, bool) and spec.scale != "choice":
                integer = isinstance(default, int)
                if integer and not _integer_bounds(spec):
                    raise ConfigError(f"search parameter {spec}: option {spec.name} of {base.model} is an integer; "
                                      "give integer bounds")
            spec = dataclasses.replace(spec, target="model_options", integer=integer)
        else:
            raise ConfigError(
                f"unknown search parameter {spec.name!r}: not a train option nor an option of model {base.model!r} "
                f"(model options: {', '.join(sorted(model_options)) or 'none'})")
        resolved.append(spec)
    if not resolved:
        raise ConfigError("a search needs at least one parameter")
    return resolved


def sample_values(specs, seed, round_index, trial_index):
    """The hyperparameter values of one trial: ``{name: value}``, fixed by the three integers."""
    rng = np.random.default_rng([int(seed), int(round_index), int(trial_index)])
    return {spec.name: spec.sample(rng) for spec in specs}


def trial_config(base, specs, values):
    """``base`` with the trial's ``values`` put into config fields and model options."""
    fields = {s.name: values[s.name] for s in specs if s.target == "config"}
    options = {**base.model_options, **{s.name: values[s.name] for s in specs if s.target == "model_options"}}
    return dataclasses.replace(base, model_options=options, **fields).validate()


def refine(specs, rows, top_k):
    """Coarse to fine: ranges narrowed around the ``top_k`` best finished trials of ``rows``.

    A numeric range becomes the span of the best trials' values (in log space for ``log``),
    padded on each side by a quarter of that span plus 5% of the old width, and clipped to the
    old range; a choice keeps only the values the best trials used.
    """
    best = [r for r in rows if _finite(r.get("val_accuracy"))][:top_k]
    if not best:
        raise ConfigError("no trial finished with a finite validation accuracy; nothing to refine around")
    out = []
    for spec in specs:
        values = [r["values"][spec.name] for r in best]
        if spec.scale == "choice":
            keep = tuple(c for c in spec.choices if any(json.dumps(c) == json.dumps(v) for v in values))
            out.append(dataclasses.replace(spec, choices=keep))
            continue
        to_axis = math.log if spec.scale == "log" else float
        from_axis = math.exp if spec.scale == "log" else float
        lo_axis, hi_axis = to_axis(spec.low), to_axis(spec.high)
        points = [to_axis(v) for v in values]
        pad = 0.25 * (max(points) - min(points)) + 0.05 * (hi_axis - lo_axis)
        low = from_axis(max(lo_axis, min(points) - pad))
        high = from_axis(min(hi_axis, max(points) + pad))
        low, high = max(low, spec.low), min(high, spec.high)
        if spec.integer:
            low, high = math.floor(low), math.ceil(high)
            if low == high:
                out.append(dataclasses.replace(spec, scale="choice", low=None, high=None, choices=(int(low),),
                                               integer=False))
                continue
        out.append(dataclasses.replace(spec, low=low, high=high))
    return out


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def _sort_key(row):
    acc, loss = row.get("val_accuracy"), row.get("val_loss")
    return (-(acc if _finite(acc) else -1.0), loss if _finite(loss) else math.inf, row["trial"])


@dataclasses.dataclass
class SearchResult:
    """``rows`` sorted best first (dicts: trial, round, values, status and the metric columns),
    ``rounds`` the parameter specs of each round, ``trained`` the trials trained by this call."""

    out: str
    rows: list
    rounds: list
    trained: list
    csv_path: str
    plot_path: str

    @property
    def best(self):
        return self.rows[0]


def _search_record(base, specs, trials, seed):
    return {"base": base.to_json(), "params": [s.to_json() for s in specs], "trials": trials, "seed": seed}


def _load_or_create_record(out, record):
    path = os.path.join(out, SEARCH_FILE)
    if os.path.isfile(path):
        try:
            saved = read_json(path)
            rounds = [[ParamSpec.from_json(p) for p in r] for r in saved["rounds"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise RunDirError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from None
        differs = [k for k in record if saved.get(k) != json.loads(json.dumps(record[k]))]
        if differs:
            raise RunDirError(f"{out} holds a different search ({', '.join(differs)} differ); "
                              "re-run it with its original settings or choose another output directory")
        return saved, rounds
    saved = dict(record, rounds=[record["params"]])
    atomic_write_json(path, saved)
    return saved, [[ParamSpec.from_json(p) for p in record["params"]]]


def _data_key(config):
    return (config.dataset, config.data_dir, config.validation_fraction, config.split_seed, config.preprocessing)


class _DataCache:
    """One loaded data set per distinct (dataset, split, preprocessing) setting across trials."""

    def __init__(self, base, data=None):
        self._data = {} if data is None else {_data_key(base): data}

    def get(self, config):

        key = _data_key(config)
        if key not in self._data:
            self._data[key] = config_lib.load_data(config)
        return self._data[key]


def _run_trial(config, trial_dir, data_cache, log):
    """Train (or resume, or skip) one trial; returns ``(status, metrics, trained)``."""
    import tensorflow as tf

    from cs231n_tf.train.trainer import CHECKPOINT_DIR, Trainer

    name = os.path.basename(trial_dir)
    metrics_path = os.path.join(trial_dir, config_lib.METRICS_FILE)
    diverged_path = os.path.join(trial_dir, DIVERGED_FILE)
    config_path = os.path.join(trial_dir, config_lib.CONFIG_FILE)
    if os.path.isfile(config_path):
        saved = config_lib.load_run_config(trial_dir)["train"]
        if saved != json.loads(json.dumps(config.to_json())):
            raise RunDirError(f"{trial_dir} was trained with other settings than this search gives it; "
                              "choose another output directory")
    if os.path.isfile(metrics_path):
        return "done", read_json(metrics_path), False
    if os.path.isfile(diverged_path):
        return "diverged", read_json(diverged_path), False
    resume = tf.train.latest_checkpoint(os.path.join(trial_dir, CHECKPOINT_DIR)) is not None
    log(f"{name}: {'resuming' if resume else 'training'}")
    tf.keras.backend.clear_session()
    try:
        result = Trainer(config, trial_dir, resume=resume, data=data_cache.get(config),
                         log=lambda m: log(f"{name}: {m}")).run()
    except NonFiniteLossError as exc:
        record = {"step": exc.step, "message": str(exc)}
        atomic_write_json(diverged_path, record)
        log(f"{name}: diverged at step {exc.step}")
        return "diverged", record, True
    return "done", result.metrics, True


def _row(name, round_index, values, status, metrics):
    row = {"trial": name, "round": round_index, "values": values, "status": status}
    if status == "done":
        row.update(val_accuracy=metrics["val_accuracy"], val_loss=metrics["val_loss"],
                   test_accuracy=metrics["test_accuracy"], train_loss=metrics["final_train_loss"],
                   model_params=metrics.get("model_params"), steps=metrics["steps"],
                   wall_seconds=metrics["wall_seconds"])
    else:
        row.update({k: float("nan") for k in METRIC_COLUMNS})
        row["steps"] = metrics.get("step")
    return row


def run_search(base, specs, trials, out, seed=0, refine_top=0, data=None, log=print):
    """Run (or continue) a random search; returns a :class:`SearchResult`.

    Args:
      base: the :class:`TrainConfig` every trial starts from (its ``seed`` seeds every trial's
        initialisation, so trials differ only in their hyperparameters).
      specs: :class:`ParamSpec` list (from :func:`parse_param`; resolved here).
      trials: trials per round.
      out: the search directory.
      seed: seeds the sampling of the trials' values.
      refine_top: if > 0, a second round of ``trials`` trials over ranges narrowed around the
        best ``refine_top`` trials of the first (:func:`refine`).
      data: an already loaded ``DataSplits`` for ``base``'s data set (optional).
      log: progress messages (``None``: silent).
    """
    log = log or (lambda _: None)
    base = base.validate()
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be a positive int, got {trials!r}")
    if isinstance(refine_top, bool) or not isinstance(refine_top, int) or refine_top < 0:
        raise ConfigError(f"refine must be an int >= 0, got {refine_top!r}")
    if refine_top > trials:
        raise ConfigError(f"refine {refine_top} is more than the {trials} trials of the first round")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be an int >= 0, got {seed!r}")
    specs = resolve_params(specs, base)
    os.makedirs(out, exist_ok=True)
    record, rounds = _load_or_create_record(out, _search_record(base, specs, trials, seed))
    data_cache = _DataCache(base, data)
    rows, trained = [], []
    if refine_top and len(rounds) > 1 and record.get("refine") != refine_top:
        raise RunDirError(f"{out}: its second round was refined around the best {record.get('refine')} trials, "
                          f"not {refine_top}; re-run with refine_top={record.get('refine')} "
                          "or choose another output directory")
    # A refined round already on disk is always continued and reported, with or without --refine.
    n_rounds = max(len(rounds), 2 if refine_top else 1)
    for round_index in range(n_rounds):
        if round_index == len(rounds):
            narrowed = refine(rounds[0], sorted(rows, key=_sort_key), refine_top)
            rounds.append(narrowed)
            record["rounds"].append([s.to_json() for s in narrowed])
            record["refine"] = refine_top
            atomic_write_json(os.path.join(out, SEARCH_FILE), record)
            log("refined ranges: " + ", ".join(str(s) for s in narrowed))
        for i in range(trials):
            number = round_index * trials + i
            name = f"trial-{number:03d}"
            values = sample_values(rounds[round_index], seed, round_index, i)
            config = trial_config(base, rounds[round_index], values)
            status, metrics, did_train = _run_trial(config, os.path.join(out, name), data_cache, log)
            if did_train:
                trained.append(name)
            rows.append(_row(name, round_index, values, status, metrics))
    rows.sort(key=_sort_key)
    csv_path = os.path.join(out, RESULTS_FILE)
    write_csv(rows, specs, csv_path)
    plot_path = os.path.join(out, PLOT_FILE)
    plot_search(rows, rounds, plot_path)
    return SearchResult(out=out, rows=rows, rounds=rounds, trained=trained, csv_path=csv_path, plot_path=plot_path)


def _cell(value, digits=6):
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        value = float(value)
        return "nan" if math.isnan(value) else f"{value:.{digits}g}"
    if isinstance(value, (list, dict, bool)) or value is None:
        return json.dumps(value)
    return str(value)


def write_csv(rows, specs, path):
    """``rows`` (already sorted) as CSV: trial, round, status, each parameter, the metrics."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", "trial", "round", "status", *[s.name for s in specs], *METRIC_COLUMNS])
    for rank, row in enumerate(rows, start=1):
        writer.writerow([rank, row["trial"], row["round"], row["status"],
                         *[_cell(row["values"][s.name], 10) for s in specs],
                         *[_cell(row[k], 10) for k in METRIC_COLUMNS]])
    atomic_write_bytes(path, buf.getvalue().encode())


def read_csv(path):
    """The rows of a ``results.csv`` as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def format_table(rows, specs):
    """A markdown table of ``rows`` (best first): parameters, validation accuracy/loss, size."""
    head = ["rank", "trial", *[s.name for s in specs], "val_acc", "val_loss", "train_loss", "params", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for rank, row in enumerate(rows, start=1):
        cells = [str(rank), row["trial"], *[_cell(row["values"][s.name]) for s in specs],
                 f"{row['val_accuracy']:.4f}", f"{row['val_loss']:.4f}", f"{row['train_loss']:.4f}",
                 "" if not _finite(row["model_params"]) else f"{int(row['model_params']):,}", row["status"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_search(rows, rounds, path):
    """Validation accuracy against each numeric parameter (log axis for log-scale ones), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = [s for s in rounds[0] if s.numeric]
    fig, axes = plt.subplots(1, max(len(specs), 1), figsize=(4 * max(len(specs), 1), 3.5), squeeze=False)
    for ax, spec in zip(axes[0], specs):
        for round_index, marker in zip(range(len(rounds)), ("o", "^")):
            points = [(r["values"][spec.name], r["val_accuracy"]) for r in rows
                      if r["round"] == round_index and _finite(r["val_accuracy"])]
            if points:
                xs, ys = zip(*points)
                ax.scatter(xs, ys, marker=marker, alpha=0.8, label=f"round {round_index + 1}")
        finished = [r for r in rows if _finite(r["val_accuracy"])]
        if finished:
            ax.scatter([finished[0]["values"][spec.name]], [finished[0]["val_accuracy"]], marker="*", s=200,
                       color="gold", edgecolor="k", zorder=3, label="best")
        if spec.scale == "log":
            ax.set_xscale("log")
        ax.set_xlabel(spec.name)
        ax.set_ylabel("validation accuracy")
        ax.legend(fontsize=7)
    if not specs:
        axes[0][0].set_axis_off()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
