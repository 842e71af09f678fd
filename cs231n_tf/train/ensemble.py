"""Model ensembles and weight averaging (CS231n lecture 7, "Model ensembles").

- :func:`average_predictions`: train several models independently, average their softmax
  probabilities at test time; the lecture's "about 2% extra performance".
- Snapshot ensembles (Huang et al., "Snapshot Ensembles: Train 1, get M for free", ICLR 2017):
  one run with a cyclic cosine learning rate restarted ``M`` times,
  ``lr(t) = lr_max / 2 * (cos(pi * (t mod P) / P) + 1)`` with ``P = ceil(T / M)`` steps per cycle
  (the paper's equation 2 with a 0-based step ``t``); the weights at the end of each cycle, where the
  rate has annealed to a local minimum, are the ensemble's members
  (:func:`train_snapshot_ensemble`).
- Polyak averaging (Polyak & Juditsky, "Acceleration of stochastic approximation by averaging",
  1992) and its exponential moving average variant: keep a running average of the weights during
  training and evaluate with it (:class:`WeightAverager`, :func:`train_averaged`).

The independent, snapshot and averaging runs are in-memory runs of the classification task on the
engine (the package's one loop), so every :class:`TrainConfig` option works for them (schedules,
clipping, augmentation, mixed precision, strategies); the snapshots and the running average are
engine hooks, the average updated inside the compiled step. For checkpointed members use
:func:`cs231n_tf.train.train` per seed and pass the run directories to :func:`average_predictions`.
"""

import contextlib
import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, DataError, InputTypeError, ShapeError
from cs231n_tf.train import config as config_lib
from cs231n_tf.train.evaluate import load_run, predict_logits
from cs231n_tf.engine import Engine, Hook
from cs231n_tf.tasks.classification import ClassificationTask, build_model, make_optimizer, with_overrides


def _say(message):
    print(message, flush=True)


# ---- averaging predictions --------------------------------------------------------------------

@dataclasses.dataclass
class EnsemblePrediction:
    """Softmax probabilities of an ensemble's members and of the ensemble on one data set.

    ``member_probabilities`` ``(M, N, C)``, ``probabilities`` ``(N, C)`` (their mean over members),
    ``labels`` ``(N,)``, ``names`` the M members' names.
    """

    member_probabilities: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray
    names: list

    @property
    def accuracy(self):
        return float((self.probabilities.argmax(-1) == self.labels).mean())

    def member_accuracies(self):
        return [float((p.argmax(-1) == self.labels).mean()) for p in self.member_probabilities]

    def report(self):
        """Each member's accuracy, the ensemble's, and its gain over the mean and the best member."""
        members = self.member_accuracies()
        return {"members": dict(zip(self.names, members)), "ensemble": self.accuracy,
                "mean_member": float(np.mean(members)), "best_member": float(np.max(members)),
                "gain_over_mean": self.accuracy - float(np.mean(members)),
                "gain_over_best": self.accuracy - float(np.max(members)), "examples": int(len(self.labels))}


def _probabilities(model, dataset):
    logits, labels = predict_logits(model, dataset)
    return tf.nn.softmax(logits.astype(np.float64), axis=-1).numpy(), labels


