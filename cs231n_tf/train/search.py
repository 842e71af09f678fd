"""Hyperparameter search on an Optuna study, with coarse-to-fine refinement (CS231n lecture 6).

Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization" (JMLR 2012): with a fixed
trial budget, random points explore each important hyperparameter at as many distinct values as
there are trials, where a grid wastes trials repeating the values of the unimportant ones. Scale
parameters (learning rate, regularisation strength) are sampled uniformly in log space. The lecture's
recipe is coarse to fine: a first round over wide ranges, then a second round over ranges narrowed
around the best trials.

The bookkeeping is Optuna's: the course's log-space random search is its ``RandomSampler``
(``suggest_float(..., log=True)``), a grid is its ``GridSampler`` and TPE is offered beyond the
course. The study lives in an RDB storage -- by default ``DIR/study.db`` (SQLite) -- so a killed
search resumes, and several processes (or machines, with a server database) work on one study:

    DIR/study.db         the Optuna study (one per round: NAME, NAME-refine1)
    DIR/search.json      the search as last run (base config, parameter specs, seed, rounds)
    DIR/trial-000/ ...   one ordinary run directory per trial (config.json, checkpoints, metrics.json)
    DIR/results.csv      every trial, best objective first
    DIR/search.png       the objective against each numeric parameter

A round has ``trials`` *slots*. Fresh trials take slots in the order the storage numbers them
(atomic, so every process agrees); a slot's trial that dies (its process killed: detected at once
on this machine, after Optuna's heartbeat grace period elsewhere) is re-queued with the same values
and resumes from the checkpoints of its run directory; a trial asked for when every slot is taken is
closed without training. So N processes finish the requested trials with none lost or run twice.
A trial's values depend only on (seed, round, slot), not on which process drew them.
"""

import contextlib
import csv
import dataclasses
import io
import json
import math
import numbers
import os
import socket
import time
import zlib

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, NonFiniteLossError, RunDirError
from cs231n_tf.fileio import atomic_write_bytes, atomic_write_json, read_json
from cs231n_tf.train import config as config_lib

SCALES = ("log", "linear", "choice")
SAMPLERS = ("random", "grid", "tpe")
SEARCH_FILE = "search.json"
STUDY_FILE = "study.db"
RESULTS_FILE = "results.csv"
PLOT_FILE = "search.png"
DIVERGED_FILE = "diverged.json"
# Optuna's heartbeat: a running trial not heard of for GRACE_SECONDS is failed and re-queued.
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
POLL_SECONDS = 2.0
# Fields that define the search itself rather than a trial's hyperparameters.
FIXED_FIELDS = ("model", "model_options", "dataset", "data_dir", "seed", "strategy")
# results.csv column -> metrics.json key.
METRIC_SOURCES = {"val_accuracy": "val_accuracy", "val_loss": "val_loss", "test_accuracy": "test_accuracy",
                  "train_loss": "final_train_loss", "model_params": "model_params", "steps": "steps",
                  "wall_seconds": "wall_seconds"}
METRIC_COLUMNS = tuple(METRIC_SOURCES)


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


def _field_types(config):
    return {f.name: f.type for f in dataclasses.fields(config)}


def resolve_params(specs, base):
    """Check ``specs`` against the base :class:`TrainConfig` and return them with targets set.

    A name is a TrainConfig field or an option of ``base.model``'s builder; ``integer`` follows the
    field's type or the option's default. Unknown names, fixed fields, duplicates, names also fixed
    by the base config's ``model_options``, and bounds or choices the config rejects raise
    ConfigError. Model option values are checked by the builder when a trial is built.
    """
    from cs231n_tf import models

    fields = _field_types(base)
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
    best = [r for r in rows if _finite(r.get("objective"))][:top_k]
    if not best:
        raise ConfigError("no trial finished with a finite objective; nothing to refine around")
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
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _sort_key(row):
    """Best first: the objective in its direction, then the trial name; unfinished trials last."""
    value, sign = row.get("objective"), (-1.0 if row.get("direction", "maximize") == "maximize" else 1.0)
    return (0 if _finite(value) else 1, sign * value if _finite(value) else 0.0, row["trial"])


