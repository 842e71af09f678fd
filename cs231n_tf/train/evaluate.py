"""Reopen a finished (or interrupted) run: rebuild its model from ``config.json`` and restore weights.

Runs are reopened by rebuilding the model from the registry and restoring a TensorFlow checkpoint,
never by deserialising code, so opening a run directory from elsewhere cannot execute anything.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import DataError, RunDirError
from cs231n_tf.train import config as config_lib
from cs231n_tf.engine.state import CHECKPOINT_DIR, restore_checkpoint
from cs231n_tf.tasks.classification import build_model


@dataclasses.dataclass
class LoadedRun:
    run_dir: str
    config: config_lib.TrainConfig
    run_config: dict
    model: tf.keras.Model
    checkpoint: str

    def load_data(self, batch_size=None):
        return config_lib.load_data(self.config, batch_size)


def load_run(run_dir, checkpoint=None, float32=False):
    """Rebuild the run's model and restore ``checkpoint`` (default: the latest).

    ``float32=True`` rebuilds a mixed-precision run in float32 (its master weights are float32, so
    nothing is lost): what export and compression want, since TFLite has no float16/bfloat16
    kernels for most ops and a deployed model should not depend on the training precision.
    """
    run_config = config_lib.load_run_config(run_dir)
    config = config_lib.TrainConfig.from_json(run_config["train"])
    build_config = dataclasses.replace(config, mixed_precision=None) if float32 else config
    ckpt_dir = os.path.join(run_dir, CHECKPOINT_DIR)
    path = checkpoint or tf.train.latest_checkpoint(ckpt_dir)
    if not path:
        raise RunDirError(f"run directory {run_dir!r} has no checkpoint in {CHECKPOINT_DIR}/")
    m = run_config["model"]
    model = build_model(build_config, tuple(m["input_shape"]), int(m["num_classes"]))
    restore_checkpoint(tf.train.Checkpoint(model=model), path, partial=True)
    return LoadedRun(os.path.abspath(run_dir), config, run_config, model, path)


def predict_logits(model, dataset):
    """Logits (float32 NumPy) and labels of a batched ``(x, y)`` dataset."""
    logits, labels = [], []
    fn = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), reduce_retracing=True)
    for x, y in dataset:
        logits.append(fn(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(logits), np.concatenate(labels)


def evaluate_run(run_dir, split="test", checkpoint=None, dataset=None, data_dir=None):
    """Loss and accuracy of a run's model on ``split``, or on all of another data set; returns a dict.

    ``dataset`` (any spec the run's own data could have been, e.g. ``folder:HELD_OUT``) is scored
    whole (its train and test parts) with the run's own normalisation; its images must have the
    run's shape (``folder:`` images are resized to it) and its labels the run's classes.
    """
    run = load_run(run_dir, checkpoint)
    if dataset is None:
        data = run.load_data()
        logits, labels = predict_logits(run.model, data.split(split))
        where = {"split": split}
    else:
        x, labels = _held_out(run, dataset, data_dir)
        logits, _ = predict_logits(run.model, tf.data.Dataset.from_tensor_slices((x, labels)).batch(256))
        where = {"dataset": dataset}
    loss = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True).numpy().mean()
    return {"run_dir": run.run_dir, "checkpoint": run.checkpoint, **where, "examples": int(len(labels)),
            "loss": float(loss), "accuracy": float((logits.argmax(-1) == labels).mean())}


def _held_out(run, spec, data_dir):
    from cs231n_tf.data import sources

    info = run.run_config["data"]
    shape = tuple(info["image_shape"])
    raw = sources.load_raw(spec, data_dir=data_dir or run.config.data_dir, image_size=shape[:2])
    parts = [(raw.x_train, raw.y_train)] + ([(raw.x_test, raw.y_test)] if raw.x_test is not None else [])
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    if x.shape[1:] != shape:
        raise DataError(f"data set {spec!r} has images of shape {x.shape[1:]}, but the run was trained on {shape}")
    if len(raw.class_names) != int(info["num_classes"]) or y.max(initial=0) >= int(info["num_classes"]):
        raise DataError(f"data set {spec!r} has {len(raw.class_names)} classes, but the run has "
                        f"{info['num_classes']}")
    mean, std = np.asarray(info["mean"], np.float32), np.asarray(info["std"], np.float32)
    return ((x.astype(np.float32) / float(raw.pixel_max) - mean) / std).astype(np.float32), y
