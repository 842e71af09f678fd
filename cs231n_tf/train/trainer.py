"""The package's training loop: ``tf.function`` steps under any ``tf.distribute`` strategy.

What it does that a plain loop does not:

- Train and eval steps are ``tf.function``s; ``steps_per_execution`` runs several steps per call
  (a ``tf.while_loop`` in the graph) so Python is off the hot path; XLA via ``jit_compile``.
- Losses are averaged over the *global* batch (``tf.nn.compute_average_loss``) so gradients are the
  same on 1 or N replicas; regularisation is scaled by the replica count.
- Mixed precision (``mixed_float16`` with dynamic loss scaling, or ``mixed_bfloat16``): float32
  master weights, logits cast to float32 before the loss.
- Learning-rate schedules are functions of the optimizer's step counter, which the checkpoint holds,
  so a resumed run continues the schedule where it stopped.
- Gradient clipping is the Keras optimizer's own ``global_clipnorm`` / ``clipvalue``. Inside
  ``apply_gradients`` the optimizer first all-reduces the replicas' gradients and only then clips,
  so under ``MirroredStrategy`` the *aggregated* gradient is clipped (the same update as on one
  device); under ``mixed_float16`` the ``LossScaleOptimizer`` hands the inner optimizer unscaled
  gradients, so the threshold applies to true gradient norms. Clipping each replica's partial
  gradient before the all-reduce would instead depend on the replica count.
- Exact resume: the checkpoint holds model, optimizer (with its step counter), the random
  generators' state, the epoch and the position inside it; the data order of an epoch depends only
  on ``(seed, epoch)``, so a resumed run sees the same batches as an uninterrupted one.
- A NaN/Inf guard in the graph records the first bad step; the host checks it before every
  checkpoint and log, stops, keeps the last good checkpoint and raises ``NonFiniteLossError``.
"""

import dataclasses
import os
import shutil
import sys
import time

import numpy as np
import tensorflow as tf

from cs231n_tf import models
from cs231n_tf.data.augment import Augmenter
from cs231n_tf.errors import ConfigError, NonFiniteLossError, RunDirError
from cs231n_tf.fileio import atomic_write_json
from cs231n_tf.optim import keras as course_optimizers
from cs231n_tf.optim.schedules import make_schedule
from cs231n_tf.train import config as config_lib
from cs231n_tf.train import regularizers
from cs231n_tf.train.initializers import get_initializer
from cs231n_tf.train.regularizers import decayed_variables
from cs231n_tf.train.strategies import is_chief, make_strategy, worker_id

CHECKPOINT_DIR = "checkpoints"


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    metrics: dict
    model: tf.keras.Model


def make_optimizer(name, lr, clip_norm=None, clip_value=None):
    """Keras's own optimizers by the course's names, or ``course_*``: the course's update rules.

    ``lr`` is a float or a ``LearningRateSchedule``; ``clip_norm`` becomes Keras's
    ``global_clipnorm`` (``tf.clip_by_global_norm`` of the aggregated gradient), ``clip_value``
    its element-wise ``clipvalue``.
    """
    clip = {}
    if clip_norm is not None:
        clip["global_clipnorm"] = float(clip_norm)
    if clip_value is not None:
        clip["clipvalue"] = float(clip_value)
    if name.startswith("course_") and name in config_lib.OPTIMIZERS:
        return course_optimizers.get_optimizer(name[len("course_"):], lr, **clip)
    opt = tf.keras.optimizers
    if name == "sgd":
        return opt.SGD(lr, **clip)
    if name == "momentum":
        return opt.SGD(lr, momentum=0.9, **clip)
    if name == "nesterov":
        return opt.SGD(lr, momentum=0.9, nesterov=True, **clip)
    if name == "adagrad":
        return opt.Adagrad(lr, **clip)
    if name == "rmsprop":
        return opt.RMSprop(lr, rho=0.99, epsilon=1e-8, **clip)
    if name == "adam":
        return opt.Adam(lr, **clip)
    if name == "adamw":
        return opt.AdamW(lr, **clip)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(config_lib.OPTIMIZERS)}")