# ---- the study: samplers, storage, slots ------------------------------------------------------

def _seed_for(seed, round_index, slot, name):
    """A 32-bit seed fixed by the search seed, the round, the trial's slot and the parameter name."""
    return int(np.random.SeedSequence([int(seed), int(round_index), int(slot), zlib.crc32(name.encode())])
               .generate_state(1)[0])


def _slot_sampler(base):
    """``base`` (an Optuna sampler class) whose random draws depend only on (seed, round, slot, name).

    Optuna's samplers draw from one generator per process, so two processes sharing a study with
    the same seed would draw the same values for their trials. Reseeding per trial and parameter
    makes trial ``k`` of a round the same point however many processes run the search and in
    whatever order they finish, which is also what makes a search reproducible.
    """

    class SlotSeeded(base):
        def __init__(self, *args, seed=0, round_index=0, **kwargs):
            super().__init__(*args, seed=seed, **kwargs)
            self._search_seed, self._round = int(seed), int(round_index)

        def _reseed(self, trial, name):
            value = _seed_for(self._search_seed, self._round, trial.user_attrs.get("slot", trial.number), name)
            for rng in (getattr(self, "_rng", None), getattr(getattr(self, "_random_sampler", None), "_rng", None)):
                if rng is not None:
                    rng.rng.seed(value)

        def sample_independent(self, study, trial, param_name, param_distribution):
            self._reseed(trial, param_name)
            return super().sample_independent(study, trial, param_name, param_distribution)

    SlotSeeded.__name__ = SlotSeeded.__qualname__ = f"SlotSeeded{base.__name__}"
    return SlotSeeded


def grid_values(spec, points):
    """``points`` values of a numeric ``spec``: centres of equal cells (in log space for ``log``)."""
    if spec.scale == "choice":
        return list(spec.choices)
    to_axis, from_axis = (math.log, math.exp) if spec.scale == "log" else (float, float)
    lo, hi = to_axis(spec.low), to_axis(spec.high)
    width = (hi - lo) / points
    values = [from_axis(lo + (i + 0.5) * width) for i in range(points)]
    if spec.integer:
        values = sorted({int(math.floor(v + 0.5)) for v in values})
    return values


def _encode_choice(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)


def _decode_choice(spec, value):
    for choice in spec.choices:
        if _encode_choice(choice) == value:
            return choice
    return value


def make_sampler(name, specs, seed=0, round_index=0, grid_points=3):
    """The Optuna sampler of a search: ``random`` (the course's), ``grid`` or ``tpe``."""
    import optuna

    validation.one_of("sampler", name, SAMPLERS)
    if name == "random":
        return _slot_sampler(optuna.samplers.RandomSampler)(seed=seed, round_index=round_index)
    if name == "tpe":
        return _slot_sampler(optuna.samplers.TPESampler)(seed=seed, round_index=round_index, constant_liar=True)
    space = {s.name: [_encode_choice(v) for v in grid_values(s, grid_points)] for s in specs}
    return optuna.samplers.GridSampler(space, seed=seed)


def grid_size(specs, grid_points):
    return math.prod(len(grid_values(s, grid_points)) for s in specs)


def suggest_values(trial, specs):
    """The trial's value of every spec, through Optuna's ``suggest_*`` (log-uniform for ``log``)."""
    values = {}
    for spec in specs:
        if spec.scale == "choice":
            raw = trial.suggest_categorical(spec.name, [_encode_choice(c) for c in spec.choices])
            values[spec.name] = _decode_choice(spec, raw)
        elif spec.integer:
            values[spec.name] = trial.suggest_int(spec.name, math.ceil(spec.low), math.floor(spec.high),
                                                  log=spec.scale == "log")
        else:
            values[spec.name] = trial.suggest_float(spec.name, spec.low, spec.high, log=spec.scale == "log")
    return values


