"""Training a classifier: the classification task on the engine, behind the API it always had.

``Trainer(config, run_dir).run()`` and :func:`train` build a
:class:`~cs231n_tf.tasks.classification.ClassificationTask` from a :class:`TrainConfig` and run it
on the :class:`~cs231n_tf.engine.Engine`, the package's only training loop (see
:mod:`cs231n_tf.engine.loop` for what it does: compiled steps, strategies, mixed precision, exact
resume, the NaN/Inf guard, TensorBoard, ``metrics.json``).
"""

import dataclasses

from cs231n_tf.engine import Engine
from cs231n_tf.engine.loop import random_generators  # noqa: F401  (re-exported)
from cs231n_tf.engine.state import CHECKPOINT_DIR  # noqa: F401  (re-exported)
from cs231n_tf.tasks.classification import (  # noqa: F401  (re-exported)
    ClassificationTask, build_model, make_learning_rate, make_optimizer, with_overrides)
from cs231n_tf.train import config as config_lib


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    metrics: dict
    model: object


def _say(message):
    print(message, flush=True)


class Trainer:
    """Trains ``config.model`` on ``config.dataset`` into ``run_dir``.

    Use :func:`train` unless you need the pieces: ``Trainer(config, run_dir).run()``. ``data``:
    already loaded splits; ``hooks``: :class:`~cs231n_tf.engine.Hook` s; the task and the engine
    are ``trainer.task`` and ``trainer.engine``.
    """

    def __init__(self, config, run_dir, resume=False, strategy=None, data=None, log=_say, hooks=(), task=None):
        self.task = task or ClassificationTask(config, data=data)
        self.engine = Engine(self.task, run_dir, resume=resume, strategy=strategy, log=log, hooks=hooks)
        self.config = self.task.config
        self.run_dir = self.engine.run_dir

    @property
    def model(self):
        return self.task.model

    @property
    def optimizer(self):
        return self.task.optimizer

    @property
    def data(self):
        return self.task.data

    @property
    def lr_schedule(self):
        return self.task.lr_schedule

    @property
    def strategy(self):
        return self.engine.strategy

    @property
    def replicas(self):
        return self.engine.replicas

    @property
    def steps_per_epoch(self):
        return self.engine.steps_per_epoch

    @property
    def step(self):
        return self.engine.state.step

    def evaluate(self, split):
        """``{"loss", "accuracy", "examples"}`` of the current weights on ``split``."""
        return self.engine.evaluate(split)

    def learning_rate(self, step=None):
        """The rate the optimizer used for update number ``step`` (0-based; default: the latest)."""
        if step is None:
            step = max(int(self.engine.state.step.numpy()) - 1, 0)
        return self.task.learning_rate(step)

    def run(self):
        result = self.engine.run()
        return TrainResult(result.run_dir, result.metrics, self.task.model)


def train(config=None, run_dir=None, resume=False, **overrides):
    """Train a model; returns :class:`TrainResult` (run directory, metrics, Keras model).

    ``train()`` with no arguments trains the default small CNN on the embedded ``digits`` data.
    Keyword overrides set :class:`TrainConfig` fields: ``train(model="lenet5", epochs=3)``.
    """
    config = with_overrides(config or config_lib.TrainConfig(), **overrides)
    run_dir = run_dir or config_lib.default_run_dir(config)
    return Trainer(config, run_dir, resume=resume).run()