def make_learning_rate(config, steps_per_epoch):
    """The configured learning rate: ``config.lr`` itself, or a schedule over the run's steps.

    The run has ``config.epochs * steps_per_epoch`` steps; epochs given for the decay and the
    warm-up are converted to steps with ``round``. A constant rate without warm-up stays a plain
    float, so runs without a schedule keep their checkpoint layout. The schedule is evaluated at the
    optimizer's restored step counter, so a resumed run continues it; resuming with a different
    ``epochs`` (allowed by the CLI) re-spreads cosine/exponential/default-step schedules over the
    new length from the current step on.
    """
    total = config.epochs * steps_per_epoch
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if config.lr_schedule == "constant" and not warmup:
        return config.lr
    options = {}
    if config.lr_schedule == "step":
        options["factor"] = config.lr_decay_factor
        if config.lr_decay_epochs is not None:
            options["every"] = max(1, int(round(config.lr_decay_epochs * steps_per_epoch)))
        elif config.lr_boundaries is not None:
            options["boundaries"] = list(config.lr_boundaries)
    elif config.lr_final is not None:
        options["final_lr"] = config.lr_final
    return make_schedule(config.lr_schedule, config.lr, total, warmup_steps=warmup, **options)


def random_generators(model):
    """The ``tf.random.Generator`` of every random layer (dropout, noise, stochastic depth...).

    Keras keeps them out of checkpoints on purpose (they are exposed to SavedModel only), but an
    exact resume needs their state, so the trainer checkpoints them under the layer names.
    """
    found = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        generator = getattr(getattr(layer, "_random_generator", None), "_generator", None)
        if generator is not None:
            found[layer.name] = generator
    return found


def build_model(config, input_shape, num_classes):
    """Build the configured model under its dtype policy (float32 outputs), restoring the global policy after.

    ``config.init`` goes to the builder's ``kernel_initializer`` as a serialised config, so every
    layer deserialises its own initializer and draws its own weights.
    """
    options = dict(config.model_options)
    if getattr(config, "init", None) is not None:
        accepted = models.get_spec(config.model).options()
        if "kernel_initializer" not in accepted:
            raise ConfigError(f"init={config.init!r}: model {config.model!r} has no kernel_initializer option "
                              f"(its options: {', '.join(sorted(accepted)) or 'none'})")
        if "kernel_initializer" in options:
            raise ConfigError("set the initializer once: init or model_options['kernel_initializer'], not both")
        options["kernel_initializer"] = tf.keras.initializers.serialize(get_initializer(config.init))
    previous = tf.keras.mixed_precision.global_policy()
    if config.mixed_precision:
        tf.keras.mixed_precision.set_global_policy(config.mixed_precision)
    try:
        model = models.build(config.model, input_shape, num_classes, **options)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    if model.output.dtype != tf.float32:
        # Mixed precision: hand out float32 logits (the Keras mixed-precision guide's float32 output
        # layer), so losses, softmax and exports never see float16/bfloat16 values.
        outputs = tf.keras.layers.Activation("linear", dtype="float32", name="logits_float32")(model.output)
        model = tf.keras.Model(model.inputs, outputs, name=model.name)
    return model


def _say(message):
    print(message, flush=True)