def sample_values(specs, seed, round_index, slot, sampler="random"):
    """The values trial ``slot`` of round ``round_index`` gets from the search's sampler (in memory)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if sampler == "grid":
        raise ConfigError("the grid's points are grid_values(spec, points) crossed; sample_values draws random/tpe")
    study = optuna.create_study(sampler=make_sampler(sampler, specs, seed, round_index))
    trial = study.ask()
    trial.set_user_attr("slot", slot)
    return suggest_values(trial, specs)


def _storage(url):
    """An Optuna RDB storage with heartbeats, so trials of a killed process are failed and retried."""
    import optuna

    kwargs = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 300}}
    # Two processes creating the same database's tables at once collide; take turns.
    with _creation_lock(url):
        return _open_storage(optuna, url, kwargs)


@contextlib.contextmanager
def _creation_lock(url):
    """An exclusive ``flock`` beside a local SQLite file while its schema is created (no-op otherwise)."""
    path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else None
    if not path or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        yield
        return
    import fcntl

    with open(path + ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _open_storage(optuna, url, kwargs):
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None),
                **kwargs)
        except Exception as exc:  # sqlalchemy's errors: a bad URL, a missing driver, no server
            if "already exists" in str(exc) and attempt < 2:  # another machine created the tables first
                time.sleep(1.0)
                continue
            raise ConfigError(f"storage {url!r} cannot be opened: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def _slots(trials):
    """``{trial number: slot}``: fresh trials take slots 0, 1, 2... in number order; retries keep theirs.

    Trial numbers are handed out atomically by the storage, so every process computes the same
    slots; a trial whose slot is past the budget is surplus (two processes asked at once) and is
    closed without training.
    """
    slots, fresh = {}, 0
    for t in sorted(trials, key=lambda t: t.number):
        if "slot" in t.user_attrs:
            slots[t.number] = t.user_attrs["slot"]
            if "failed_trial" not in t.system_attrs:
                fresh = max(fresh, t.user_attrs["slot"] + 1)
        elif "failed_trial" in t.system_attrs:
            slots[t.number] = slots.get(t.system_attrs["failed_trial"], t.system_attrs["failed_trial"])
        elif "grid_id" in t.system_attrs:
            slots[t.number] = t.system_attrs["grid_id"]
        else:
            slots[t.number] = fresh
            fresh += 1
    return slots


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover_dead_local_trials(study, log):
    """Fail and re-queue the running trials of processes on this machine that no longer exist.

    Optuna's heartbeat does the same for any machine, after ``GRACE_SECONDS``; this makes a search
    killed here resume at once (its trial continues from its last checkpoint).
    """
    import optuna

    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker") or {}
        if worker.get("host") == host and not _alive(int(worker.get("pid", 0))):
            try:
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            except (ValueError, RuntimeError):  # another process got there first
                continue
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)(study, study.trials[t.number])
            log(f"trial-{t.user_attrs.get('trial_index', t.number)}: its process {worker.get('pid')} is gone; re-queued")


class _Surplus(Exception):
    pass


@dataclasses.dataclass
class SearchResult:
    """``rows`` sorted best first (dicts: trial, round, values, status, objective and the metric
    columns), ``rounds`` the parameter specs of each round, ``trained`` the trials this call trained."""

    out: str
    rows: list
    rounds: list
    trained: list
    csv_path: str
    plot_path: str
    objective: str = "val_accuracy"
    direction: str = "maximize"
    storage: str = None

    @property
    def best(self):
        return self.rows[0]


def _search_record(base, specs, trials, seed, sampler, objective, task):
    return json.loads(json.dumps({"task": task, "base": base.to_json(), "params": [s.to_json() for s in specs],
                                  "trials": trials, "seed": seed, "sampler": sampler, "objective": objective}))


class _Search:
    """One call of :func:`run_search`: the studies of its rounds and the trials this process trains."""

    def __init__(self, task_cls, base, out, storage, study_name, record, sampler, seed, trials, grid_points,
                 objective, direction, data, log):
        self.task_cls, self.base, self.out, self.log = task_cls, base, out, log
        self.storage, self.study_name, self.record = storage, study_name, record
        self.sampler, self.seed, self.trials, self.grid_points = sampler, seed, trials, grid_points
        self.objective, self.direction = objective, direction
        self.data = {} if data is None else {task_cls.data_key(base): data}
        self.trained = []

    def study(self, round_index, specs):
        import optuna

        name = self.study_name if round_index == 0 else f"{self.study_name}-refine{round_index}"
        study = optuna.create_study(study_name=name, storage=self.storage, direction=self.direction,
                                    load_if_exists=True,
                                    sampler=make_sampler(self.sampler, specs, self.seed, round_index, self.grid_points))
        saved = study.user_attrs.get("search")
        if saved is None:
            study.set_user_attr("search", self.record)
            study.set_user_attr("params", [s.to_json() for s in specs])
        elif saved != self.record:
            differs = [k for k in self.record if saved.get(k) != self.record[k]]
            raise RunDirError(f"{self.out} holds a different search ({', '.join(differs)} differ); "
                              "re-run it with its original settings or choose another output directory")
        return study

    def _data(self, config):
        key = self.task_cls.data_key(config)
        if key not in self.data:
            self.data[key] = self.task_cls.load_data(config)
        return self.data[key]

    def objective_fn(self, study, round_index, specs):
        import optuna

        def objective(trial):
            slots, finished, running, _ = self.state(study)
            slot = slots[trial.number]
            others = {s for n, s in running.items() if n != trial.number}
            if slot >= self.trials or slot in finished or slot in others:
                trial.set_user_attr("surplus", True)
                study.stop()
                raise optuna.TrialPruned("surplus: every slot of this round is taken")
            index = round_index * self.trials + slot
            name = f"trial-{index:03d}"
            trial.set_user_attr("slot", slot)
            trial.set_user_attr("trial_index", f"{index:03d}")
            trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
            values = suggest_values(trial, specs)
            config = trial_config(self.base, specs, values)
            status, metrics = self.run_trial(config, os.path.join(self.out, name), name)
            trial.set_user_attr("status", status)
            if status == "diverged":
                trial.set_user_attr("metrics", {"step": metrics.get("step")})
                raise optuna.TrialPruned(f"diverged at step {metrics.get('step')}")
            recorded = set(METRIC_SOURCES.values()) | set(self.task_cls.objectives)
            trial.set_user_attr("metrics", {k: metrics[k] for k in recorded if k in metrics})
            value = metrics.get(self.objective)
            if not _finite(value):
                raise ConfigError(f"{name}: the task reported no finite {self.objective} ({value!r})")
            return float(value)

        return objective

    def run_trial(self, config, trial_dir, name):
        """Train (or resume, or read back) one trial's run directory; returns ``(status, metrics)``."""
        import tensorflow as tf

        from cs231n_tf.engine import rundir
        from cs231n_tf.engine.state import CHECKPOINT_DIR

        metrics_path = os.path.join(trial_dir, config_lib.METRICS_FILE)
        diverged_path = os.path.join(trial_dir, DIVERGED_FILE)
        if os.path.isfile(os.path.join(trial_dir, config_lib.CONFIG_FILE)):
            saved = rundir.read_config(trial_dir).get("train")
            if saved != json.loads(json.dumps(config.to_json())):
                raise RunDirError(f"{trial_dir} was trained with other settings than this search gives it; "
                                  "choose another output directory")
        if os.path.isfile(metrics_path):
            return "done", read_json(metrics_path)
        if os.path.isfile(diverged_path):
            return "diverged", read_json(diverged_path)
        resume = tf.train.latest_checkpoint(os.path.join(trial_dir, CHECKPOINT_DIR)) is not None
        self.log(f"{name}: {'resuming' if resume else 'training'}")
        tf.keras.backend.clear_session()
        self.trained.append(name)
        try:
            metrics = self.task_cls.run_trial(config, trial_dir, resume=resume, data=self._data(config),
                                              log=lambda m: self.log(f"{name}: {m}"))
        except NonFiniteLossError as exc:
            record = {"step": exc.step, "message": str(exc)}
            atomic_write_json(diverged_path, record)
            self.log(f"{name}: diverged at step {exc.step}")
            return "diverged", record
        return "done", metrics

    def state(self, study):
        """``(slots, finished, running, waiting)`` of the round's study: ``finished`` maps slot ->
        COMPLETE/PRUNED trial, ``running`` trial number -> slot, ``waiting`` counts queued trials."""
        import optuna

        trials = study.get_trials(deepcopy=False)
        slots = _slots(trials)
        States = optuna.trial.TrialState
        finished = {}
        for t in trials:
            if t.state in (States.COMPLETE, States.PRUNED) and not t.user_attrs.get("surplus") \
                    and slots[t.number] < self.trials:
                finished.setdefault(slots[t.number], t)
        running = {t.number: slots[t.number] for t in trials if t.state == States.RUNNING}
        waiting = sum(t.state == States.WAITING for t in trials)
        return slots, finished, running, waiting

    def _requeue_failed(self, study):
        """Queue again the failed trials whose slot nothing else fills (a crash, a bug since fixed)."""
        import optuna

        slots, finished, running, _ = self.state(study)
        queued = {slots[t.number] for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))}
        taken = set(finished) | set(running.values()) | queued
        for t in sorted(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)),
                        key=lambda t: -t.number):
            slot = slots[t.number]
            if slot < self.trials and slot not in taken:
                optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)(study, t)
                taken.add(slot)

    def _open(self, study):
        """Whether this process has work in the round: a queued trial or a slot nobody fills."""
        _, finished, running, waiting = self.state(study)
        return waiting > 0 or len(set(finished) | set(running.values())) < self.trials

    def run_round(self, round_index, specs, study=None):
        """Work on the round until each of its slots has a finished trial or one running elsewhere."""
        import optuna

        study = study or self.study(round_index, specs)
        objective = self.objective_fn(study, round_index, specs)
        while True:
            _recover_dead_local_trials(study, self.log)
            optuna.storages.fail_stale_trials(study)
            self._requeue_failed(study)
            if not self._open(study):
                return study
            study.optimize(objective, callbacks=[self._stop_when_full])

    def _stop_when_full(self, study, trial):
        if not self._open(study):
            study.stop()

    def wait_for_round(self, study):
        """Block until the trials other processes run in this round finish (refine needs them all)."""
        import optuna

        announced = False
        while len(self.state(study)[1]) < self.trials:
            if not announced:
                missing = self.trials - len(self.state(study)[1])
                self.log(f"waiting for {missing} trial(s) running in another process")
                announced = True
            time.sleep(POLL_SECONDS)
            _recover_dead_local_trials(study, self.log)
            optuna.storages.fail_stale_trials(study)
            self._requeue_failed(study)
            if self._open(study):
                return False
        return True

    def rows(self, study, round_index, specs):
        rows = []
        for slot, t in sorted(self.state(study)[1].items()):
            index = round_index * self.trials + slot
            metrics = t.user_attrs.get("metrics", {})
            values = {s.name: (_decode_choice(s, t.params[s.name]) if s.scale == "choice" else t.params[s.name])
                      for s in specs}
            row = {"trial": f"trial-{index:03d}", "round": round_index, "values": values,
                   "status": t.user_attrs.get("status", "done"), "number": t.number,
                   "objective": t.value if t.state.name == "COMPLETE" else float("nan"),
                   "direction": self.direction}
            for column, key in METRIC_SOURCES.items():
                value = metrics.get(key)
                row[column] = float("nan") if value is None else value
            if row["status"] == "diverged":
                row["steps"] = metrics.get("step")
            rows.append(row)
        return rows


