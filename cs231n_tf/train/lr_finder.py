"""The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017).

CS231n lecture 6 picks the learning rate by watching the loss: too low and it barely moves, too
high and it explodes. The range test does this in one short run: the learning rate grows
exponentially from ``min_lr`` to ``max_lr`` over ``steps`` training steps, one mini-batch each,
and the (smoothed) loss is recorded against it. The loss first stays flat, then falls fastest, then
blows up; a good learning rate is where it falls fastest (steepest descent of the smoothed loss in
``log(lr)``), or a tenth of the learning rate at the loss minimum.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import Engine, Hook
from cs231n_tf.errors import ConfigError, NonFiniteLossError
from cs231n_tf.tasks.classification import ClassificationTask
from cs231n_tf.fileio import atomic_write_bytes
from cs231n_tf.train import trainer as trainer_lib
from cs231n_tf.train.config import TrainConfig
from cs231n_tf.train.config import load_data
from cs231n_tf.train.sanity import build_model

METHODS = ("steepest", "min/10")


@dataclasses.dataclass
class LRRangeResult:
    """Outcome of :func:`lr_range_test`. Arrays have one entry per step taken.

    ``lrs`` (S,) learning rates (increasing geometrically), ``losses`` (S,) raw mini-batch losses,
    ``smoothed`` (S,) bias-corrected exponential moving average of the losses, ``stopped_early``
    whether the sweep stopped on divergence before ``max_lr``. ``suggestion`` is the lr at the
    steepest descent (``steepest_lr``) or ``min_loss_lr / 10``, as ``method`` asked.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    steepest_lr: float
    min_loss_lr: float
    suggestion: float
    method: str
    stopped_early: bool
    plot_path: str = None

    def __str__(self):
        last = f"{self.lrs[-1]:.3g}"
        end = f"stopped on divergence at lr {last}" if self.stopped_early else f"reached lr {last}"
        return (f"lr range test: {len(self.lrs)} steps, {end}; steepest descent at lr {self.steepest_lr:.3g}, "
                f"minimum loss at lr {self.min_loss_lr:.3g}; suggested lr {self.suggestion:.3g} ({self.method})")


def lr_schedule(min_lr, max_lr, steps):
    """The sweep: ``steps`` learning rates from ``min_lr`` to ``max_lr``, equally spaced in log."""
    return np.geomspace(min_lr, max_lr, steps)


def suggest(lrs, smoothed, skip=0.1):
    """``(steepest_lr, min_loss_lr)`` from a sweep.

    The steepest descent is the most negative ``d smoothed / d log(lr)`` up to the loss minimum,
    ignoring the first ``skip`` fraction of points (where the moving average has little history).
    """
    lrs, smoothed = np.asarray(lrs, np.float64), np.asarray(smoothed, np.float64)
    finite = np.isfinite(smoothed)
    lrs, smoothed = lrs[finite], smoothed[finite]
    if len(lrs) < 3:
        raise ConfigError(f"the sweep has only {len(lrs)} finite points; lower min_lr or raise steps")
    lowest = int(np.argmin(smoothed))
    start = min(int(skip * len(lrs)), max(lowest - 2, 0))
    end = max(lowest + 1, start + 3)
    slope = np.gradient(smoothed[start:end], np.log(lrs[start:end]))
    return float(lrs[start + int(np.argmin(slope))]), float(lrs[lowest])


class _Table(tf.keras.optimizers.schedules.LearningRateSchedule):
    """The sweep's rates as a schedule of the optimizer's step counter (the last rate after the end)."""

    def __init__(self, rates):
        self.rates = np.asarray(rates, np.float32)

    def __call__(self, step):
        index = tf.minimum(tf.cast(step, tf.int64), len(self.rates) - 1)
        return tf.gather(tf.constant(self.rates), index)

    def get_config(self):
        return {"rates": self.rates.tolist()}


class _Sweep(Hook):
    """Records every step's loss and its bias-corrected moving average; stops on divergence."""

    def __init__(self, beta, diverge_factor):
        self.beta, self.diverge_factor = beta, diverge_factor
        self.losses, self.smoothed, self.average, self.best = [], [], 0.0, math.inf

    def record(self, loss):
        self.losses.append(loss)
        self.average = self.beta * self.average + (1 - self.beta) * loss
        self.smoothed.append(self.average / (1 - self.beta ** len(self.losses)))
        return self.smoothed[-1]

    def after_execution(self, engine, logs):
        smoothed = self.record(logs["loss"])
        if not math.isfinite(smoothed) or smoothed > self.diverge_factor * self.best:
            engine.stop_training = True
        self.best = min(self.best, smoothed)


