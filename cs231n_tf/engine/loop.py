"""The package's only training loop: any :class:`~cs231n_tf.engine.Task` under any ``tf.distribute`` strategy.

What it does for every task:

- The step is a ``tf.function``; ``steps_per_execution`` runs several steps per call (a
  ``tf.while_loop`` in the graph, the step itself traced once), so Python is off the hot path;
  XLA compiles the replica step with ``jit_compile``.
- Mixed precision: the task builds under the policy and wraps its optimizers with
  ``ctx.optimizer`` (dynamic loss scaling for ``mixed_float16``, one scale per optimizer).
- Exact resume: the checkpoint holds the task's models, optimizers and metric accumulators, the
  random generators of every random layer, the step, the epoch and the position inside it; a task
  whose epoch order depends only on ``(seed, epoch)`` then sees the batches an uninterrupted run
  would. A corrupt checkpoint is skipped for the newest one that reads.
- A NaN/Inf guard in the graph records the first step with a non-finite returned value; the host
  checks it before every checkpoint and log, stops, keeps the last good checkpoint and raises
  :class:`~cs231n_tf.errors.NonFiniteLossError`.
- TensorBoard scalars every ``log_every`` steps (``logs/train``, ``logs/validation``), a progress
  bar on a terminal, ``metrics.json`` written atomically, hooks for everything else.

``run_dir=None`` trains in memory (no checkpoints, logs or files): what the in-process tools
(sanity checks, the learning-rate range test, compression fine-tuning) use.
"""

import collections
import dataclasses
import os
import shutil
import time

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.engine.context import StepContext
from cs231n_tf.engine.reporter import Reporter
from cs231n_tf.engine.state import CHECKPOINT_DIR, CheckpointKeeper, RunState, check_finite
from cs231n_tf.errors import ConfigError, RunDirError
from cs231n_tf.train.config import _flag
from cs231n_tf.train.strategies import STRATEGIES, is_chief, make_strategy, worker_id

