"""Run state and checkpoints: what a killed run needs to continue exactly where it stopped.

:class:`RunState` holds the step counter, the epoch, the position inside the epoch and the first
non-finite step as variables, so they are saved in the same checkpoint as the weights.
:class:`CheckpointKeeper` writes numbered checkpoints and, when resuming, falls back past a
checkpoint that does not read (a truncated data file after a full disk or a crash mid-write) to the
newest one that does, saying so.
"""

import os

import tensorflow as tf

from cs231n_tf.errors import NonFiniteLossError, RunDirError

CHECKPOINT_DIR = "checkpoints"


class RunState:
    """``step``, ``epoch``, ``step_in_epoch`` and ``bad_step`` (-1 while every step was finite).

    Create under the strategy's scope; the variables are read by the first replica only.
    """

    def __init__(self):
        def var(name, value=0):
            return tf.Variable(value, dtype=tf.int64, trainable=False, name=name,
                               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

        self.step = var("step")
        self.epoch = var("epoch")
        self.step_in_epoch = var("step_in_epoch")
        self.bad_step = var("bad_step", -1)

    def checkpoint_objects(self):
        return {"step": self.step, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch}

    def record_finite(self, values):
        """In the graph: remember the current step if any of ``values`` is NaN/Inf; returns all-finite."""
        finite = tf.constant(True)
        for value in tf.nest.flatten(values):
            value = tf.convert_to_tensor(value)
            if value.dtype.is_floating:
                finite = finite & tf.reduce_all(tf.math.is_finite(value))
        self.bad_step.assign(tf.where((self.bad_step < 0) & ~finite, self.step, self.bad_step))
        return finite


def check_finite(state, last_good=None, what="loss"):
    """Raise :class:`NonFiniteLossError` when ``state`` recorded a non-finite step."""
    bad = int(state.bad_step.numpy())
    if bad >= 0:
        raise NonFiniteLossError(
            f"non-finite {what} (NaN or Inf) at step {bad}; stopped without saving it. "
            f"Last good checkpoint: {last_good or 'none'}. Lower the learning rate or check the data.",
            step=bad, last_good_checkpoint=last_good)


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def restore_checkpoint(checkpoint, path, partial=False):
    """Restore ``path`` into ``checkpoint``; a checkpoint that does not read raises :class:`RunDirError`.

    ``partial``: the checkpoint may hold more than ``checkpoint`` tracks (loading only a model).
    """
    try:
        status = checkpoint.restore(path)
        if partial:
            status.expect_partial()
        status.assert_existing_objects_matched()
    except Exception as exc:  # the reader raises OpError, ValueError, IndexError... on a damaged file
        raise RunDirError(f"checkpoint {path!r} is corrupt or does not match the run ({_first_line(exc)})") from exc
    return path


def checkpoint_paths(directory):
    """Every checkpoint listed in ``directory``'s index, newest first."""
    state = tf.train.get_checkpoint_state(directory) if os.path.isdir(directory) else None
    if state is None:
        return []
    # get_checkpoint_state already joins relative entries to ``directory``.
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    return [p for p in reversed(paths) if p]


class CheckpointKeeper:
    """A ``tf.train.CheckpointManager`` over ``directory`` that resumes past corrupt checkpoints."""

    def __init__(self, checkpoint, directory, max_to_keep=3):
        self.checkpoint = checkpoint
        self.directory = directory
        self.manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep)

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def save(self, number):
        return self.manager.save(checkpoint_number=int(number))

    def restore_latest(self, log=None):
        """Restore the newest checkpoint that reads; returns its path.

        Corrupt ones are reported through ``log`` and skipped; if none reads, :class:`RunDirError`.
        """
        paths = checkpoint_paths(self.directory)
        if not paths:
            raise RunDirError(f"no checkpoint in {self.directory}")
        errors = []
        for path in paths:
            try:
                restore_checkpoint(self.checkpoint, path)
            except RunDirError as exc:
                errors.append(str(exc))
                if log:
                    log(f"skipping {exc}")
                continue
            if errors and log:
                log(f"falling back to the newest readable checkpoint {path}")
            return path
        raise RunDirError(f"no checkpoint in {self.directory} can be read: {'; '.join(errors)}")
