"""The run directory layer: every run says which task made it.

A run directory holds ``config.json`` (``"task"``: the task's name, and the task's own config),
``checkpoints/``, ``logs/train`` and ``logs/validation`` (TensorBoard), ``metrics.json`` and the
exports with their ``*.report.json``. Creating, reading and checking it happens here, so that a
directory that cannot be created or a file that is not a run's is reported the same way for
every task.
"""

import os

from cs231n_tf.engine.state import CHECKPOINT_DIR, checkpoint_paths
from cs231n_tf.errors import RunDirError
from cs231n_tf.fileio import atomic_write_json, read_json


def config_from_json(cls, obj, what="config"):
    """The config dataclass ``cls`` from a run's JSON object; unknown fields raise RunDirError.

    Fields added later have defaults, so older runs still load; a field this version does not know
    means the run came from elsewhere and is refused rather than silently dropped.
    """
    import dataclasses

    if not isinstance(obj, dict):
        raise RunDirError(f"a {what} must be a JSON object, got {type(obj).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(obj) - known)
    if unknown:
        raise RunDirError(f"{what} has unknown field(s) {', '.join(unknown)}")
    return cls(**obj)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
LOGS_DIR = "logs"


def create(run_dir):
    """Make ``run_dir`` (and its parents); an impossible path raises :class:`RunDirError`."""
    run_dir = os.path.abspath(run_dir)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise RunDirError(f"run directory {run_dir!r} exists and is not a directory")
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create run directory {run_dir!r}: {exc.strerror or exc}") from None
    if not os.access(run_dir, os.W_OK):
        raise RunDirError(f"run directory {run_dir!r} is not writable")
    return run_dir


def has_checkpoint(run_dir):
    return bool(checkpoint_paths(os.path.join(run_dir, CHECKPOINT_DIR)))


def write_config(run_dir, task_name, body):
    """``config.json``: ``{"task": task_name, **body}``, written atomically."""
    atomic_write_json(os.path.join(run_dir, CONFIG_FILE), {"task": task_name, **body})


def read_config(run_dir):
    """The run's ``config.json`` as a dict; missing or unreadable runs raise :class:`RunDirError`.

    Runs written before tasks were recorded are classification runs.
    """
    if not os.path.isdir(run_dir):
        raise RunDirError(f"run directory {run_dir!r} does not exist")
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise RunDirError(f"{run_dir!r} is not a run directory: it has no {CONFIG_FILE}")
    try:
        obj = read_json(path)
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise RunDirError(f"{path} is corrupt (not a JSON object)")
    obj.setdefault("task", "classification")
    return obj


def task_name(run_dir):
    return read_config(run_dir)["task"]


def require_task(run_dir, expected):
    """:class:`RunDirError` unless ``run_dir`` was made by the task ``expected`` (a name or names)."""
    names = (expected,) if isinstance(expected, str) else tuple(expected)
    found = task_name(run_dir)
    if found not in names:
        raise RunDirError(f"{run_dir!r} is a {found!r} run; this needs a {' or '.join(map(repr, names))} run")
    return found


def read_task_config(run_dir, task, parse, what=None):
    """``parse(config_json)`` for a run of ``task``: the one way tasks read their run's config.

    ``parse`` builds whatever the task keeps (its config dataclass, a vocabulary, shapes) from the
    ``config.json`` object; a run of another task, or a config missing what ``parse`` reads
    (``KeyError``/``TypeError``/``ValueError``), raises :class:`RunDirError` naming the file.
    """
    obj = read_config(run_dir)
    require_task(run_dir, task)
    try:
        return parse(obj)
    except RunDirError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"{os.path.join(run_dir, CONFIG_FILE)} is not a complete {what or task} config "
                          f"({type(exc).__name__}: {exc})") from None


def latest_checkpoint(run_dir, checkpoint=None):
    """``checkpoint`` if given, else the run's newest checkpoint; none at all raises :class:`RunDirError`."""
    if checkpoint is not None:
        return checkpoint
    import tensorflow as tf

    found = tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR))
    if found is None:
        raise RunDirError(f"{run_dir!r} has no checkpoint in {CHECKPOINT_DIR}/")
    return found


def write_metrics(run_dir, metrics):
    atomic_write_json(os.path.join(run_dir, METRICS_FILE), metrics)
