"""The task interface: what one kind of training is, in a screenful (keras-io's ``train_step`` idiom).

A task owns its configuration, data, models and optimizers; the :class:`~cs231n_tf.engine.Engine`
owns the loop around them. The life of a task inside :meth:`Engine.run`:

1. ``prepare()`` -- load data (no TensorFlow variables yet); ``steps_per_epoch()`` is known after.
2. ``build(ctx)`` -- under the strategy's scope: create models, optimizers (each through
   ``ctx.optimizer(...)``) and metrics.
3. ``train_step(batch, ctx) -> dict`` -- one replica's step on its part of a global batch. It
   updates the task's streaming metrics and returns scalars; the engine sums the replicas' values
   (use ``ctx.mean`` for losses, so the sum is the global-batch mean), checks every one for
   NaN/Inf and hands them to hooks.
4. ``eval_step(batch, ctx) -> dict`` -- updates the evaluation metrics; whatever it returns is
   gathered on the host and passed to ``evaluate_end(outputs, split) -> dict`` (BLEU, mAP).
5. ``serving_module()`` -- a ``tf.Module`` with a ``serve`` ``tf.function`` for export.

Everything returned by ``models()``, ``optimizers()``, ``metrics()`` and ``eval_metrics()`` is
checkpointed, and the metric accumulators survive a resume: an epoch's train loss covers the whole
epoch even when the run was killed half-way through it.
"""

import numpy as np
import tensorflow as tf


class Task:
    """Base class of the engine's tasks; see the module docstring for the protocol.

    Subclasses set ``name`` (recorded in the run's ``config.json``) and implement at least
    ``prepare``, ``steps_per_epoch``, ``train_dataset``, ``build`` and ``train_step``.
    ``config`` carries the engine settings as attributes (:class:`~cs231n_tf.engine.EngineConfig`'s
    fields: ``epochs``, ``batch_size``, ``seed``, ``strategy``, ...).
    """

    name = None
    # Evaluated at the end of a run, with the prefix their metrics get in metrics.json.
    final_splits = (("test", "test_"), ("validation", "val_"))
    epoch_split = "validation"

    def __init__(self, config):
        self.config = config

    # ---- data ---------------------------------------------------------------------------------

    def prepare(self):
        """Load the data. Runs before any variable exists (multi-worker strategies need that)."""

    def steps_per_epoch(self):
        raise NotImplementedError

    @property
    def global_batch_size(self):
        return int(self.config.batch_size)

    def train_dataset(self, epoch, skip_batches=0):
        """Global batches of epoch ``epoch``, the same on every call (exact resume), from ``skip_batches`` on."""
        raise NotImplementedError

    def eval_dataset(self, split):
        """Batches of ``split`` (``"validation"``, ``"test"``...), or ``None`` when the task has none."""
        return None

    # ---- models and steps ---------------------------------------------------------------------

    def build(self, ctx):
        raise NotImplementedError

    def models(self):
        """``{checkpoint name: tf.keras.Model}``."""
        return {}

    def optimizers(self):
        """``{checkpoint name: optimizer}``."""
        return {}

    def metrics(self):
        """Streaming training metrics (Keras metrics created in ``build``); reset every epoch."""
        return []

    def eval_metrics(self):
        """Streaming evaluation metrics; reset before every evaluation."""
        return []

    def train_step(self, batch, ctx):
        raise NotImplementedError

    def eval_step(self, batch, ctx):
        return {}

    def evaluate_end(self, outputs, split):
        """Host-side metrics from the gathered ``eval_step`` outputs (``{key: np.ndarray}``)."""
        return {}

    # ---- reporting and export -----------------------------------------------------------------

    def run_config(self):
        """The JSON written to the run's ``config.json`` (beside ``"task": name``)."""
        to_json = getattr(self.config, "to_json", None)
        return {"config": to_json() if to_json else dict(vars(self.config))}

    def log_scalars(self, step):
        """Extra TensorBoard scalars at a log point: by default every optimizer's learning rate."""
        out = {}
        for name, optimizer in self.optimizers().items():
            inner = getattr(optimizer, "inner_optimizer", optimizer)
            lr = getattr(inner, "learning_rate", None)
            if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
                lr = lr(tf.constant(max(step - 1, 0), tf.int64))
            if lr is not None:
                key = "learning_rate" if len(self.optimizers()) == 1 else f"{name}/learning_rate"
                out[key] = float(tf.convert_to_tensor(lr).numpy())
        return out

    def describe(self):
        """One line for the start of a run."""
        return f"training task {self.name}"

    def summary(self, metrics):
        """Extra entries for ``metrics.json`` at the end of a run."""
        params = sum(int(np.prod(v.shape)) for m in self.models().values() for v in m.trainable_variables)
        return {"model_params": params}

    def serving_module(self):
        raise NotImplementedError(f"task {self.name!r} has no serving module")