def average_predictions(models_or_run_dirs, dataset="test"):
    """Average the softmax probabilities of several models (or run directories) on a data set.

    Args:
      models_or_run_dirs: ``tf.keras.Model``s (logit outputs) and/or run directories written by
        the trainer (their latest checkpoint is loaded).
      dataset: a batched ``(x, y)`` ``tf.data.Dataset`` already in the models' input space, or a
        split name (``"test"``, ``"validation"``, ``"train"``): then every member must be a run
        directory and each one reads the split through its own run's preprocessing.

    Returns:
      :class:`EnsemblePrediction` (``.report()`` gives member and ensemble accuracies).
    """
    single = isinstance(models_or_run_dirs, (str, os.PathLike, tf.keras.Model))
    members = [models_or_run_dirs] if single else list(models_or_run_dirs)
    if not members:
        raise ConfigError("average_predictions needs at least one model or run directory")
    by_split = isinstance(dataset, str)
    if not by_split and not isinstance(dataset, tf.data.Dataset):
        raise InputTypeError(f"dataset must be a tf.data.Dataset or a split name, got {type(dataset).__name__}")
    probabilities, names, labels = [], [], None
    for i, member in enumerate(members):
        if isinstance(member, (str, os.PathLike)):
            run = load_run(os.fspath(member))
            model, name = run.model, os.path.basename(run.run_dir.rstrip("/"))
            source = run.load_data().split(dataset) if by_split else dataset
        elif isinstance(member, tf.keras.Model):
            if by_split:
                raise InputTypeError(f"member {i} is a Keras model: pass a tf.data.Dataset, "
                                     f"not the split name {dataset!r}")
            model, name, source = member, member.name, dataset
        else:
            raise InputTypeError(f"member {i} must be a tf.keras.Model or a run directory, got {type(member).__name__}")
        probs, member_labels = _probabilities(model, source)
        if labels is None:
            labels = member_labels
        elif not np.array_equal(labels, member_labels):
            raise DataError(f"member {name!r} was evaluated on different examples or labels than member 0")
        if probabilities and probs.shape != probabilities[0].shape:
            raise ShapeError(f"member {name!r} predicts {probs.shape[-1]} classes, "
                             f"member 0 {probabilities[0].shape[-1]}")
        probabilities.append(probs)
        names.append(name if name not in names else f"{name}_{i}")
    stacked = np.stack(probabilities)
    return EnsemblePrediction(stacked, stacked.mean(axis=0), labels, names)


# ---- weight averaging -------------------------------------------------------------------------

class WeightAverager:
    """Running average of a model's weights: Polyak's mean (``decay=None``) or an EMA (a float).

    Averages the model's floating-point weights: trainable ones and normalisation statistics, so the
    averaged model is self-consistent. At construction the average is set to the current weights.
    Each :meth:`update` (eager or inside a ``tf.function``, after the optimizer step) then folds in
    the current weights ``w``:

    - ``decay=None``: ``avg += (w - avg) / n`` with ``n`` the number of updates so far, so after
      updates with ``w_1 .. w_n`` the average is their arithmetic mean (Polyak & Juditsky 1992);
    - ``decay=d``: ``avg = d * avg + (1 - d) * w`` (``tf.train.ExponentialMovingAverage`` without
      zero-debiasing, whose shadow starts at the weights it is created with), so after ``n`` updates
      ``avg = d**n w_0 + (1 - d) * sum_i d**(n - i) w_i``.

    Evaluate with the average inside ``with averager.swap_in(): ...``; the live weights come back
    afterwards. Averaged weights and averaged batchnorm statistics do not quite fit together (the
    statistics were measured with other weights); ``swap_in(batchnorm_data=...)`` re-estimates them
    with the averaged weights, as stochastic weight averaging does (Izmailov et al., "Averaging
    weights leads to wider optima and better generalization", UAI 2018).
    """

    def __init__(self, model, decay=None):
        if not isinstance(model, tf.keras.Model):
            raise InputTypeError(f"expected a tf.keras.Model, got {type(model).__name__}")
        if decay is not None and (isinstance(decay, bool) or not isinstance(decay, (int, float))
                                  or not 0.0 <= decay < 1.0):
            raise ConfigError(f"decay must be None (Polyak mean) or a number in [0, 1), got {decay!r}")
        self.model = model
        self.decay = None if decay is None else float(decay)
        self.variables = [v for v in model.weights if v.dtype.is_floating]
        if not self.variables:
            raise ConfigError(f"model {model.name!r} has no floating-point weights to average")
        self.averages = [tf.Variable(v, trainable=False, name=f"average_{i}") for i, v in enumerate(self.variables)]
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="average_count")

    def update(self):
        """Fold the model's current weights into the average."""
        self.count.assign_add(1)
        if self.decay is None:
            rate = 1.0 / tf.cast(self.count, tf.float32)
        else:
            rate = tf.constant(1.0 - self.decay)
        for average, variable in zip(self.averages, self.variables):
            average.assign_sub(tf.cast(rate, average.dtype) * (average - tf.cast(variable, average.dtype)))

    def averaged_weights(self):
        """The averages as NumPy arrays, in the order of :attr:`variables`."""
        return [a.numpy() for a in self.averages]

    @contextlib.contextmanager
    def swap_in(self, batchnorm_data=None):
        """Temporarily load the averaged weights into the model.

        ``batchnorm_data``: a batched ``(x, y)`` dataset (training data) to re-estimate the
        batchnorm statistics with (:func:`recompute_batchnorm`); ``None`` keeps the averaged ones.
        """
        saved = [tf.identity(v) for v in self.variables]
        for variable, average in zip(self.variables, self.averages):
            variable.assign(average)
        if batchnorm_data is not None:
            recompute_batchnorm(self.model, batchnorm_data)
        try:
            yield self.model
        finally:
            for variable, value in zip(self.variables, saved):
                variable.assign(value)


