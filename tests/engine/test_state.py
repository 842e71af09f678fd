"""Run-state helpers: the checkpoint index is read the same from a relative or an absolute directory."""

import os

import tensorflow as tf

from cs231n_tf.engine.state import CheckpointKeeper, checkpoint_paths


def test_checkpoint_paths_from_relative_and_absolute_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    keeper = CheckpointKeeper(tf.train.Checkpoint(v=tf.Variable(1.0)), "run/checkpoints", max_to_keep=2)
    for number in (1, 2, 3):
        keeper.save(number)
    relative = checkpoint_paths("run/checkpoints")
    assert relative == [os.path.join("run/checkpoints", f"ckpt-{n}") for n in (3, 2)]
    assert all(os.path.exists(p + ".index") for p in relative)
    assert checkpoint_paths(str(tmp_path / "run/checkpoints")) == [str(tmp_path / "run/checkpoints" / f"ckpt-{n}")
                                                                   for n in (3, 2)]
    assert checkpoint_paths("missing") == []
