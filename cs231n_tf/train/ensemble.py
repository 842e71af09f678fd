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

The independent, snapshot and averaging runs use a small ``tf.function`` loop of their own: one
graph call per epoch (the loop over the epoch's batches runs inside the graph), the same loss as
the package's trainer (mean cross-entropy, model losses, ``0.5 * weight_decay * sum(w**2)`` over
kernels) and the same data order (:meth:`DataSplits.train_epoch` fixed by ``(seed, epoch)``). They
run on one device in float32 and keep their results in memory; :class:`TrainConfig` options the
loop does not implement (schedules, clipping, augmentation, mixed precision, strategies...) raise
``ConfigError``. For checkpointed or distributed members use :func:`cs231n_tf.train.train` per
seed and pass the run directories to :func:`average_predictions`.
"""

import contextlib
import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, DataError, InputTypeError, ShapeError
from cs231n_tf.train import config as config_lib
from cs231n_tf.train.evaluate import load_run, predict_logits
from cs231n_tf.train.regularizers import decayed_variables, regularization_loss
from cs231n_tf.train.trainer import build_model, make_optimizer


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
        if not (isinstance(lr_max, (int, float)) and lr_max > 0):
            raise ConfigError(f"lr_max must be a positive number, got {lr_max!r}")
        for name, value in (("total_steps", total_steps), ("cycles", cycles)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if cycles > total_steps:
            raise ConfigError(f"cycles ({cycles}) cannot exceed total_steps ({total_steps})")
        self.lr_max, self.total_steps, self.cycles = float(lr_max), total_steps, cycles
        self.period = math.ceil(total_steps / cycles)

    def __call__(self, step):
        t = tf.cast(tf.math.floormod(tf.cast(step, tf.int64), self.period), tf.float32)
        return self.lr_max / 2.0 * (tf.cos(math.pi * t / self.period) + 1.0)

    def get_config(self):
        return {"lr_max": self.lr_max, "total_steps": self.total_steps, "cycles": self.cycles}


class _Loop:
    """A one-device ``tf.function`` loop with the trainer's loss; one graph call per epoch."""

    def __init__(self, config, data, learning_rate, after_step=None):
        self.config, self.data = config, data
        tf.keras.utils.set_random_seed(config.seed)
        info = data.info
        self.model = build_model(config, info.image_shape, info.num_classes)
        self.optimizer = make_optimizer(config.optimizer, learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        self.steps_per_epoch = data.steps_per_epoch(config.batch_size)
        if self.steps_per_epoch == 0:
            raise ConfigError(f"batch_size {config.batch_size} is larger than the {info.num_train} training examples")
        decayed = decayed_variables(self.model)
        model, optimizer, weight_decay = self.model, self.optimizer, float(config.weight_decay)

        @tf.function
        def run_epoch(iterator, steps):
            rates = tf.TensorArray(tf.float32, size=steps)
            total = tf.constant(0.0)
            for i in tf.range(steps):
                x, y = next(iterator)
                with tf.GradientTape() as tape:
                    logits = tf.cast(model(x, training=True), tf.float32)
                    loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
                    loss += regularization_loss(model, decayed, "l2", weight_decay)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                # After apply_gradients the optimizer's learning_rate is the rate it just used.
                rates = rates.write(i, tf.cast(optimizer.learning_rate, tf.float32))
                total += loss
                if after_step is not None:
                    after_step()
            return rates.stack(), total / tf.cast(steps, tf.float32)

        self._run_epoch = run_epoch

    def epoch(self, epoch):
        ds = self.data.train_epoch(epoch, self.config.seed, self.config.batch_size)
        rates, loss = self._run_epoch(iter(ds), tf.constant(self.steps_per_epoch))
        return rates.numpy(), float(loss)

    def accuracy(self, split):
        logits, labels = predict_logits(self.model, self.data.split(split))
        return float((logits.argmax(-1) == labels).mean())


# TrainConfig fields the loop implements, and fields that only tune the trainer's bookkeeping.
_LOOP_FIELDS = {"model", "model_options", "dataset", "data_dir", "validation_fraction", "split_seed", "epochs",
                "batch_size", "optimizer", "lr", "weight_decay", "seed"}
_BOOKKEEPING_FIELDS = {"xla", "deterministic", "log_every", "checkpoint_every", "keep_checkpoints",
                       "steps_per_execution"}


def _setup(config, data, overrides):
    try:
        config = dataclasses.replace(config or config_lib.TrainConfig(), **overrides).validate()
    except TypeError as exc:
        raise ConfigError(f"unknown TrainConfig field: {exc}") from None
    # Fail loudly rather than silently train something other than what the config says.
    defaults = config_lib.TrainConfig()
    unsupported = [f.name for f in dataclasses.fields(config)
                   if f.name not in _LOOP_FIELDS | _BOOKKEEPING_FIELDS
                   and getattr(config, f.name) != getattr(defaults, f.name)]
    if unsupported:
        raise ConfigError(f"the ensemble loop does not implement {', '.join(unsupported)}; it supports "
                          f"{', '.join(sorted(_LOOP_FIELDS))} (train checkpointed members with "
                          "cs231n_tf.train.train and pass their run directories to average_predictions)")
    data = data or config_lib.load_data(config)
    return config, data


def train_independent(config=None, seeds=(0, 1, 2), data=None, log=_say, **overrides):
    """Train one model per seed (different initialisation, dropout masks and data order).

    The members of a classic ensemble; average them with :func:`average_predictions`. Returns the
    models, named ``seed<N>``. For checkpointed members, use :func:`cs231n_tf.train.train` per seed
    and pass the run directories instead.
    """
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}")
    config, data = _setup(config, data, overrides)
    members = []
    for seed in seeds:
        loop = _Loop(dataclasses.replace(config, seed=seed), data, config.lr)
        for epoch in range(config.epochs):
            _, loss = loop.epoch(epoch)
        loop.model._name = f"seed{seed}"
        log(f"seed {seed}: final epoch loss {loss:.4f}, test accuracy {loop.accuracy('test'):.4f}")
        members.append(loop.model)
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
            if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= len(members):
                raise ConfigError(f"last must be an int in 1..{len(members)}, got {last!r}")
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
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
        raise ConfigError(f"cycles must be a positive int, got {cycles!r}")
    if config.epochs % cycles:
        raise ConfigError(f"epochs ({config.epochs}) must be a multiple of cycles ({cycles}) so that every "
                          "cycle ends on an epoch boundary")
    steps_per_epoch = data.steps_per_epoch(config.batch_size)
    schedule = CyclicCosine(config.lr, max(config.epochs * steps_per_epoch, 1), cycles)
    loop = _Loop(config, data, schedule)
    epochs_per_cycle = config.epochs // cycles
    snapshots, steps, rates = [], [], []
    for epoch in range(config.epochs):
        epoch_rates, loss = loop.epoch(epoch)
        rates.append(epoch_rates)
        if (epoch + 1) % epochs_per_cycle == 0:
            snapshots.append(loop.model.get_weights())
            steps.append((epoch + 1) * loop.steps_per_epoch)
            log(f"cycle {len(snapshots)}/{cycles} (epoch {epoch + 1}): loss {loss:.4f}, snapshot "
                f"val_acc {loop.accuracy('validation') if data.info.num_validation else float('nan'):.4f}")
    return SnapshotEnsemble(snapshots, steps, np.concatenate(rates), loop.model, config, data)


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
    if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or not 0 <= start_epoch < config.epochs:
        raise ConfigError(f"start_epoch must be an int in 0..{config.epochs - 1}, got {start_epoch!r}")
    holder = {}
    averaging = tf.Variable(False, trainable=False)

    def update():
        holder["averager"].update()
        return tf.constant(True)

    def after_step():
        tf.cond(averaging, update, lambda: tf.constant(False))

    loop = _Loop(config, data, config.lr, after_step=after_step)
    holder["averager"] = averager = WeightAverager(loop.model, decay)
    for epoch in range(config.epochs):
        if epoch == start_epoch:
            # The average starts from the weights reached so far.
            for average, variable in zip(averager.averages, averager.variables):
                average.assign(variable)
            averaging.assign(True)
        _, loss = loop.epoch(epoch)
        log(f"epoch {epoch + 1}/{config.epochs}: loss {loss:.4f}")
    return AveragedRun(loop.model, averager, config, data)