class Trainer:
    """Trains ``config.model`` on ``config.dataset`` into ``run_dir``.

    Use :func:`train` unless you need the pieces: ``Trainer(config, run_dir).run()``.
    """

    def __init__(self, config, run_dir, resume=False, strategy=None, data=None, log=_say):
        self.config = config.validate()
        self.run_dir = os.path.abspath(run_dir)
        self.log = log
        # Multi-worker strategies must exist before any other op runs, so the strategy comes first.
        self.strategy = strategy or make_strategy(config.strategy)
        self.chief = is_chief(self.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % self.replicas:
            raise ConfigError(f"batch_size {config.batch_size} is not divisible by the {self.replicas} "
                              f"replicas of strategy {config.strategy!r}")
        ckpt_dir = os.path.join(self.run_dir, CHECKPOINT_DIR)
        if self.chief and not resume and tf.train.latest_checkpoint(ckpt_dir):
            raise RunDirError(f"{self.run_dir} already holds a run; pass resume=True (--resume) to "
                              "continue it, or choose another output directory")
        if resume and not tf.train.latest_checkpoint(ckpt_dir):
            raise RunDirError(f"cannot resume: {self.run_dir} has no checkpoint in {CHECKPOINT_DIR}/")
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        tf.keras.utils.set_random_seed(config.seed)
        # Random layers then draw from tf.random.Generator variables, which the checkpoint saves:
        # dropout masks after a resume are the ones the uninterrupted run would have drawn.
        tf.keras.backend.experimental.enable_tf_random_generator()

        self.data = data or config_lib.load_data(config)
        info = self.data.info
        if info.preprocessing != config.preprocessing:
            raise ConfigError(f"the data given was loaded with preprocessing={info.preprocessing!r} but the "
                              f"config asks for {config.preprocessing!r}")
        self.augmenter = None
        if config.augment:
            self.augmenter = Augmenter(config.augment, train_images=self.data.arrays["x_train"],
                                       pixel_max=info.pixel_max)
        self.steps_per_epoch = self.data.steps_per_epoch(config.batch_size)
        if self.steps_per_epoch == 0:
            raise ConfigError(f"batch_size {config.batch_size} is larger than the {info.num_train} training examples")

        with self.strategy.scope():
            self.model = build_model(config, info.image_shape, info.num_classes)
            self.lr_schedule = make_learning_rate(config, self.steps_per_epoch)
            optimizer = make_optimizer(config.optimizer, self.lr_schedule, config.clip_norm, config.clip_value)
            if config.mixed_precision == "mixed_float16":
                optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.model.trainable_variables)
            var = lambda v, dtype=tf.int64: tf.Variable(v, dtype=dtype, trainable=False,  # noqa: E731
                                                        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self.step = var(0)
            self.epoch = var(0)
            self.step_in_epoch = var(0)
            self.bad_step = var(-1)
            self.acc_loss = var(0.0, tf.float32)
            self.acc_correct = var(0, tf.int64)
            self.acc_count = var(0, tf.int64)
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, step=self.step,
                                              epoch=self.epoch, step_in_epoch=self.step_in_epoch,
                                              random_generators=random_generators(self.model))
        # Non-chief workers of a multi-worker run must save too (collectives), but to a scratch dir.
        self.ckpt_dir = ckpt_dir if self.chief else os.path.join(self.run_dir, f".scratch-{worker_id(self.strategy)}")
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.ckpt_dir, max_to_keep=config.keep_checkpoints)
        if resume:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.log(f"resumed from {self.manager.latest_checkpoint} (step {int(self.step.numpy())}, "
                     f"epoch {int(self.epoch.numpy()) + 1}, batch {int(self.step_in_epoch.numpy())})")
        self._decayed = decayed_variables(self.model)
        self._train_steps = self._make_train_function()
        self._eval = self._make_eval_function()

    # ---- graph functions -------------------------------------------------------------------

    def _replica_step(self, x, y):
        config, model, opt = self.config, self.model, self.optimizer
        with tf.GradientTape() as tape:
            logits = tf.cast(model(x, training=True), tf.float32)
            per_example = tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            data_loss = tf.nn.compute_average_loss(per_example, global_batch_size=config.batch_size)
            reg = regularizers.regularization_loss(model, self._decayed, config.penalty, config.weight_decay,
                                                   config.l1_ratio)
            loss = data_loss + tf.nn.scale_regularization_loss(reg)
            scaled = opt.get_scaled_loss(loss) if isinstance(opt, tf.keras.mixed_precision.LossScaleOptimizer) else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        if isinstance(opt, tf.keras.mixed_precision.LossScaleOptimizer):
            grads = opt.get_unscaled_gradients(grads)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.int64))
        # Report the loss summed over replicas: data loss is already divided by the global batch.
        return loss, correct, tf.size(y, out_type=tf.int64)

    def _make_train_function(self):
        strategy = self.strategy
        replica_step = self._replica_step
        if self.config.xla:
            replica_step = tf.function(replica_step, jit_compile=True, reduce_retracing=True)

        @tf.function
        def train_steps(iterator, num_steps):
            for _ in tf.range(num_steps):
                x, y = next(iterator)
                loss, correct, count = strategy.run(replica_step, args=(x, y))
                loss = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
                self.step.assign_add(1)
                self.step_in_epoch.assign_add(1)
                finite = tf.math.is_finite(loss)
                self.bad_step.assign(tf.where((self.bad_step < 0) & ~finite, self.step, self.bad_step))
                self.acc_loss.assign_add(tf.where(finite, loss, 0.0))
                self.acc_correct.assign_add(strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None))
                self.acc_count.assign_add(strategy.reduce(tf.distribute.ReduceOp.SUM, count, axis=None))
                if self.bad_step >= 0:
                    break

        return train_steps

    def _make_eval_function(self):
        strategy, model = self.strategy, self.model

        def replica_eval(x, y):
            logits = tf.cast(model(x, training=False), tf.float32)
            loss = tf.reduce_sum(tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
            correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.int64))
            return loss, correct, tf.size(y, out_type=tf.int64)

        @tf.function
        def evaluate(dist_dataset):
            total = tf.constant(0.0)
            correct = tf.constant(0, tf.int64)
            count = tf.constant(0, tf.int64)
            for x, y in dist_dataset:
                l, c, n = strategy.run(replica_eval, args=(x, y))
                total += strategy.reduce(tf.distribute.ReduceOp.SUM, l, axis=None)
                correct += strategy.reduce(tf.distribute.ReduceOp.SUM, c, axis=None)
                count += strategy.reduce(tf.distribute.ReduceOp.SUM, n, axis=None)
            return total, correct, count

        return evaluate

    # ---- host loop --------------------------------------------------------------------------

    def evaluate(self, split):
        dist = self.strategy.experimental_distribute_dataset(self.data.split(split))
        total, correct, count = (t.numpy() for t in self._eval(dist))
        count = max(int(count), 1)
        return {"loss": float(total) / count, "accuracy": float(correct) / count, "examples": count}

    def learning_rate(self, step=None):
        """The rate the optimizer used for update number ``step`` (0-based; default: the latest)."""
        if step is None:
            step = max(int(self.step.numpy()) - 1, 0)
        lr = self.lr_schedule
        if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
            lr = lr(tf.constant(step, tf.int64))
        return float(tf.convert_to_tensor(lr).numpy())

    def _check_finite(self):
        bad = int(self.bad_step.numpy())
        if bad >= 0:
            last = self.manager.latest_checkpoint
            raise NonFiniteLossError(
                f"non-finite loss (NaN or Inf) at step {bad}; stopped without saving it. "
                f"Last good checkpoint: {last or 'none'}. Lower --lr or check the data.",
                step=bad, last_good_checkpoint=last)

    def _save(self):
        self._check_finite()
        path = self.manager.save(checkpoint_number=int(self.step.numpy()))
        return path

    def _take_accumulators(self):
        loss, correct, count = self.acc_loss.numpy(), self.acc_correct.numpy(), self.acc_count.numpy()
        for v in (self.acc_loss, self.acc_correct, self.acc_count):
            v.assign(tf.zeros_like(v))
        return loss, correct, count

    def run(self):
        config, data = self.config, self.data
        if self.chief:
            os.makedirs(self.run_dir, exist_ok=True)
            config_lib.save_run_config(self.run_dir, config, data.info, data.info.image_shape, data.info.num_classes)
        writer = tf.summary.create_file_writer(os.path.join(self.run_dir, "logs", "train")) if self.chief else None
        val_writer = tf.summary.create_file_writer(os.path.join(self.run_dir, "logs", "validation")) if self.chief else None
        self.log(f"training {config.model} on {config.dataset} ({data.info.num_train} examples, "
                 f"{self.steps_per_epoch} steps/epoch, {self.replicas} replica(s)) -> {self.run_dir}")
        history = []
        train_seconds, train_examples = 0.0, 0
        start_wall = time.perf_counter()
        interactive = sys.stdout.isatty()
        last_loss = float("nan")
        stop = False
        while int(self.epoch.numpy()) < config.epochs and not stop:
            epoch = int(self.epoch.numpy())
            skip = int(self.step_in_epoch.numpy())
            ds = data.train_epoch(epoch, config.seed, config.batch_size, skip_batches=skip, augment=self.augmenter)
            iterator = iter(self.strategy.experimental_distribute_dataset(ds))
            bar = tf.keras.utils.Progbar(self.steps_per_epoch, stateful_metrics=["loss", "acc"]) if interactive else None
            epoch_loss = epoch_correct = epoch_count = 0
            epoch_steps = 0
            # Steps are counted on the host so the loop never waits on the device except to log,
            # checkpoint or finish the epoch.
            step, in_epoch = int(self.step.numpy()), skip
            t0 = time.perf_counter()
            paused = 0.0
            while in_epoch < self.steps_per_epoch:
                n = min(config.steps_per_execution, self.steps_per_epoch - in_epoch)
                if config.checkpoint_every:
                    n = min(n, config.checkpoint_every - step % config.checkpoint_every)
                if config.max_steps is not None:
                    if step >= config.max_steps:
                        stop = True
                        break
                    n = min(n, config.max_steps - step)
                self._train_steps(iterator, tf.constant(n, tf.int64))
                step, in_epoch, epoch_steps = step + n, in_epoch + n, epoch_steps + n
                train_examples += n * config.batch_size
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    p0 = time.perf_counter()
                    self._save()
                    paused += time.perf_counter() - p0
                if step // config.log_every != (step - n) // config.log_every or bar is not None:
                    self._check_finite()
                    loss, correct, count = self._take_accumulators()
                    epoch_loss += loss
                    epoch_correct += correct
                    epoch_count += count
                    if bar is not None:
                        bar.update(in_epoch, [("loss", epoch_loss / max(epoch_steps, 1)),
                                              ("acc", epoch_correct / max(epoch_count, 1))])
                    if writer is not None and count:
                        with writer.as_default(step=step):
                            tf.summary.scalar("loss", loss * config.batch_size / count)
                            tf.summary.scalar("accuracy", correct / count)
                            tf.summary.scalar("learning_rate", self.learning_rate(step - 1))
                            tf.summary.scalar("examples_per_second",
                                              train_examples / max(train_seconds + time.perf_counter() - t0, 1e-9))
            self._check_finite()
            loss, correct, count = self._take_accumulators()  # waits for the last step
            train_seconds += time.perf_counter() - t0 - paused
            epoch_loss += loss
            epoch_correct += correct
            epoch_count += count
            if stop and epoch_steps == 0:
                break
            last_loss = epoch_loss / max(epoch_steps, 1)
            if not stop:
                self.epoch.assign_add(1)
                self.step_in_epoch.assign(0)
            val = self.evaluate("validation") if data.info.num_validation else {"loss": float("nan"), "accuracy": float("nan")}
            record = {"epoch": epoch + 1, "step": int(self.step.numpy()), "train_loss": last_loss,
                      "train_accuracy": epoch_correct / max(epoch_count, 1), "val_loss": val["loss"],
                      "val_accuracy": val["accuracy"]}
            history.append(record)
            if val_writer is not None:
                with val_writer.as_default(step=int(self.step.numpy())):
                    tf.summary.scalar("loss", val["loss"])
                    tf.summary.scalar("accuracy", val["accuracy"])
            self.log(f"epoch {epoch + 1}/{config.epochs} step {record['step']}: loss {last_loss:.4f} "
                     f"acc {record['train_accuracy']:.4f} val_loss {val['loss']:.4f} val_acc {val['accuracy']:.4f}")
            self._save()
        for w in (writer, val_writer):
            if w is not None:
                w.flush()
        test = self.evaluate("test")
        val = self.evaluate("validation") if data.info.num_validation else {"loss": float("nan"), "accuracy": float("nan")}
        metrics = {
            "test_accuracy": test["accuracy"], "test_loss": test["loss"],
            "val_accuracy": val["accuracy"], "val_loss": val["loss"],
            "final_train_loss": last_loss, "steps": int(self.step.numpy()), "epochs": int(self.epoch.numpy()),
            "wall_seconds": time.perf_counter() - start_wall,
            "examples_per_second": train_examples / max(train_seconds, 1e-9),
            "replicas": self.replicas, "history": history,
            "checkpoint": self.manager.latest_checkpoint,
            "model_params": int(sum(np.prod(v.shape) for v in self.model.trainable_variables)),
        }
        if self.chief:
            atomic_write_json(os.path.join(self.run_dir, config_lib.METRICS_FILE), metrics)
        else:
            shutil.rmtree(self.ckpt_dir, ignore_errors=True)
        self.log(f"test accuracy {test['accuracy']:.4f} ({test['examples']} examples); run directory: {self.run_dir}")
        return TrainResult(self.run_dir, metrics, self.model)


def train(config=None, run_dir=None, resume=False, **overrides):
    """Train a model; returns :class:`TrainResult` (run directory, metrics, Keras model).

    ``train()`` with no arguments trains the default small CNN on the embedded ``digits`` data.
    Keyword overrides set :class:`TrainConfig` fields: ``train(model="lenet5", epochs=3)``.
    """
    config = dataclasses.replace(config or config_lib.TrainConfig(), **overrides)
    run_dir = run_dir or config_lib.default_run_dir(config)
    return Trainer(config, run_dir, resume=resume).run()