def run_search(base, specs, trials=None, out=None, seed=0, refine_top=0, data=None, log=print, *,
               sampler="random", grid_points=3, objective=None, storage=None, study_name="search",
               task="classification"):
    """Run (or join, or continue) a hyperparameter search on an Optuna study; returns a :class:`SearchResult`.

    Args:
      base: the task's config every trial starts from (for classification a :class:`TrainConfig`;
        its ``seed`` seeds every trial's initialisation, so trials differ only in their values).
      specs: :class:`ParamSpec` list (from :func:`parse_param`; resolved here).
      trials: trials per round (default 8; for ``grid``, the number of grid points).
      out: the search directory (trial run directories, ``results.csv``, ``search.png``, and the
        study's SQLite file ``study.db`` unless ``storage`` is given).
      seed: seeds the sampler (the same seed gives the same trials, whatever the number of processes).
      refine_top: if > 0, a second round of ``trials`` trials over ranges narrowed around the
        best ``refine_top`` trials of the first (:func:`refine`).
      data: already loaded data for ``base`` (optional).
      log: progress messages (``None``: silent).
      sampler: ``random`` (log-uniform for log-scale parameters: the course's), ``grid`` (the
        cross product of ``grid_points`` values per numeric range and every choice) or ``tpe``.
      objective: the metric to optimise, one of the task's ``objectives`` (its direction comes
        from there); default the task's ``default_objective`` (classification: ``val_accuracy``).
      storage: an Optuna RDB URL (``sqlite:///path``, ``postgresql://...``) shared by every
        process working on the search; default ``sqlite:///OUT/study.db``.
      study_name: the study's name in ``storage`` (rounds after the first add ``-refineN``).
      task: the engine task whose runs are the trials (:data:`cs231n_tf.tasks.TASKS`).
    """
    import warnings

    import optuna

    with warnings.catch_warnings():
        # Heartbeats, retries and the trial-failing helper are marked experimental by Optuna.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _run_search(base, specs, trials, out, seed, refine_top, data, log, sampler, grid_points, objective,
                           storage, study_name, task)