def recompute_batchnorm(model, dataset):
    """Re-estimate every BatchNormalization layer's moving statistics as plain means over ``dataset``.

    The statistics are reset and the model is run in training mode over the batches of ``dataset``
    (batched ``(x, y)`` or ``x``) with each layer's momentum set to ``k / (k + 1)`` at batch ``k``,
    so the moving mean ends as the average of the batch means (SWA's ``bn_update``). The model runs
    eagerly here because Keras reads ``momentum`` when the layer is called. Returns the number of
    batches used.
    """
    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if isinstance(layer, tf.keras.layers.BatchNormalization)]
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(tf.zeros_like(layer.moving_mean))
        layer.moving_variance.assign(tf.ones_like(layer.moving_variance))
    batches = 0
    try:
        for batch in dataset:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            for layer in layers:
                layer.momentum = batches / (batches + 1)
            model(x, training=True)
            batches += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if batches == 0:
        raise ConfigError("recompute_batchnorm needs a dataset with at least one batch")
    return batches


# ---- snapshot ensembles and averaged training -------------------------------------------------

def cyclic_cosine_lr(step, total_steps, cycles, lr_max):
    """Huang et al. 2017 eq. 2: ``lr_max / 2 * (cos(pi * (t mod P) / P) + 1)``, ``P = ceil(T / M)``.

    ``step`` is 0-based (scalar or array); returns float64 NumPy.
    """
    period = math.ceil(total_steps / cycles)
    t = np.asarray(step, dtype=np.float64)
    return lr_max / 2.0 * (np.cos(np.pi * np.mod(t, period) / period) + 1.0)


class CyclicCosine(tf.keras.optimizers.schedules.LearningRateSchedule):
    """:func:`cyclic_cosine_lr` as a Keras schedule of the optimizer's 0-based step counter."""

    def __init__(self, lr_max, total_steps, cycles):
        lr_max = validation.positive_number("lr_max", lr_max)
        total_steps = validation.positive_int("total_steps", total_steps)
        cycles = validation.positive_int("cycles", cycles)
        if cycles > total_steps:
            raise ConfigError(f"cycles ({cycles}) cannot exceed total_steps ({total_steps})")
        self.lr_max, self.total_steps, self.cycles = float(lr_max), total_steps, cycles
        self.period = math.ceil(total_steps / cycles)

    def __call__(self, step):
        t = tf.cast(tf.math.floormod(tf.cast(step, tf.int64), self.period), tf.float32)
        return self.lr_max / 2.0 * (tf.cos(math.pi * t / self.period) + 1.0)

    def get_config(self):
        return {"lr_max": self.lr_max, "total_steps": self.total_steps, "cycles": self.cycles}


class _RecordRates(Hook):
    """Writes the rate the optimizer applied at every step into a variable, in the compiled step."""

    def __init__(self, total_steps):
        self.total_steps = total_steps

    def build(self, engine):
        self.rates = tf.Variable(tf.zeros([self.total_steps]), trainable=False)

    def after_step(self, engine):
        # Keras sets the optimizer's current rate from the schedule before applying an update.
        optimizer = engine.task.optimizer
        rate = tf.cast(getattr(optimizer, "inner_optimizer", optimizer).learning_rate, tf.float32)
        self.rates.scatter_nd_update([[engine.state.step - 1]], [rate])


