"""The training configuration and the run directory that records it."""

import dataclasses
import datetime
import os

from cs231n_tf.errors import ConfigError, RunDirError

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw",
              "course_sgd", "course_momentum", "course_nesterov", "course_adagrad", "course_rmsprop", "course_adam")
LR_SCHEDULES = ("constant", "step", "exponential", "cosine")
PENALTIES = ("l2", "l1", "elastic")
PREPROCESSING = ("channel", "mean_image", "model")
MIXED_PRECISION = (None, "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")
ADVERSARIAL = (None, "fgsm", "pgd")
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"


def _flag(default, help, kind=None, choices=None, factory=None, flag="", group="optimisation", metavar=None,
          **extra):
    """A config field that carries its command-line flag: help, value kind, choices (see cs231n_tf.cli.args).

    ``flag=None``: no flag; ``""``: ``--field-name``. The default and the choices live only here.
    """
    metadata = {"help": help, "kind": kind, "choices": choices, "flag": flag, "group": group, "metavar": metavar,
                **extra}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class TrainConfig:
    """Everything that determines a training run. Saved as ``config.json`` in the run directory.

    ``batch_size`` is the global batch, split evenly over the strategy's replicas. ``checkpoint_every``
    is in steps (0 = at the end of every epoch only). ``max_steps`` stops early (the run can be
    resumed later). Fields added later have defaults, so older ``config.json`` files still load.

    Optimisation: ``optimizer`` is a Keras optimizer by the course's name (``sgd`` ... ``adamw``) or
    the course's own update rules as Keras optimizers (``course_sgd`` ... ``course_adam``, see
    :mod:`cs231n_tf.optim.keras`). ``lr_schedule`` (:func:`cs231n_tf.optim.schedules.make_schedule`
    over ``epochs * steps_per_epoch`` steps): ``constant``; ``step`` (multiply by
    ``lr_decay_factor`` every ``lr_decay_epochs`` epochs, or at the steps in ``lr_boundaries``;
    neither: at 50% and 75% of the run); ``exponential`` / ``cosine`` (down to ``lr_final``,
    default lr/100 and 0). ``warmup_epochs`` ramps linearly from 0 to ``lr`` first.
    ``clip_norm`` clips the gradient's global norm (``tf.clip_by_global_norm``), ``clip_value``
    each element; at most one of them.

    Regularisation: ``penalty`` (``l2``: ``0.5 * weight_decay * sum(w**2)``, gradient
    ``weight_decay * w``; ``l1``: ``weight_decay * sum|w|``; ``elastic``: mix with ``l1_ratio``) over
    kernels and embeddings, not biases or norm parameters (:mod:`cs231n_tf.train.regularizers`).
    ``init`` is a course initialiser name (:mod:`cs231n_tf.train.initializers`) for the builder's
    ``kernel_initializer``.

    Data: ``augment`` lists training augmentations (:mod:`cs231n_tf.data.augment`, e.g.
    ``["flip", "crop:4"]``); ``preprocessing`` is ``channel`` (per-channel mean/std) or
    ``mean_image`` (subtract the per-pixel mean image) or ``model`` (the fixed normalisation a pretrained
    model's weights were trained with, its registry spec's ``input_stats``); ``image_size``
    ``[H, W]`` resizes ``folder:`` images.

    ``frozen_layers``: names of the model's layers kept frozen (not trainable; BatchNormalization
    in inference mode). A fine-tuned run records its frozen layers here, so resuming it trains what
    the fine-tuning trained.

    Adversarial training (:mod:`cs231n_tf.adversarial.training`): ``adversarial`` is ``fgsm`` or
    ``pgd`` (``None``: off); the loss is ``(1 - adv_ratio) * clean + adv_ratio * adversarial`` with
    examples in the L-inf ball of radius ``adv_eps`` (pixel units of [0, 1]); PGD takes ``adv_steps``
    steps of ``adv_step_size`` from a random start.
    """

    model: str = _flag("small_convnet", "model name from `cs231n-tf models`", group="model and data")
    model_options: dict = _flag(None, "builder option, repeatable, e.g. --model-option dropout=0.5 "
                                "--model-option hidden_dims=[64,32]", kind="model_option", factory=dict,
                                flag="--model-option", group="model and data")
    dataset: str = _flag("digits", "digits (embedded), mnist, fashion_mnist, cifar10, cifar100, folder:PATH, npz:PATH",
                         group="model and data")
    data_dir: str = _flag(None, "where tfds data sets live ($TFDS_DATA_DIR or ~/tensorflow_datasets)",
                          group="model and data")
    validation_fraction: float = _flag(0.1, "share of training data held out", kind="non_negative_float",
                                       group="model and data")
    split_seed: int = _flag(0, "seed of the train/validation split", kind="non_negative_int", flag=None)
    epochs: int = _flag(30, "number of epochs", kind="positive_int")
    batch_size: int = _flag(64, "global batch size, split over replicas", kind="positive_int")
    optimizer: str = _flag("adam", "Keras's sgd ... adamw, or the course's update rules course_sgd ... course_adam",
                           choices=OPTIMIZERS)
    lr: float = _flag(1e-3, "learning rate, the peak of any schedule", kind="positive_float")
    weight_decay: float = _flag(0.0, "penalty strength wd on kernels, not biases/norms; see --penalty",
                                kind="non_negative_float")
    seed: int = _flag(0, "random seed", kind="non_negative_int")
    xla: bool = _flag(False, "compile the train step with XLA (jit_compile)", kind="bool", group="performance and devices")
    mixed_precision: str = _flag(None, "mixed precision policy (float16 uses dynamic loss scaling)",
                                 choices=MIXED_PRECISION, group="performance and devices")
    strategy: str = _flag("default", "tf.distribute strategy (multi_worker reads TF_CONFIG)", choices=STRATEGIES,
                          group="performance and devices")
    steps_per_execution: int = _flag(1, "train steps per tf.function call", kind="positive_int",
                                     group="performance and devices")
    checkpoint_every: int = _flag(0, "also checkpoint every N steps (0: at the end of each epoch only)",
                                  kind="non_negative_int", group="run directory and checkpoints")
    keep_checkpoints: int = _flag(3, "checkpoints kept", kind="positive_int", group="run directory and checkpoints")
    max_steps: int = _flag(None, "stop after this many steps (resumable)", kind="positive_int")
    deterministic: bool = _flag(False, "enable TensorFlow op determinism", kind="bool", group="performance and devices")
    log_every: int = _flag(50, "TensorBoard scalars every N steps", kind="positive_int",
                           group="run directory and checkpoints")
    lr_schedule: str = _flag("constant", "learning-rate schedule over epochs*steps_per_epoch steps", choices=LR_SCHEDULES)
    lr_decay_factor: float = _flag(0.1, "step schedule: multiply the rate by this", kind="positive_float")
    lr_decay_epochs: float = _flag(None, "step schedule: decay every this many epochs (unset: at 50%% and 75%% of the run)",
                                   kind="positive_float")
    lr_boundaries: list = _flag(None, "step schedule: decay at these optimizer steps, e.g. 32000,48000",
                                kind="step_list", metavar="STEP,STEP,...")
    lr_final: float = _flag(None, "exponential/cosine schedule: rate at the last step (unset: lr/100 and 0)",
                            kind="non_negative_float")
    warmup_epochs: float = _flag(0.0, "linear warm-up from 0 to --lr", kind="non_negative_float")
    clip_norm: float = _flag(None, "clip the gradient's global norm to this (tf.clip_by_global_norm)",
                             kind="positive_float")
    clip_value: float = _flag(None, "clip each gradient element to [-v, v]", kind="positive_float")
    penalty: str = _flag("l2", "l2: 0.5*wd*sum(w^2); l1: wd*sum|w|; elastic: wd*(r*sum|w| + (1-r)*0.5*sum(w^2))",
                         choices=PENALTIES)
    l1_ratio: float = _flag(0.5, "elastic penalty: the L1 share r", kind="unit_float")
    init: str = _flag(None, "kernel initializer: small_random, large_random, xavier, he, xavier_uniform, he_uniform, "
                            "... or a Keras initializer name (unset: the model's own)")
    augment: list = _flag(None, "training augmentation: flip, crop[:PAD] (4), resized_crop[:MIN_AREA], "
                                "color[:STRENGTH], pca_lighting[:SIGMA]; e.g. --augment flip,crop",
                          kind="name_list", factory=list, metavar="NAME[:V],...")
    preprocessing: str = _flag("channel", "channel: per-channel mean/std; mean_image: subtract the per-pixel mean "
                               "image; model: the pretrained model's own normalisation", choices=PREPROCESSING)
    image_size: list = _flag(None, "resize folder: images to S or H,W pixels", kind="image_size",
                             metavar="S|H,W", group="model and data")
    frozen_layers: list = _flag(None, "layers kept frozen (recorded by finetune)", flag=None)
    adversarial: str = _flag(None, "adversarial training: FGSM (Goodfellow et al.) or PGD (Madry et al.) examples "
                             "made inside the train step; METHOD:EPS also sets --adv-eps (fgsm:0.25)",
                             kind="method_eps", choices=ADVERSARIAL, group="adversarial training", eps_field="adv_eps")
    adv_eps: float = _flag(0.1, "adversarial training: L-inf radius in pixel units of [0, 1]", kind="positive_float",
                           group="adversarial training")
    adv_ratio: float = _flag(0.5, "adversarial training: weight r of the adversarial loss, (1-r) on the clean loss",
                             kind="unit_float", group="adversarial training")
    adv_steps: int = _flag(7, "adversarial training with pgd: attack iterations per step", kind="positive_int",
                           group="adversarial training")
    adv_step_size: float = _flag(None, "adversarial training with pgd: step size (unset: 2.5*eps/steps)",
                                 kind="positive_float", group="adversarial training")

    def validate(self):
        from cs231n_tf.validation import positive_int

        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive_int("steps_per_execution", self.steps_per_execution)
        positive_int("checkpoint_every", self.checkpoint_every, allow_zero=True)
        positive_int("keep_checkpoints", self.keep_checkpoints)
        positive_int("log_every", self.log_every)
        positive_int("seed", self.seed, allow_zero=True)
        if self.max_steps is not None:
            positive_int("max_steps", self.max_steps)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(f"mixed_precision must be one of mixed_float16, mixed_bfloat16 (or none), "
                              f"got {self.mixed_precision!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        self._validate_schedule()
        for name in ("clip_norm", "clip_value"):
            value = getattr(self, name)
            if value is not None and not (_number(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if self.clip_norm is not None and self.clip_value is not None:
            raise ConfigError("set at most one of clip_norm and clip_value "
                              f"(got clip_norm={self.clip_norm!r}, clip_value={self.clip_value!r})")
        if self.penalty not in PENALTIES:
            raise ConfigError(f"unknown penalty {self.penalty!r}; choose one of {', '.join(PENALTIES)}")
        if not (_number(self.l1_ratio) and 0.0 <= self.l1_ratio <= 1.0):
            raise ConfigError(f"l1_ratio must be a number in [0, 1], got {self.l1_ratio!r}")
        if self.init is not None:
            from cs231n_tf.train.initializers import get_initializer

            get_initializer(self.init)
        from cs231n_tf.data.augment import parse_augment

        parse_augment(self.augment)
        if self.frozen_layers is not None and (not isinstance(self.frozen_layers, (list, tuple))
                                               or not all(isinstance(n, str) for n in self.frozen_layers)):
            raise ConfigError(f"frozen_layers must be a list of layer names, got {self.frozen_layers!r}")
        if self.preprocessing not in PREPROCESSING:
            raise ConfigError(f"preprocessing must be one of {', '.join(PREPROCESSING)}, got {self.preprocessing!r}")
        if self.image_size is not None and (
                not isinstance(self.image_size, (list, tuple)) or len(self.image_size) != 2
                or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in self.image_size)):
            raise ConfigError(f"image_size must be [height, width] of positive ints, got {self.image_size!r}")
        if self.adversarial is not None:
            from cs231n_tf.adversarial.training import AdversarialTraining

            AdversarialTraining.from_config(self)
        return self

    def _validate_schedule(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"unknown lr_schedule {self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
        if not (_number(self.lr_decay_factor) and self.lr_decay_factor > 0):
            raise ConfigError(f"lr_decay_factor must be a positive number, got {self.lr_decay_factor!r}")
        if self.lr_decay_epochs is not None and not (_number(self.lr_decay_epochs) and self.lr_decay_epochs > 0):
            raise ConfigError(f"lr_decay_epochs must be a positive number, got {self.lr_decay_epochs!r}")
        if self.lr_boundaries is not None and (
                not isinstance(self.lr_boundaries, (list, tuple)) or not self.lr_boundaries
                or any(isinstance(b, bool) or not isinstance(b, int) for b in self.lr_boundaries)
                or any(b <= a for a, b in zip(self.lr_boundaries, self.lr_boundaries[1:]))
                or self.lr_boundaries[0] < 1):
            raise ConfigError(f"lr_boundaries must be strictly increasing positive step numbers, got {self.lr_boundaries!r}")
        if self.lr_final is not None and not (_number(self.lr_final) and self.lr_final >= 0):
            raise ConfigError(f"lr_final must be a number >= 0, got {self.lr_final!r}")
        if not (_number(self.warmup_epochs) and self.warmup_epochs >= 0):
            raise ConfigError(f"warmup_epochs must be a number >= 0, got {self.warmup_epochs!r}")
        if self.lr_schedule != "step" and (self.lr_decay_epochs is not None or self.lr_boundaries is not None):
            raise ConfigError(f"lr_decay_epochs/lr_boundaries need lr_schedule='step', got {self.lr_schedule!r}")
        if self.lr_decay_epochs is not None and self.lr_boundaries is not None:
            raise ConfigError("set at most one of lr_decay_epochs and lr_boundaries")
        if self.lr_final is not None and self.lr_schedule not in ("exponential", "cosine"):
            raise ConfigError(f"lr_final needs lr_schedule 'exponential' or 'cosine', got {self.lr_schedule!r}")
        if self.lr_schedule == "exponential" and self.lr_final == 0:
            raise ConfigError("lr_final must be > 0 for the exponential schedule")

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        from cs231n_tf.engine.rundir import config_from_json

        return config_from_json(cls, obj)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_data(config, batch_size=None):
    """The config's data set exactly as the trainer loads it (splits, preprocessing).

    Everything that reopens a run's data (evaluation, export, sanity checks, search, ensembles,
    transfer) goes through here, so a new data option cannot be forgotten in one of them.
    """
    from cs231n_tf import data as data_lib

    input_stats = None
    if config.preprocessing == "model":
        from cs231n_tf.models import get_spec

        input_stats = get_spec(config.model).input_stats
        if input_stats is None:
            raise ConfigError(f"preprocessing='model' needs a pretrained model with a fixed input normalisation; "
                              f"{config.model!r} has none (use channel or mean_image)")
    return data_lib.load(config.dataset, batch_size=batch_size or config.batch_size, data_dir=config.data_dir,
                         validation_fraction=config.validation_fraction, split_seed=config.split_seed,
                         preprocessing=config.preprocessing, input_stats=input_stats,
                         image_size=None if config.image_size is None else tuple(config.image_size))


def default_run_dir(config, root="runs"):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(root, f"{config.model}-{config.dataset.replace(':', '_').replace('/', '_')}-{stamp}")


def load_run_config(run_dir):
    """Read and check a run directory's ``config.json``; bad or missing runs raise RunDirError."""
    from cs231n_tf.engine import rundir

    obj = rundir.read_config(run_dir)
    rundir.require_task(run_dir, "classification")
    path = os.path.join(run_dir, CONFIG_FILE)
    try:
        TrainConfig.from_json(obj["train"])
        for key in ("name", "options", "input_shape", "num_classes"):
            obj["model"][key]
        for key in ("mean", "std", "pixel_max", "image_shape", "num_classes"):
            obj["data"][key]
    except (ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from exc
    return obj
