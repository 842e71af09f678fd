"""The package's one training engine: a task says what a step is, the engine does the rest.

- :class:`Task` (``task.py``): the models, optimizers, data and the ``train_step(batch, ctx)`` of
  one kind of training (classification, captioning, a GAN...).
- :class:`StepContext` (``context.py``): what a step needs from the engine: the global-batch mean,
  regularisation scaling, ``minimize`` with loss scaling under ``mixed_float16``.
- :class:`Engine` (``loop.py``): compiled steps (``steps_per_execution`` inside the graph, XLA),
  strategies, exact resume, the NaN/Inf guard, TensorBoard, progress, ``metrics.json``, hooks.
- ``state.py`` (run state, checkpoints with fallback past corrupt ones), ``rundir.py`` (the run
  directory layer), ``reporter.py`` (TensorBoard and progress), ``hooks.py`` (EMA, early stop...).

An environment loop (reinforcement learning) that cannot be an epoch loop reuses the parts:
:class:`RunState`, :class:`CheckpointKeeper`, :class:`Reporter`, :func:`check_finite` and
:class:`StepContext`.
"""

from cs231n_tf.engine.context import StepContext
from cs231n_tf.engine.hooks import EarlyStopping, Hook, StopAtMetric, WeightAverageHook
from cs231n_tf.engine.loop import Engine, EngineConfig, EngineResult
from cs231n_tf.engine.reporter import Reporter
from cs231n_tf.engine.state import CheckpointKeeper, RunState, check_finite, restore_checkpoint
from cs231n_tf.engine.task import Task

__all__ = ["CheckpointKeeper", "EarlyStopping", "Engine", "EngineConfig", "EngineResult", "Hook", "Reporter",
           "RunState", "StepContext", "StopAtMetric", "Task", "WeightAverageHook", "check_finite",
           "restore_checkpoint"]