MIXED_PRECISION = (None, "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class EngineConfig:
    """The settings the engine reads from a task's config (any object with these attributes).

    ``batch_size`` is the global batch, split over the replicas; ``checkpoint_every`` is in steps
    (0: at epoch ends only); ``max_steps`` stops early (resumable); ``log_every`` in steps.
    """

    epochs: int = 1
    batch_size: int = 64
    seed: int = 0
    max_steps: int = None
    steps_per_execution: int = 1
    xla: bool = False
    mixed_precision: str = None
    strategy: str = "default"
    checkpoint_every: int = 0
    keep_checkpoints: int = 3
    log_every: int = 50
    deterministic: bool = False

    @classmethod
    def of(cls, config):
        return cls(**{f.name: getattr(config, f.name, f.default) for f in dataclasses.fields(cls)})

    def validate(self):
        validation.positive_int("epochs", self.epochs)
        validation.positive_int("batch_size", self.batch_size)
        validation.positive_int("seed", self.seed, allow_zero=True)
        validation.optional_positive_int("max_steps", self.max_steps)
        validation.positive_int("steps_per_execution", self.steps_per_execution)
        validation.positive_int("checkpoint_every", self.checkpoint_every, allow_zero=True)
        validation.positive_int("keep_checkpoints", self.keep_checkpoints)
        validation.positive_int("log_every", self.log_every)
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(f"mixed_precision must be one of mixed_float16, mixed_bfloat16 (or none), "
                              f"got {self.mixed_precision!r}")
        return self


_PERF, _RUN = "performance and devices", "run directory and checkpoints"


@dataclasses.dataclass
class EngineFlags(EngineConfig):
    """:class:`EngineConfig`'s fields with their command-line flags (see :mod:`cs231n_tf.cli.args`).

    A task's config extends it and re-declares a field only to change its default or its help.
    """

    epochs: int = _flag(1, "passes over the training data", kind="positive_int")
    batch_size: int = _flag(64, "global batch size, split over replicas", kind="positive_int", group="model and data")
    seed: int = _flag(0, "random seed", kind="non_negative_int")
    max_steps: int = _flag(None, "stop after this many steps (resumable)", kind="positive_int")
    steps_per_execution: int = _flag(1, "train steps per tf.function call", kind="positive_int", group=_PERF)
    xla: bool = _flag(False, "compile the train step with XLA (jit_compile)", kind="bool", group=_PERF)
    mixed_precision: str = _flag(None, "mixed precision policy", choices=MIXED_PRECISION, group=_PERF)
    strategy: str = _flag("default", "tf.distribute strategy", choices=STRATEGIES, group=_PERF)
    checkpoint_every: int = _flag(0, "also checkpoint every N steps (0: at epoch ends only)", kind="non_negative_int",
                                  group=_RUN)
    keep_checkpoints: int = _flag(3, "checkpoints kept", kind="positive_int", group=_RUN)
    log_every: int = _flag(50, "TensorBoard scalars every N steps", kind="positive_int", group=_RUN)
    deterministic: bool = _flag(False, "enable TensorFlow op determinism", kind="bool", group=_PERF)


@dataclasses.dataclass
class EngineResult:
    run_dir: str
    metrics: dict
    task: object


def _say(message):
    print(message, flush=True)


def random_generators(model):
    """The ``tf.random.Generator`` of every random layer (dropout, noise, stochastic depth...).

    Keras keeps them out of checkpoints on purpose (they are exposed to SavedModel only), but an
    exact resume needs their state, so the engine checkpoints them under the layer names.
    """
    found = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        generator = getattr(getattr(layer, "_random_generator", None), "_generator", None)
        if generator is not None:
            found[layer.name] = generator
    return found


def _host_value(value):
    array = np.asarray(value)
    return float(array) if array.ndim == 0 else array.tolist()


class Engine:
    """Trains ``task`` into ``run_dir``: ``Engine(task, run_dir).run()`` -> :class:`EngineResult`.

    ``resume`` continues the run in ``run_dir`` from its newest readable checkpoint; without it a
    directory that already holds a run is refused. ``strategy`` overrides ``config.strategy``
    (multi-worker and TPU strategies must be created before anything else touches TensorFlow).
    ``hooks`` are :class:`~cs231n_tf.engine.Hook` s; ``log`` gets one line per event (``None``: silent).
    """

    def __init__(self, task, run_dir=None, resume=False, strategy=None, log=_say, hooks=(), progress=None):
        self.task = task
        self.settings = settings = EngineConfig.of(task.config).validate()
        self.log = log or (lambda _: None)
        self.hooks = list(hooks)
        self.progress = progress
        self.strategy = strategy or make_strategy(settings.strategy)
        self.chief = is_chief(self.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        if task.global_batch_size % self.replicas:
            raise ConfigError(f"batch_size {task.global_batch_size} is not divisible by the {self.replicas} "
                              f"replicas of strategy {settings.strategy!r}")
        self.run_dir = os.path.abspath(run_dir) if run_dir is not None else None
        if self.run_dir is None and resume:
            raise ConfigError("resume needs a run directory")
        if self.run_dir is not None:
            exists = rundir.has_checkpoint(self.run_dir)
            if self.chief and not resume and exists:
                raise RunDirError(f"{self.run_dir} already holds a run; resume it, or choose another output directory")
            if resume and not exists:
                raise RunDirError(f"cannot resume: {self.run_dir} has no checkpoint in {CHECKPOINT_DIR}/")
            if resume:
                found = rundir.task_name(self.run_dir)
                if found != task.name:
                    raise RunDirError(f"cannot resume {self.run_dir}: it is a {found!r} run, not {task.name!r}")
            elif self.chief:
                rundir.create(self.run_dir)  # fail on an impossible path before loading anything
        if settings.deterministic:
            tf.config.experimental.enable_op_determinism()
        tf.keras.utils.set_random_seed(settings.seed)
        # Random layers then draw from tf.random.Generator variables, which the checkpoint saves:
        # dropout masks after a resume are the ones the uninterrupted run would have drawn.
        tf.keras.backend.experimental.enable_tf_random_generator()

        task.prepare()
        self.steps_per_epoch = int(task.steps_per_epoch())
        if self.steps_per_epoch < 1:
            raise ConfigError(f"task {task.name!r} has no full batch of {task.global_batch_size} in an epoch")
        with self.strategy.scope():
            self.state = RunState()
            self.ctx = StepContext(self.strategy, task.global_batch_size, settings.mixed_precision, self.state.step)
            task.build(self.ctx)
            for hook in self.hooks:
                hook.build(self)
        self.checkpoint = tf.train.Checkpoint(**self._checkpoint_objects())
        self.keeper = None
        if self.run_dir is not None:
            ckpt_dir = os.path.join(self.run_dir, CHECKPOINT_DIR)
            if not self.chief:  # other workers must save too (collectives), but to a scratch dir
                ckpt_dir = os.path.join(self.run_dir, f".scratch-{worker_id(self.strategy)}")
            self.keeper = CheckpointKeeper(self.checkpoint, ckpt_dir, max_to_keep=settings.keep_checkpoints)
            if resume:
                path = self.keeper.restore_latest(log=self.log)
                self.log(f"resumed from {path} (step {int(self.state.step.numpy())}, "
                         f"epoch {int(self.state.epoch.numpy()) + 1}, batch {int(self.state.step_in_epoch.numpy())})")
        self.stop_training = False
        self._eval_cache = {}
        self._train_steps = self._make_train_function()
        self._eval_batch = self._make_eval_function()

    def _checkpoint_objects(self):
        task = self.task
        objects = {}
        models = task.models()
        objects.update(models)
        objects.update(task.optimizers())
        objects.update(self.state.checkpoint_objects())
        generators = {}
        for name, model in models.items():
            for layer, generator in random_generators(model).items():
                generators[layer if len(models) == 1 else f"{name}/{layer}"] = generator
        objects["random_generators"] = generators
        metrics = {}
        for prefix, group in (("train", task.metrics()), ("eval", task.eval_metrics())):
            for metric in group:
                metrics[f"{prefix}_{metric.name}"] = metric
        objects["metrics"] = metrics
        for i, hook in enumerate(self.hooks):
            extra = hook.checkpoint_objects()
            if extra:
                objects[f"hook_{i}"] = extra
        clash = set(models) & set(task.optimizers())
        if clash:
            raise ConfigError(f"task {task.name!r} uses the name(s) {', '.join(sorted(clash))} for a model and an optimizer")
        return objects

    # ---- graph functions -------------------------------------------------------------------

    def _make_train_function(self):
        strategy, task, ctx, state, hooks = self.strategy, self.task, self.ctx, self.state, self.hooks

        def replica_step(batch):
            outputs = task.train_step(batch, ctx)
            if not isinstance(outputs, dict) or not outputs:
                raise ConfigError(f"task {task.name!r}: train_step must return a non-empty dict of scalars")
            return {k: tf.cast(v, tf.float32) if tf.convert_to_tensor(v).dtype.is_floating else v
                    for k, v in outputs.items()}

        if self.settings.xla:
            replica_step = tf.function(replica_step, jit_compile=True, reduce_retracing=True)

        @tf.function(reduce_retracing=True)
        def one_step(batch):
            outputs = strategy.run(replica_step, args=(batch,))
            logs = {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in outputs.items()}
            state.step.assign_add(1)
            state.step_in_epoch.assign_add(1)
            state.record_finite(logs)
            for hook in hooks:
                hook.after_step(self)
            return logs

        if self.settings.steps_per_execution == 1:
            # One step per call: no in-graph loop, so the step is traced once instead of twice.
            @tf.function
            def single_step(iterator, num_steps):
                return one_step(next(iterator))

            return single_step

        @tf.function
        def train_steps(iterator, num_steps):
            logs = one_step(next(iterator))
            for _ in tf.range(num_steps - 1):
                if state.bad_step >= 0:
                    break
                logs = one_step(next(iterator))
            return logs

        return train_steps

    def _make_eval_function(self):
        strategy, task, ctx = self.strategy, self.task, self.ctx

        def replica_eval(batch):
            size = tf.shape(tf.nest.flatten(batch)[0], out_type=tf.int64)[0]
            outputs = task.eval_step(batch, ctx) or {}
            return size, outputs

        @tf.function(reduce_retracing=True)
        def eval_batch(batch):
            size, outputs = strategy.run(replica_eval, args=(batch,))
            size = strategy.reduce(tf.distribute.ReduceOp.SUM, size, axis=None)
            return size, {k: strategy.gather(v, axis=0) for k, v in outputs.items()}

        return eval_batch

    # ---- host side --------------------------------------------------------------------------

    def evaluate(self, split):
        """The task's evaluation metrics on ``split`` (plus ``examples``), or ``None`` if it has no such split."""
        key = (split, int(self.state.step.numpy()))
        if key in self._eval_cache:
            return dict(self._eval_cache[key])
        dataset = self.task.eval_dataset(split)
        if dataset is None:
            return None
        for metric in self.task.eval_metrics():
            metric.reset_state()
        gathered = collections.defaultdict(list)
        examples = 0
        for batch in self.strategy.experimental_distribute_dataset(dataset):
            size, outputs = self._eval_batch(batch)
            examples += int(size)
            for k, v in outputs.items():
                gathered[k].append(v.numpy())
        result = {m.name: _host_value(m.result()) for m in self.task.eval_metrics()}
        result.update(self.task.evaluate_end({k: np.concatenate(v) for k, v in gathered.items()}, split))
        result["examples"] = examples
        self._eval_cache = {key: result}
        return dict(result)

    def metric_values(self):
        """The training metrics' current values (a host sync)."""
        return {m.name: _host_value(m.result()) for m in self.task.metrics()}

    def _eval_record(self, split, prefix):
        result = self.evaluate(split)
        if result is None:
            result = {m.name: float("nan") for m in self.task.eval_metrics()}
        return {prefix + k: v for k, v in result.items()}

    def check_finite(self):
        check_finite(self.state, self.keeper.latest if self.keeper else None)

    def save(self):
        """Checkpoint now (after the NaN guard); returns the path, or ``None`` in memory."""
        self.check_finite()
        if self.keeper is None:
            return None
        return self.keeper.save(int(self.state.step.numpy()))

    def run(self):
        settings, task, state = self.settings, self.task, self.state
        writes = self.run_dir is not None and self.chief
        if writes:
            rundir.create(self.run_dir)
            rundir.write_config(self.run_dir, task.name, task.run_config())
        reporter = Reporter(self.run_dir if writes else None, self.steps_per_epoch, self.progress)
        self.log(f"{task.describe()} ({self.steps_per_epoch} steps/epoch, {self.replicas} replica(s)) -> "
                 f"{self.run_dir or 'memory'}")
        for hook in self.hooks:
            hook.on_train_begin(self)
        history = []
        train_seconds, train_examples = 0.0, 0
        start_wall = time.perf_counter()
        values = {}
        self.stop_training = False
        self.last_logs = {}  # the last step's returned values (tensors; reading them waits for the device)
        batch = task.global_batch_size
        while int(state.epoch.numpy()) < settings.epochs and not self.stop_training:
            epoch = int(state.epoch.numpy())
            skip = int(state.step_in_epoch.numpy())
            if skip == 0:  # a run resumed mid-epoch keeps the restored accumulators
                for metric in task.metrics():
                    metric.reset_state()
            iterator = iter(self.strategy.experimental_distribute_dataset(task.train_dataset(epoch, skip)))
            reporter.start_epoch()
            # Steps are counted on the host so the loop never waits on the device except to log,
            # checkpoint or finish the epoch.
            step, in_epoch, epoch_steps = int(state.step.numpy()), skip, 0
            t0, paused = time.perf_counter(), 0.0
            while in_epoch < self.steps_per_epoch and not self.stop_training:
                n = min(settings.steps_per_execution, self.steps_per_epoch - in_epoch)
                if settings.checkpoint_every:
                    n = min(n, settings.checkpoint_every - step % settings.checkpoint_every)
                if settings.max_steps is not None:
                    if step >= settings.max_steps:
                        self.stop_training = True
                        break
                    n = min(n, settings.max_steps - step)
                logs = self.last_logs = self._train_steps(iterator, tf.constant(n, tf.int64))
                step, in_epoch, epoch_steps = step + n, in_epoch + n, epoch_steps + n
                train_examples += n * batch
                if settings.checkpoint_every and step % settings.checkpoint_every == 0:
                    p0 = time.perf_counter()
                    self.save()
                    paused += time.perf_counter() - p0
                crossed = step // settings.log_every != (step - n) // settings.log_every
                if self.hooks:
                    self.check_finite()
                    host_logs = {k: _host_value(v) for k, v in logs.items()}
                    for hook in self.hooks:
                        hook.after_execution(self, host_logs)
                if crossed:
                    self.check_finite()
                    current = self.metric_values()
                    reporter.update_bar(in_epoch, current)
                    speed = train_examples / max(train_seconds + time.perf_counter() - t0 - paused, 1e-9)
                    reporter.scalars("train", step, {**current, **task.log_scalars(step),
                                                     "examples_per_second": speed})
            self.check_finite()
            values = self.metric_values()  # waits for the last step
            train_seconds += time.perf_counter() - t0 - paused
            if epoch_steps == 0:
                break
            if in_epoch >= self.steps_per_epoch:
                state.epoch.assign_add(1)
                state.step_in_epoch.assign(0)
            reporter.end_epoch(in_epoch, values)
            record = {"epoch": epoch + 1, "step": step, **{f"train_{k}": v for k, v in values.items()}}
            val = self._eval_record(task.epoch_split, "val_") if task.epoch_split else {}
            val.pop("val_examples", None)
            record.update(val)
            history.append(record)
            reporter.scalars("validation", step, {k[4:]: v for k, v in val.items() if isinstance(v, float)})
            shown = " ".join(f"{k} {v:.4f}" for k, v in record.items()
                             if k not in ("epoch", "step") and isinstance(v, float))
            self.log(f"epoch {epoch + 1}/{settings.epochs} step {step}: {shown}")
            for hook in self.hooks:
                hook.on_epoch_end(self, record)
            self.save()
        reporter.close()
        metrics = {}
        for split, prefix in task.final_splits:
            metrics.update(self._eval_record(split, prefix))
        metrics.update({
            "final_train_loss": values.get("loss", float("nan")), "steps": int(state.step.numpy()),
            "epochs": int(state.epoch.numpy()), "wall_seconds": time.perf_counter() - start_wall,
            "examples_per_second": train_examples / max(train_seconds, 1e-9), "replicas": self.replicas,
            "history": history, "checkpoint": self.keeper.latest if self.keeper else None,
        })
        metrics.update(task.summary(metrics))
        if writes:
            rundir.write_metrics(self.run_dir, metrics)
        elif self.keeper is not None:
            shutil.rmtree(self.keeper.directory, ignore_errors=True)
        first = task.final_splits[0][1] if task.final_splits else None
        shown = ", ".join(f"{k[len(first):]} {v:.4f}" for k, v in metrics.items()
                          if first and k.startswith(first) and isinstance(v, float))
        self.log(f"{task.final_splits[0][0] if first else 'done'}: {shown}; run directory: {self.run_dir or 'memory'}")
        for hook in self.hooks:
            hook.on_train_end(self, metrics)
        return EngineResult(self.run_dir, metrics, task)