class _Snapshots(Hook):
    def __init__(self, every):
        self.every, self.weights, self.steps = every, [], []

    def on_epoch_end(self, engine, record):
        if record["epoch"] % self.every == 0:
            self.weights.append(engine.task.model.get_weights())
            self.steps.append(record["step"])


class _Average(Hook):
    """Updates a :class:`WeightAverager` after every step from the end of epoch ``start_epoch`` on."""

    def __init__(self, decay, start_epoch):
        self.decay, self.start_epoch = decay, start_epoch

    def build(self, engine):
        self.averager = WeightAverager(engine.task.model, self.decay)
        self.active = tf.Variable(self.start_epoch == 0, trainable=False)

    def checkpoint_objects(self):
        return {"averages": list(self.averager.averages), "count": self.averager.count, "active": self.active}

    def on_epoch_end(self, engine, record):
        if record["epoch"] == self.start_epoch:
            # The average starts from the weights reached so far.
            for average, variable in zip(self.averager.averages, self.averager.variables):
                average.assign(variable)
            self.active.assign(True)

    def after_step(self, engine):
        def update():
            self.averager.update()
            return tf.constant(True)

        tf.cond(self.active, update, lambda: tf.constant(False))


def _engine(config, data, hooks=(), optimizer=None):
    """An in-memory engine run of the classification task (the package's one loop)."""
    task = ClassificationTask(config, data=data, optimizer=optimizer)
    return Engine(task, None, log=None, hooks=hooks, progress=False)


def _setup(config, data, overrides):
    config = with_overrides(config or config_lib.TrainConfig(), **overrides).validate()
    data = data or config_lib.load_data(config)
    return config, data


def train_independent(config=None, seeds=(0, 1, 2), data=None, log=_say, **overrides):
    """Train one model per seed (different initialisation, dropout masks and data order).

    The members of a classic ensemble; average them with :func:`average_predictions`. Returns the
    models, named ``seed<N>``. For checkpointed members, use :func:`cs231n_tf.train.train` per seed
    and pass the run directories instead.
    """
    seeds = list(seeds)
    if not seeds:
        raise ConfigError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}")
    seeds = [validation.non_negative_int("seeds entries", s) for s in seeds]
    config, data = _setup(config, data, overrides)
    members = []
    for seed in seeds:
        engine = _engine(dataclasses.replace(config, seed=seed), data)
        result = engine.run()
        model = engine.task.model
        model._name = f"seed{seed}"
        log(f"seed {seed}: final epoch loss {result.metrics['final_train_loss']:.4f}, "
            f"test accuracy {result.metrics['test_accuracy']:.4f}")
        members.append(model)
    return members


@dataclasses.dataclass
class SnapshotEnsemble:
    """Result of :func:`train_snapshot_ensemble`.

    ``snapshots``: the M weight lists (``model.get_weights()`` order) saved at the end of each
    cycle; ``snapshot_steps``: the step count at each snapshot; ``learning_rates`` ``(T,)``: the
    rate the optimizer applied at each step; ``model``: the trained model (holding the last
    snapshot); ``config`` and ``data``: what it was trained with.
    """

    snapshots: list
    snapshot_steps: list
    learning_rates: np.ndarray
    model: tf.keras.Model
    config: config_lib.TrainConfig
    data: object

    def models(self):
        """One Keras model per snapshot."""
        info = self.data.info
        built = []
        for i, weights in enumerate(self.snapshots):
            model = build_model(self.config, info.image_shape, info.num_classes)
            model.set_weights(weights)
            model._name = f"snapshot_{i + 1}"
            built.append(model)
        return built

    def evaluate(self, split="test", last=None):
        """:class:`EnsemblePrediction` of the last ``last`` snapshots (default all) on ``split``."""
        members = self.models()
        if last is not None:
            last = validation.int_in("last", last, 1, len(members))
            members = members[-last:]
        return average_predictions(members, self.data.split(split))