def plot(result, path, title=None):
    """Loss (raw and smoothed) against learning rate on a log axis, saved as a PNG at ``path``."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses, color="0.75", lw=1, label="loss")
    ax.plot(result.lrs, result.smoothed, color="C0", lw=2, label="smoothed")
    ax.axvline(result.steepest_lr, color="C2", ls="--", label=f"steepest {result.steepest_lr:.2g}")
    ax.axvline(result.min_loss_lr / 10, color="C3", ls=":", label=f"min/10 {result.min_loss_lr / 10:.2g}")
    ax.set_xscale("log")
    top = np.nanmax(result.smoothed[: max(np.argmin(result.smoothed), 1) + 1]) * 1.5
    finite = result.losses[np.isfinite(result.losses)]
    ax.set_ylim(max(0.0, float(finite.min()) * 0.9) if len(finite) else 0.0, top)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title or "learning-rate range test")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def lr_range_test(config=None, min_lr=1e-6, max_lr=1.0, steps=100, *, data=None, beta=0.9, diverge_factor=4.0,
                  method="steepest", plot_path=None, log=print):
    """Sweep the learning rate exponentially within one run and suggest one (Smith 2017).

    Args:
      config: :class:`TrainConfig`; its model, options, init, seed, optimizer, clipping, batch
        size and penalty are used (its ``lr`` and schedule are replaced by the sweep). One device,
        float32, no augmentation.
      min_lr, max_lr, steps: the sweep, ``steps`` learning rates geometrically spaced.
      data: a loaded ``DataSplits`` (default: load ``config.dataset``).
      beta: smoothing of the loss (exponential moving average, bias-corrected).
      diverge_factor: stop when the smoothed loss exceeds this multiple of its minimum so far, or
        when a loss is NaN/Inf.
      method: ``"steepest"`` or ``"min/10"``, which of the two estimates is ``suggestion``.
      plot_path: write a PNG of loss vs lr there.
      log: called with a one-line summary (``None``: silent).

    Returns:
      :class:`LRRangeResult`.
    """
    config = (config or TrainConfig()).validate()
    if not (isinstance(min_lr, (int, float)) and isinstance(max_lr, (int, float)) and 0 < min_lr < max_lr):
        raise ConfigError(f"need 0 < min_lr < max_lr, got min_lr={min_lr!r}, max_lr={max_lr!r}")
    steps = validation.int_in("steps", steps, 3)
    if not 0 <= beta < 1:
        raise ConfigError(f"beta must be in [0, 1), got {beta!r}")
    if not diverge_factor > 1:
        raise ConfigError(f"diverge_factor must be > 1, got {diverge_factor!r}")
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    data = data or load_data(config)
    per_epoch = data.steps_per_epoch(config.batch_size)
    if per_epoch == 0:
        raise ConfigError(f"batch_size {config.batch_size} is larger than the {data.info.num_train} training examples")
    model = build_model(config, data)
    schedule = lr_schedule(min_lr, max_lr, steps)
    optimizer = trainer_lib.make_optimizer(config.optimizer, _Table(schedule), config.clip_norm, config.clip_value)
    sweep = _Sweep(beta, diverge_factor)
    run = dataclasses.replace(config, epochs=-(-steps // per_epoch), max_steps=steps, steps_per_execution=1,
                              mixed_precision=None, strategy="default", augment=[], lr_schedule="constant",
                              warmup_epochs=0.0, log_every=steps + 1)
    task = ClassificationTask(run, data=data, model=model, optimizer=optimizer, evaluate=False)
    try:
        Engine(task, None, log=None, hooks=[sweep], progress=False).run()
    except NonFiniteLossError:
        sweep.record(float("nan"))  # the step that diverged ends the sweep
    losses, smoothed = sweep.losses, sweep.smoothed
    stopped = len(losses) < steps
    taken = len(losses)
    steepest, lowest = suggest(schedule[:taken], smoothed)
    result = LRRangeResult(lrs=schedule[:taken], losses=np.asarray(losses), smoothed=np.asarray(smoothed),
                           steepest_lr=steepest, min_loss_lr=lowest,
                           suggestion=steepest if method == "steepest" else lowest / 10, method=method,
                           stopped_early=stopped, plot_path=plot_path)
    if plot_path:
        plot(result, plot_path, title=f"lr range test: {config.model}, {config.optimizer}, batch {config.batch_size}")
    if log:
        log(str(result))
    return result
