"""What the likelihood-based tasks (autoencoders, PixelCNN) share: run settings, a sample-grid hook, bits/dim.

:class:`LikelihoodRunConfig` holds the engine's settings with their command-line flags (the same
flags and groups as :class:`~cs231n_tf.generative.task.GANConfig`), the data set, Adam's learning
rate and the sample-grid cadence; each task's config extends it with its model's fields.
"""

import dataclasses
import math
import os

from cs231n_tf import validation
from cs231n_tf.engine import Hook, rundir
from cs231n_tf.engine.loop import EngineConfig, EngineFlags
from cs231n_tf.errors import ConfigError
from cs231n_tf.generative.task import write_grid
from cs231n_tf.train.config import _flag

SAMPLES_DIR = "samples"
DATA, MODEL, RUN = "model and data", "model", "run directory and checkpoints"


def bits_per_dim(nats, dims):
    """A negative log-likelihood of ``dims`` values in nats -> bits per dimension: ``nats / (dims ln 2)``."""
    return float(nats) / (int(dims) * math.log(2.0))


@dataclasses.dataclass
class LikelihoodRunConfig(EngineFlags):
    """Engine settings, data, learning rate and sample grids of a likelihood-based generative run."""

    epochs: int = _flag(20, "passes over the training images", kind="positive_int")
    batch_size: int = _flag(64, "images per step", kind="positive_int", group=DATA)
    seed: int = _flag(0, "seed of the weights, the data order and the noise", kind="non_negative_int")
    data: str = _flag("digits", "images: digits (embedded 8x8), digits28 (resized to 28x28), npz:PATH, "
                      "folder:PATH or a tfds name", group=DATA)
    lr: float = _flag(1e-3, "Adam learning rate", kind="positive_float")
    sample_every: int = _flag(0, "write a PNG grid of samples every N steps (0: never)", kind="non_negative_int",
                              group=RUN)
    sample_count: int = _flag(36, "images in each sample grid", kind="positive_int", group=RUN)

    def validate(self):
        EngineConfig.validate(self)
        validation.positive_number("lr", self.lr)
        validation.non_negative_int("sample_every", self.sample_every)
        validation.positive_int("sample_count", self.sample_count)
        if not isinstance(self.data, str) or not self.data:
            raise ConfigError(f"data must be a data set name, got {self.data!r}")
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        return rundir.config_from_json(cls, obj, f"{cls.__name__}")


class SampleGridHook(Hook):
    """Every ``every`` steps, a PNG grid of ``task.sample_images(count, seed)`` in ``RUN/samples/``."""

    def __init__(self, every, count, seed=0):
        self.every, self.count, self.seed = int(every), int(count), int(seed)
        self.written = []

    def after_execution(self, engine, logs):
        if engine.run_dir is None or not self.every:
            return
        step = int(engine.state.step.numpy())
        if step % self.every:
            return
        path = os.path.join(engine.run_dir, SAMPLES_DIR, f"step-{step:07d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.written.append(write_grid(engine.task.sample_images(self.count, self.seed), path))
