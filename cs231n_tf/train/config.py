"""The training configuration and the run directory that records it."""

import dataclasses
import datetime
import os

from cs231n_tf.errors import ConfigError, RunDirError
from cs231n_tf.fileio import atomic_write_json, read_json

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
MIXED_PRECISION = (None, "mixed_float16", "mixed_bfloat16")
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"


@dataclasses.dataclass
class TrainConfig:
    """Everything that determines a training run. Saved as ``config.json`` in the run directory.

    ``batch_size`` is the global batch, split evenly over the strategy's replicas. ``weight_decay``
    adds ``0.5 * weight_decay * sum(w**2)`` over kernels and embeddings (not biases or norm
    parameters), so its gradient is ``weight_decay * w``. ``checkpoint_every`` is in steps (0 = at
    the end of every epoch only). ``max_steps`` stops early (the run can be resumed later).
    """

    model: str = "small_convnet"
    model_options: dict = dataclasses.field(default_factory=dict)
    dataset: str = "digits"
    data_dir: str = None
    validation_fraction: float = 0.1
    split_seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    xla: bool = False
    mixed_precision: str = None
    strategy: str = "default"
    steps_per_execution: int = 1
    checkpoint_every: int = 0
    keep_checkpoints: int = 3
    max_steps: int = None
    deterministic: bool = False
    log_every: int = 50

    def validate(self):
        def positive_int(name, value, allow_zero=False):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
                raise ConfigError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} int, got {value!r}")

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
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise RunDirError(f"config has unknown field(s) {', '.join(unknown)}")
        return cls(**obj)


def default_run_dir(config, root="runs"):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(root, f"{config.model}-{config.dataset.replace(':', '_').replace('/', '_')}-{stamp}")


def save_run_config(run_dir, config, data_info, input_shape, num_classes):
    atomic_write_json(os.path.join(run_dir, CONFIG_FILE), {
        "train": config.to_json(),
        "data": data_info.to_json(),
        "model": {"name": config.model, "options": config.model_options,
                  "input_shape": list(input_shape), "num_classes": int(num_classes)},
    })


def load_run_config(run_dir):
    """Read and check a run directory's ``config.json``; bad or missing runs raise RunDirError."""
    if not os.path.isdir(run_dir):
        raise RunDirError(f"run directory {run_dir!r} does not exist")
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise RunDirError(f"{run_dir!r} is not a run directory: it has no {CONFIG_FILE}")
    try:
        obj = read_json(path)
        TrainConfig.from_json(obj["train"])
        for key in ("name", "options", "input_shape", "num_classes"):
            obj["model"][key]
        for key in ("mean", "std", "pixel_max", "image_shape", "num_classes"):
            obj["data"][key]
    except (ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from exc
    return obj
