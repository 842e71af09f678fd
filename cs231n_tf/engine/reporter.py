"""Progress and TensorBoard for any task: scalars at ``log_every`` boundaries, a bar on a terminal.

The host only waits for the device at log points, checkpoints and epoch ends; a terminal gets a
progress bar updated at the same points, so attaching one does not make every call synchronise.
"""

import os
import sys

import tensorflow as tf

from cs231n_tf.engine.rundir import LOGS_DIR


class Reporter:
    """Writes ``logs/train`` and ``logs/validation`` under ``run_dir`` (``None``: nothing is written)."""

    def __init__(self, run_dir=None, steps_per_epoch=None, progress=None):
        self.writers = {}
        if run_dir is not None:
            for name in ("train", "validation"):
                self.writers[name] = tf.summary.create_file_writer(os.path.join(run_dir, LOGS_DIR, name))
        self.steps_per_epoch = steps_per_epoch
        self.progress = sys.stdout.isatty() if progress is None else progress
        self.bar = None

    def start_epoch(self):
        if self.progress and self.steps_per_epoch:
            self.bar = tf.keras.utils.Progbar(self.steps_per_epoch, stateful_metrics=None)

    def update_bar(self, position, values):
        if self.bar is not None:
            self.bar.update(position, [(k, v) for k, v in values.items()], finalize=False)

    def end_epoch(self, position, values):
        if self.bar is not None:
            self.bar.update(position, [(k, v) for k, v in values.items()], finalize=True)
            self.bar = None

    def scalars(self, split, step, values):
        writer = self.writers.get(split)
        if writer is None:
            return
        with writer.as_default(step=int(step)):
            for key, value in values.items():
                tf.summary.scalar(key, value)

    def close(self):
        for writer in self.writers.values():
            writer.flush()
