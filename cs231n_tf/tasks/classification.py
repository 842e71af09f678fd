"""Image classification as an engine task: softmax cross-entropy over a registry model.

The step (``train_step``): cross-entropy of the logits (cast to float32, so mixed-precision
models never compute the loss in float16) averaged over the global batch, plus the configured
penalty (:mod:`cs231n_tf.train.regularizers`) and the model's own losses scaled by the replica
count, minimised through ``ctx.minimize`` (loss scaling under ``mixed_float16``). Gradient
clipping is the Keras optimizer's own ``global_clipnorm`` / ``clipvalue``: inside
``apply_gradients`` the optimizer first all-reduces the replicas' gradients and only then clips,
so under ``MirroredStrategy`` the *aggregated* gradient is clipped, and under ``mixed_float16`` the
``LossScaleOptimizer`` hands the inner optimizer unscaled gradients.

Learning-rate schedules are functions of the optimizer's step counter, which the checkpoint holds,
so a resumed run continues the schedule where it stopped. The data order of an epoch depends only
on ``(seed, epoch)`` (:meth:`DataSplits.train_epoch`), so a resumed run sees the same batches.

A task can also be given a ready ``model`` and ``optimizer`` (compression fine-tuning, the
ensemble tools), and a ``loss_fn(logits, labels, x) -> per-example loss`` replacing the
cross-entropy (distillation).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from cs231n_tf import models as model_registry
from cs231n_tf.data.augment import Augmenter
from cs231n_tf.engine.task import Task
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.optim import keras as course_optimizers
from cs231n_tf.optim.schedules import make_schedule
from cs231n_tf.train import config as config_lib
from cs231n_tf.train import regularizers
from cs231n_tf.train.initializers import get_initializer


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
    makers = {
        "sgd": lambda: opt.SGD(lr, **clip),
        "momentum": lambda: opt.SGD(lr, momentum=0.9, **clip),
        "nesterov": lambda: opt.SGD(lr, momentum=0.9, nesterov=True, **clip),
        "adagrad": lambda: opt.Adagrad(lr, **clip),
        "rmsprop": lambda: opt.RMSprop(lr, rho=0.99, epsilon=1e-8, **clip),
        "adam": lambda: opt.Adam(lr, **clip),
        "adamw": lambda: opt.AdamW(lr, **clip),
    }
    if name not in makers:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(config_lib.OPTIMIZERS)}")
    return makers[name]()


def make_learning_rate(config, steps_per_epoch):
    """The configured learning rate: ``config.lr`` itself, or a schedule over the run's steps.

    The run has ``config.epochs * steps_per_epoch`` steps; epochs given for the decay and the
    warm-up are converted to steps with ``round``. A constant rate without warm-up stays a plain
    float, so runs without a schedule keep their checkpoint layout. The schedule is evaluated at the
    optimizer's restored step counter, so a resumed run continues it; resuming with a different
    ``epochs`` re-spreads cosine/exponential/default-step schedules over the new length from the
    current step on.
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


def build_model(config, input_shape, num_classes):
    """Build the configured model under its dtype policy (float32 outputs), restoring the global policy after.

    ``config.init`` goes to the builder's ``kernel_initializer`` as a serialised config, so every
    layer deserialises its own initializer and draws its own weights.
    """
    options = dict(config.model_options)
    if getattr(config, "init", None) is not None:
        accepted = model_registry.get_spec(config.model).options()
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
        model = model_registry.build(config.model, input_shape, num_classes, **options)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    if model.output.dtype != tf.float32:
        # Mixed precision: hand out float32 logits (the Keras mixed-precision guide's float32 output
        # layer), so losses, softmax and exports never see float16/bfloat16 values.
        outputs = tf.keras.layers.Activation("linear", dtype="float32", name="logits_float32")(model.output)
        model = tf.keras.Model(model.inputs, outputs, name=model.name)
    return model