def _run_search(base, specs, trials, out, seed, refine_top, data, log, sampler, grid_points, objective, storage,
                study_name, task):
    import optuna

    from cs231n_tf.tasks import get_task_class

    log = log or (lambda _: None)
    task_cls = get_task_class(task)
    if not hasattr(task_cls, "run_trial"):
        raise ConfigError(f"task {task!r} cannot be searched (it has no run_trial)")
    base = base.validate()
    if out is None:
        raise ConfigError("out is required: the search directory that holds the trials and results.csv")
    validation.one_of("sampler", sampler, SAMPLERS)
    grid_points = validation.positive_int("grid_points", grid_points)
    objective = objective or task_cls.default_objective
    validation.one_of("objective", objective, tuple(task_cls.objectives))
    direction = task_cls.objectives[objective]
    refine_top = validation.positive_int("refine", refine_top, allow_zero=True)
    seed = validation.positive_int("seed", seed, allow_zero=True)
    specs = resolve_params(specs, base)
    if sampler == "grid":
        size = grid_size(specs, grid_points)
        if trials is not None and validation.positive_int("trials", trials) != size:
            raise ConfigError(f"a grid of {' x '.join(str(len(grid_values(s, grid_points))) for s in specs)} "
                              f"has {size} points, not {trials} trials; leave trials unset or change grid_points")
        trials = size
        if refine_top:
            raise ConfigError("refine works with the random and tpe samplers, not grid")
    trials = validation.positive_int("trials", 8 if trials is None else trials)
    if refine_top > trials:
        raise ConfigError(f"refine {refine_top} is more than the {trials} trials of the first round")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create the search directory {out}: {exc.strerror}") from None
    url = storage or f"sqlite:///{os.path.abspath(os.path.join(out, STUDY_FILE))}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    record = _search_record(base, specs, trials, seed, sampler, objective, task)
    search = _Search(task_cls, base, out, _storage(url), study_name, record, sampler, seed, trials, grid_points,
                     objective, direction, data, log)
    rounds, rows = [specs], []
    study = search.study(0, specs)
    refined = study.user_attrs.get("refined")
    if refined is not None and refine_top and refined["top"] != refine_top:
        raise RunDirError(f"{out}: its second round was refined around the best {refined['top']} trials, "
                          f"not {refine_top}; re-run with refine_top={refined['top']} or choose another output directory")
    study = search.run_round(0, specs, study)
    if refine_top or refined is not None:
        while not search.wait_for_round(study):
            study = search.run_round(0, specs)
        round0 = sorted(search.rows(study, 0, specs), key=_sort_key)
        if study.user_attrs.get("refined") is None:
            narrowed = refine(specs, round0, refine_top)
            study.set_user_attr("refined", {"top": refine_top, "params": [s.to_json() for s in narrowed]})
            log("refined ranges: " + ", ".join(str(s) for s in narrowed))
        narrowed = [ParamSpec.from_json(p) for p in study.user_attrs["refined"]["params"]]
        rounds.append(narrowed)
        rows += round0
        study1 = search.run_round(1, narrowed)
        rows += search.rows(study1, 1, narrowed)
    else:
        rows += search.rows(study, 0, specs)
    rows.sort(key=_sort_key)
    atomic_write_json(os.path.join(out, SEARCH_FILE), dict(record, storage=url, study=study_name,
                                                           rounds=[[s.to_json() for s in r] for r in rounds],
                                                           refine=refine_top or None))
    csv_path = os.path.join(out, RESULTS_FILE)
    write_csv(rows, specs, csv_path)
    plot_path = os.path.join(out, PLOT_FILE)
    plot_search(rows, rounds, plot_path, objective)
    return SearchResult(out=out, rows=rows, rounds=rounds, trained=search.trained, csv_path=csv_path,
                        plot_path=plot_path, objective=objective, direction=direction, storage=url)

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
    writer.writerow(["rank", "trial", "round", "status", *[s.name for s in specs], *METRIC_COLUMNS, "objective"])
    for rank, row in enumerate(rows, start=1):
        writer.writerow([rank, row["trial"], row["round"], row["status"],
                         *[_cell(row["values"][s.name], 10) for s in specs],
                         *[_cell(row[k], 10) for k in METRIC_COLUMNS], _cell(row["objective"], 10)])
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


def plot_search(rows, rounds, path, objective="val_accuracy"):
    """The objective against each numeric parameter (log axis for log-scale ones), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = [s for s in rounds[0] if s.numeric]
    fig, axes = plt.subplots(1, max(len(specs), 1), figsize=(4 * max(len(specs), 1), 3.5), squeeze=False)
    for ax, spec in zip(axes[0], specs):
        for round_index, marker in zip(range(len(rounds)), ("o", "^")):
            points = [(r["values"][spec.name], r["objective"]) for r in rows
                      if r["round"] == round_index and _finite(r["objective"])]
            if points:
                xs, ys = zip(*points)
                ax.scatter(xs, ys, marker=marker, alpha=0.8, label=f"round {round_index + 1}")
        finished = [r for r in rows if _finite(r["objective"])]
        if finished:
            ax.scatter([finished[0]["values"][spec.name]], [finished[0]["objective"]], marker="*", s=200,
                       color="gold", edgecolor="k", zorder=3, label="best")
        if spec.scale == "log":
            ax.set_xscale("log")
        ax.set_xlabel(spec.name)
        ax.set_ylabel(objective)
        ax.legend(fontsize=7)
    if not specs:
        axes[0][0].set_axis_off()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