def train_snapshot_ensemble(config=None, cycles=5, data=None, log=_say, **overrides):
    """Train one model with ``cycles`` cosine cycles and keep a snapshot at the end of each.

    ``config`` (:class:`TrainConfig`, fields overridable by keyword) gives the model, data,
    optimizer, batch size, seed and weight decay; ``config.lr`` is the cycles' peak rate
    ``lr_max`` and ``config.epochs`` the whole budget, which must be a multiple of ``cycles`` so
    that snapshots fall on epoch ends. Huang et al. used SGD with Nesterov momentum
    (``optimizer="nesterov"``, ``lr=0.1`` on CIFAR). Returns :class:`SnapshotEnsemble`.
    """
    config, data = _setup(config, data, overrides)
    cycles = validation.positive_int("cycles", cycles)
    if config.epochs % cycles:
        raise ConfigError(f"epochs ({config.epochs}) must be a multiple of cycles ({cycles}) so that every "
                          "cycle ends on an epoch boundary")
    if config.lr_schedule != "constant" or config.warmup_epochs:
        raise ConfigError("a snapshot ensemble sets its own cyclic cosine rate; leave lr_schedule 'constant' "
                          "without warm-up (lr is the cycles' peak)")
    steps_per_epoch = data.steps_per_epoch(config.batch_size)
    total = max(config.epochs * steps_per_epoch, 1)
    schedule = CyclicCosine(config.lr, total, cycles)
    rates, snapshots = _RecordRates(total), _Snapshots(config.epochs // cycles)

    def optimizer(_):
        return make_optimizer(config.optimizer, schedule, config.clip_norm, config.clip_value)

    engine = _engine(config, data, hooks=[rates, snapshots], optimizer=optimizer)
    engine.run()
    for i, step in enumerate(snapshots.steps):
        log(f"cycle {i + 1}/{cycles}: snapshot at step {step}")
    return SnapshotEnsemble(snapshots.weights, snapshots.steps, rates.rates.numpy()[:engine.state.step.numpy()],
                            engine.task.model, config, data)


@dataclasses.dataclass
class AveragedRun:
    """Result of :func:`train_averaged`: the trained ``model``, its ``averager`` and the ``data``."""

    model: tf.keras.Model
    averager: WeightAverager
    config: config_lib.TrainConfig
    data: object

    def accuracy(self, split="test", averaged=True, recompute_batchnorm=False):
        """Accuracy on ``split`` with the averaged (default) or the final weights.

        ``recompute_batchnorm``: re-estimate the batchnorm statistics of the averaged weights on
        one pass over the training data (see :meth:`WeightAverager.swap_in`).
        """
        bn_data = self.data.train_epoch(0, self.config.seed, self.config.batch_size) if recompute_batchnorm else None
        with (self.averager.swap_in(batchnorm_data=bn_data) if averaged else contextlib.nullcontext()):
            logits, labels = predict_logits(self.model, self.data.split(split))
        return float((logits.argmax(-1) == labels).mean())


def train_averaged(config=None, decay=None, start_epoch=0, data=None, log=_say, **overrides):
    """Train with a :class:`WeightAverager` updated after every step from ``start_epoch`` on.

    ``decay=None`` is Polyak's running mean of the iterates (best started late, once the loss has
    settled), a float an exponential moving average. Returns :class:`AveragedRun`.
    """
    config, data = _setup(config, data, overrides)
    start_epoch = validation.int_in("start_epoch", start_epoch, 0, config.epochs - 1)
    hook = _Average(decay, start_epoch)
    engine = _engine(config, data, hooks=[hook])
    result = engine.run()
    log(f"trained {config.epochs} epoch(s): final epoch loss {result.metrics['final_train_loss']:.4f}; "
        f"{int(hook.averager.count.numpy())} steps averaged")
    return AveragedRun(engine.task.model, hook.averager, config, data)