class ClassificationTask(Task):
    """Softmax classification of ``config.dataset`` with ``config.model`` (a :class:`TrainConfig`).

    ``data``: already loaded ``DataSplits`` (default: :func:`cs231n_tf.train.config.load_data`).
    ``model`` / ``optimizer``: use these instead of building from the config (``optimizer`` may be
    a callable ``steps_per_epoch -> optimizer``). ``loss_fn(logits, labels, x)``: per-example loss
    replacing the cross-entropy. ``gradient_masks``: ``{variable.ref(): 0/1 mask}`` multiplied into
    the gradients (sparse training). ``config.adversarial``: FGSM/PGD adversarial training
    (:mod:`cs231n_tf.adversarial.training`), the examples made inside the compiled step.
    """

    name = "classification"
    # What a hyperparameter search may optimise (metrics.json keys) and in which direction.
    objectives = {"val_accuracy": "maximize", "val_loss": "minimize", "test_accuracy": "maximize",
                  "test_loss": "minimize", "final_train_loss": "minimize"}
    default_objective = "val_accuracy"

    @staticmethod
    def config_class():
        return config_lib.TrainConfig

    @staticmethod
    def data_key(config):
        """Configs with equal keys load the same data (a search loads it once for all its trials)."""
        return (config.dataset, config.data_dir, config.validation_fraction, config.split_seed, config.preprocessing)

    @staticmethod
    def load_data(config):
        return config_lib.load_data(config)

    @classmethod
    def run_trial(cls, config, run_dir, resume=False, data=None, log=None):
        """Train ``config`` into ``run_dir`` on the engine (one search trial); returns metrics.json's dict."""
        from cs231n_tf.engine import Engine

        return Engine(cls(config, data=data), run_dir, resume=resume, log=log or (lambda _message: None)).run().metrics

    def __init__(self, config, data=None, model=None, optimizer=None, loss_fn=None, gradient_masks=None,
                 train_data=None, eval_data=None, evaluate=True):
        super().__init__(config.validate())
        if not evaluate:  # tools that only train (sanity checks, the range test) skip evaluation
            self.final_splits, self.epoch_split = (), None
        self.data = data
        self.train_data = train_data
        self.eval_data = dict(eval_data or {})
        self._given_model = model
        self._given_optimizer = optimizer
        self.loss_fn = loss_fn
        self.gradient_masks = gradient_masks
        self.augmenter = None
        self.model = self.optimizer = self.lr_schedule = None
        self.adversarial = None
        if config.adversarial is not None:
            from cs231n_tf.adversarial.training import AdversarialTraining

            self.adversarial = AdversarialTraining.from_config(config)

    # ---- data ---------------------------------------------------------------------------------

    def prepare(self):
        config = self.config
        if self.train_data is not None:
            self._given_steps = _count_batches(self._epoch_data(0))
            return
        if self.data is None:
            self.data = config_lib.load_data(config)
        info = self.data.info
        if info.preprocessing != config.preprocessing:
            raise ConfigError(f"the data given was loaded with preprocessing={info.preprocessing!r} but the "
                              f"config asks for {config.preprocessing!r}")
        if config.augment:
            self.augmenter = Augmenter(config.augment, train_images=self.data.arrays["x_train"],
                                       pixel_max=info.pixel_max)

    def _epoch_data(self, epoch):
        data = self.train_data(epoch) if callable(self.train_data) else self.train_data
        if not isinstance(data, tf.data.Dataset):
            raise InputTypeError(f"train_data must be a tf.data.Dataset or a callable epoch -> dataset, "
                                 f"got {type(data).__name__}")
        return data

    def steps_per_epoch(self):
        if self.train_data is not None:
            if not self._given_steps:
                raise ConfigError("train_data yielded no batches")
            return self._given_steps
        steps = self.data.steps_per_epoch(self.config.batch_size)
        if steps == 0:
            raise ConfigError(f"batch_size {self.config.batch_size} is larger than the "
                              f"{self.data.info.num_train} training examples")
        return steps

    def train_dataset(self, epoch, skip_batches=0):
        if self.train_data is not None:
            return self._epoch_data(epoch).skip(skip_batches)
        return self.data.train_epoch(epoch, self.config.seed, self.config.batch_size, skip_batches=skip_batches,
                                     augment=self.augmenter)

    def eval_dataset(self, split):
        if self.data is None:
            return self.eval_data.get(split)
        if split == "validation" and not self.data.info.num_validation:
            return None
        return self.data.split(split)

    # ---- models and steps ---------------------------------------------------------------------

    def build(self, ctx):
        config = self.config
        if self._given_model is not None:
            self.model = self._given_model
        else:
            info = self.data.info
            self.model = build_model(config, info.image_shape, info.num_classes)
        if self._given_optimizer is None:
            self.lr_schedule = make_learning_rate(config, self.steps_per_epoch())
            optimizer = make_optimizer(config.optimizer, self.lr_schedule, config.clip_norm, config.clip_value)
        else:
            optimizer = self._given_optimizer
            if callable(optimizer) and not isinstance(optimizer, tf.keras.optimizers.Optimizer):
                optimizer = optimizer(self.steps_per_epoch())
            self.lr_schedule = getattr(optimizer, "learning_rate", None)
        # The optimizer's slots cover every variable the model can train, frozen or not, so a run
        # whose frozen set changes between phases (fine-tuning) checkpoints and resumes one layout.
        slot_variables = list(self.model.trainable_variables)
        if config.frozen_layers:
            names = [layer.name for layer in self.model.layers]
            unknown = [n for n in config.frozen_layers if n not in names]
            if unknown:
                raise ConfigError(f"frozen_layers names layer(s) {', '.join(unknown)} that model "
                                  f"{self.model.name!r} does not have")
            for name in config.frozen_layers:
                self.model.get_layer(name).trainable = False
        self.optimizer = ctx.optimizer(optimizer)
        self.optimizer.build(slot_variables)
        self._decayed = regularizers.decayed_variables(self.model)
        self.loss_metric = tf.keras.metrics.Mean("loss")
        self.accuracy_metric = tf.keras.metrics.SparseCategoricalAccuracy("accuracy")
        self.eval_loss = tf.keras.metrics.Mean("loss")
        self.eval_accuracy = tf.keras.metrics.SparseCategoricalAccuracy("accuracy")
        if self.adversarial is not None:
            self.adv_accuracy_metric = tf.keras.metrics.SparseCategoricalAccuracy("adv_accuracy")
            # The attack works in pixel units: undo the pipeline's normalisation (none for given data).
            normalized = self.data is not None and self.data.normalize
            info = self.data.info if normalized else None
            self._unit_stats = tuple(tf.constant(np.asarray(v, np.float32)) for v in
                                     ((info.mean, info.std) if normalized else (0.0, 1.0)))

    def models(self):
        return {"model": self.model}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def metrics(self):
        extra = [self.adv_accuracy_metric] if self.adversarial is not None else []
        return [self.loss_metric, self.accuracy_metric] + extra

    def eval_metrics(self):
        return [self.eval_loss, self.eval_accuracy]

    def per_example_loss(self, logits, y, x):
        if self.loss_fn is not None:
            return tf.cast(self.loss_fn(logits, y, x), tf.float32)
        return tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)

    def regularization(self):
        """The configured penalty plus the model's own losses (the same on every replica)."""
        config = self.config
        return regularizers.regularization_loss(self.model, self._decayed, config.penalty, config.weight_decay,
                                                config.l1_ratio)

    def _adversarial_inputs(self, x, y, ctx):
        adv = self.adversarial
        step = tf.zeros([], tf.int64) if ctx.step is None else tf.cast(ctx.step, tf.int64)
        seed = step + tf.constant(self.config.seed, tf.int64) * (1 << 32)
        x_adv = adv.examples(self.model, x, y, *self._unit_stats, seed, ctx.num_replicas)
        clean_logits = None
        if adv.ratio == 1.0:  # only the adversarial examples are trained on; clean accuracy still reported
            clean_logits = tf.cast(self.model(x, training=False), tf.float32)
        return x_adv, clean_logits

    def _adversarial_loss(self, x, x_adv, y, clean_logits):
        from cs231n_tf.adversarial.training import mixed_loss

        ratio = self.adversarial.ratio
        if clean_logits is None:  # one forward pass over clean and adversarial examples together
            n = tf.shape(x)[0]
            both = tf.cast(self.model(tf.concat([x, x_adv], 0), training=True), tf.float32)
            clean_logits, adv_logits = both[:n], both[n:]
            clean_loss = self.per_example_loss(clean_logits, y, x)
        else:
            adv_logits = tf.cast(self.model(x_adv, training=True), tf.float32)
            clean_loss = None
        per_example = mixed_loss(clean_loss, self.per_example_loss(adv_logits, y, x_adv), ratio)
        self.adv_accuracy_metric.update_state(y, adv_logits)
        return clean_logits, per_example

    def train_step(self, batch, ctx):
        x, y = batch
        model = self.model
        if self.adversarial is not None:
            x_adv, clean_logits = self._adversarial_inputs(x, y, ctx)
        with tf.GradientTape() as tape:
            if self.adversarial is None:
                logits = tf.cast(model(x, training=True), tf.float32)
                per_example = self.per_example_loss(logits, y, x)
            else:
                logits, per_example = self._adversarial_loss(x, x_adv, y, clean_logits)
            reg = self.regularization()
            # Given data sets may end on a smaller batch: average over the batch actually seen.
            batch_size = None if self.train_data is None else tf.shape(y)[0] * ctx.num_replicas
            loss = ctx.mean(per_example, batch_size) + ctx.scale_regularization(reg)
        transform = None
        if self.gradient_masks:
            masks = self.gradient_masks
            variables = model.trainable_variables

            def transform(grads):
                return [g * masks[v.ref()] if v.ref() in masks and g is not None else g
                        for g, v in zip(grads, variables)]

        ctx.minimize(tape, loss, model.trainable_variables, self.optimizer, gradient_transform=transform)
        self.loss_metric.update_state(per_example + reg)
        self.accuracy_metric.update_state(y, logits)
        return {"loss": loss, "accuracy": ctx.replica_share(
            tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(y, tf.int32)),
                                   tf.float32)))}

    def eval_step(self, batch, ctx):
        x, y = batch
        logits = tf.cast(self.model(x, training=False), tf.float32)
        self.eval_loss.update_state(tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
        self.eval_accuracy.update_state(y, logits)
        return {}

    # ---- reporting and export -----------------------------------------------------------------

    def run_config(self):
        if self.data is None:  # given model and data: recorded, but not rebuilt from the registry
            return {"train": self.config.to_json(), "model": {"name": self.model.name, "given": True}}
        info = self.data.info
        config = self.config
        # Recorded as the model is when the run starts (a fine-tuning phase freezes after building).
        frozen = [layer.name for layer in self.model.layers if layer.weights and not layer.trainable]
        return {"train": dict(config.to_json(), frozen_layers=frozen or None), "data": info.to_json(),
                "model": {"name": config.model, "options": config.model_options,
                          "input_shape": list(info.image_shape), "num_classes": int(info.num_classes)}}

    def learning_rate(self, step):
        """The rate the optimizer used for update number ``step`` (0-based)."""
        lr = self.lr_schedule
        if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
            lr = lr(tf.constant(step, tf.int64))
        return float(tf.convert_to_tensor(lr).numpy())

    def log_scalars(self, step):
        return {"learning_rate": self.learning_rate(max(step - 1, 0))}

    def describe(self):
        if self.data is None:
            return f"training {self.model.name} on the given data"
        info = self.data.info
        return f"training {self.config.model} on {self.config.dataset} ({info.num_train} examples)"

    def serving_module(self):
        from cs231n_tf.export.exporter import ServingModule

        info = self.data.info
        return ServingModule(self.model, info.mean, info.std, info.image_shape)


def _count_batches(dataset):
    cardinality = int(dataset.cardinality().numpy())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ConfigError("train_data is infinite; give one epoch's batches (e.g. .take(n))")
    if cardinality >= 0:
        return cardinality
    return int(dataset.reduce(np.int64(0), lambda n, _: n + 1).numpy())


def train_model(model, train_data, epochs, optimizer, *, loss_fn=None, gradient_masks=None, eval_data=None,
                hooks=(), run_dir=None, resume=False, log=None, **settings):
    """Train a ready Keras classifier on the engine, in place; returns the :class:`EngineResult`.

    The shared fine-tuning entry point of the compression and training tools. ``train_data``: a
    ``tf.data.Dataset`` of ``(inputs, integer labels)`` batches, or a callable ``epoch -> dataset``
    (its own shuffle per epoch). ``optimizer``: a Keras optimizer (wrapped for mixed precision by the
    engine). ``eval_data``: ``{split: dataset}`` evaluated at epoch ends (``validation``) and at
    the end (``test``). ``settings`` are :class:`TrainConfig` fields the engine reads (``seed``,
    ``strategy``, ``steps_per_execution``, ``xla``, ``weight_decay``...). ``run_dir=None`` keeps
    everything in memory; with a directory the run checkpoints and ``resume`` continues it.
    ``history = [r["train_loss"] for r in result.metrics["history"]]``.
    """
    from cs231n_tf.engine import Engine

    if not isinstance(model, tf.keras.Model):
        raise InputTypeError(f"model must be a tf.keras.Model, got {type(model).__name__}")
    config = with_overrides(config_lib.TrainConfig(), epochs=epochs, **settings)
    task = ClassificationTask(config, model=model, optimizer=optimizer, loss_fn=loss_fn,
                              gradient_masks=gradient_masks, train_data=train_data, eval_data=eval_data)
    return Engine(task, run_dir, resume=resume, log=log, hooks=hooks, progress=False).run()


def epoch_losses(result):
    """The mean training loss of every epoch of an :class:`EngineResult`."""
    return [r["train_loss"] for r in result.metrics["history"]]


def with_overrides(config, **overrides):
    """``dataclasses.replace`` that reports unknown fields as :class:`ConfigError`."""
    try:
        return dataclasses.replace(config, **overrides)
    except TypeError as exc:
        raise ConfigError(f"unknown TrainConfig field: {exc}") from None


def trainable_params(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))
