"""Hooks: what a run does besides the step, without a second loop.

A hook may act in the compiled step (``after_step``, cross-replica context, after every optimizer
update), on the host after each compiled call (``after_execution``, with the last step's values)
and at epoch ends. Setting ``engine.stop_training = True`` ends the run after the current call.
Variables a hook creates in ``build`` (inside the strategy's scope) and lists in
``checkpoint_objects`` are saved with the run, so a resumed run keeps them.
"""

import math

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError


class Hook:
    def build(self, engine):
        """Create variables (under the strategy's scope)."""

    def checkpoint_objects(self):
        return {}

    def on_train_begin(self, engine):
        pass

    def after_step(self, engine):
        """In the graph, after every step (cross-replica context)."""

    def after_execution(self, engine, logs):
        """On the host after each compiled call; ``logs`` holds the last step's values (floats)."""

    def on_epoch_end(self, engine, record):
        pass

    def on_train_end(self, engine, metrics):
        pass


class StopAtMetric(Hook):
    """Stop as soon as the last step's ``key`` reaches ``target`` (``mode`` ``max``) or falls to it (``min``)."""

    def __init__(self, key, target, mode="max"):
        if mode not in ("max", "min"):
            raise ConfigError(f"mode must be 'max' or 'min', got {mode!r}")
        self.key, self.target, self.mode = key, float(target), mode
        self.reached = False

    def after_execution(self, engine, logs):
        value = logs.get(self.key)
        if value is None:
            raise ConfigError(f"the step returns no {self.key!r}; it returns {', '.join(sorted(logs))}")
        if (value >= self.target) if self.mode == "max" else (value <= self.target):
            self.reached = True
            engine.stop_training = True


class EarlyStopping(Hook):
    """Stop when the epoch record's ``key`` (e.g. ``val_loss``) has not improved for ``patience`` epochs."""

    def __init__(self, key="val_loss", patience=3, mode="min", min_delta=0.0):
        if mode not in ("max", "min"):
            raise ConfigError(f"mode must be 'max' or 'min', got {mode!r}")
        patience = validation.positive_int("patience", patience)
        self.key, self.patience, self.mode, self.min_delta = key, patience, mode, float(min_delta)
        self.best, self.waited = math.inf if mode == "min" else -math.inf, 0

    def on_epoch_end(self, engine, record):
        value = record.get(self.key)
        if value is None or not math.isfinite(value):
            return
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better:
            self.best, self.waited = value, 0
        else:
            self.waited += 1
            if self.waited >= self.patience:
                engine.stop_training = True


class WeightAverageHook(Hook):
    """Keeps a :class:`~cs231n_tf.train.ensemble.WeightAverager`-style running average in the step.

    ``update`` is called in the graph after every step from ``start_step`` on; the average's
    variables are checkpointed with the run.
    """

    def __init__(self, averager_factory, start_step=0):
        self.factory = averager_factory
        self.start_step = int(start_step)
        self.averager = None

    def build(self, engine):
        self.averager = self.factory(engine)

    def checkpoint_objects(self):
        if self.averager is None:
            return {}
        return {"weight_average": {"averages": list(self.averager.averages), "count": self.averager.count}}

    def after_step(self, engine):
        started = engine.state.step > self.start_step

        def update():
            self.averager.update()
            return tf.constant(True)

        tf.cond(started, update, lambda: tf.constant(False))
