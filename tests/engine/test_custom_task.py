"""A task defined here, not in the package: least squares with two optimizers, on the engine unchanged.

It trains to the closed-form solution, resumes bit-exactly after SIGKILL and after a stop at
``max_steps``, stops on a non-finite loss keeping the last good checkpoint, and exports.
Run as a script (``python test_custom_task.py DIR [--resume]``) it is the process the SIGKILL test kills.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from cs231n_tf.engine import Engine, EngineConfig, Hook, Task
from cs231n_tf.errors import NonFiniteLossError, RunDirError
from cs231n_tf.export import export_module

TRUE_W = np.array([[1.5], [-2.0], [0.5], [3.0]], np.float32)
TRUE_B = 0.7


@dataclasses.dataclass
class LeastSquaresConfig(EngineConfig):
    examples: int = 256
    lr_kernel: float = 0.05
    lr_bias: float = 0.05
    noise: float = 0.1
    data_seed: int = 3


class LeastSquaresTask(Task):
    """``y = x w + b``; the kernel is trained by SGD, the bias by Adam (two optimizers, one tape)."""

    name = "least_squares"
    final_splits = (("test", "test_"),)
    epoch_split = "test"

    def prepare(self):
        c = self.config
        rng = np.random.default_rng(c.data_seed)
        x = rng.normal(size=(c.examples + 64, 4)).astype(np.float32)
        y = (x @ TRUE_W + TRUE_B + c.noise * rng.normal(size=(len(x), 1))).astype(np.float32)
        self.x, self.y = x[:c.examples], y[:c.examples]
        self.x_test, self.y_test = x[c.examples:], y[c.examples:]

    def steps_per_epoch(self):
        return self.config.examples // self.config.batch_size

    def train_dataset(self, epoch, skip_batches=0):
        b = self.config.batch_size
        order = np.random.default_rng([self.config.seed, epoch]).permutation(self.config.examples)[skip_batches * b:]
        return tf.data.Dataset.from_tensor_slices((self.x[order], self.y[order])).batch(b, drop_remainder=True)

    def eval_dataset(self, split):
        if split != "test":
            return None
        return tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test)).batch(32)

    def build(self, ctx):
        inputs = tf.keras.Input((4,), name="x")
        self.model = tf.keras.Model(inputs, tf.keras.layers.Dense(1, name="linear")(inputs))
        self.kernel_optimizer = ctx.optimizer(tf.keras.optimizers.SGD(self.config.lr_kernel))
        self.bias_optimizer = ctx.optimizer(tf.keras.optimizers.Adam(self.config.lr_bias))
        self.kernel_optimizer.build([self.model.layers[-1].kernel])
        self.bias_optimizer.build([self.model.layers[-1].bias])
        self.train_loss = tf.keras.metrics.Mean("loss")
        self.test_loss = tf.keras.metrics.Mean("loss")

    def models(self):
        return {"model": self.model}

    def optimizers(self):
        return {"kernel_optimizer": self.kernel_optimizer, "bias_optimizer": self.bias_optimizer}

    def metrics(self):
        return [self.train_loss]

    def eval_metrics(self):
        return [self.test_loss]

    def train_step(self, batch, ctx):
        x, y = batch
        layer = self.model.layers[-1]
        with tf.GradientTape(persistent=True) as tape:
            per_example = tf.reduce_mean(tf.square(self.model(x, training=True) - y), axis=-1)
            loss = ctx.mean(per_example)
        ctx.minimize(tape, loss, [layer.kernel], self.kernel_optimizer)
        ctx.minimize(tape, loss, [layer.bias], self.bias_optimizer)
        self.train_loss.update_state(per_example)
        return {"loss": loss}

    def eval_step(self, batch, ctx):
        x, y = batch
        prediction = self.model(x, training=False)
        self.test_loss.update_state(tf.reduce_mean(tf.square(prediction - y), axis=-1))
        return {"prediction": prediction}

    def evaluate_end(self, outputs, split):
        # Host-side metric from the gathered outputs, checked against the streaming one below.
        return {"host_mse": float(np.mean((outputs["prediction"] - self.y_test) ** 2))}

    def serving_module(self):
        module = tf.Module()
        module.model = self.model
        module.serve = tf.function(lambda x: {"y": self.model(x, training=False)},
                                   input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        return module


class Slow(Hook):
    """Gives the SIGKILL test time to strike; changes nothing in the numbers."""

    def after_execution(self, engine, logs):
        time.sleep(0.003)


def quiet(_):
    pass


def weights(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if "_CHECKPOINTABLE" not in k and not k.startswith("save_counter")}


def test_trains_to_the_least_squares_solution_and_exports(tmp_path):
    task = LeastSquaresTask(LeastSquaresConfig(epochs=40, batch_size=16))
    result = Engine(task, str(tmp_path / "run"), log=quiet).run()
    x = np.hstack([task.x, np.ones((len(task.x), 1), np.float32)])
    solution = np.linalg.lstsq(x.astype(np.float64), task.y.astype(np.float64), rcond=None)[0]
    layer = task.model.layers[-1]
    np.testing.assert_allclose(layer.kernel.numpy(), solution[:4], atol=2e-2)
    np.testing.assert_allclose(layer.bias.numpy(), solution[4], atol=2e-2)
    m = result.metrics
    assert m["steps"] == 40 * 16 and m["epochs"] == 40
    assert m["test_loss"] == pytest.approx(m["test_host_mse"], rel=1e-5)
    assert m["test_loss"] < 0.02  # noise variance 0.01
    assert [r["epoch"] for r in m["history"]] == list(range(1, 41))
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["task"] == "least_squares" and config["config"]["lr_bias"] == 0.05
    # The two optimizers each moved their own variable only.
    assert int(task.kernel_optimizer.iterations.numpy()) == int(task.bias_optimizer.iterations.numpy()) == 640
    report = export_module(task.serving_module(), str(tmp_path / "export"), {"x": task.x_test})
    assert report["max_abs_diff"]["y"] < 1e-6
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    np.testing.assert_allclose(served(x=tf.constant(task.x_test))["y"].numpy(),
                               task.x_test @ layer.kernel.numpy() + layer.bias.numpy(), rtol=1e-5, atol=1e-6)


def test_stop_and_resume_equals_uninterrupted(tmp_path):
    config = LeastSquaresConfig(epochs=3, batch_size=16, steps_per_execution=4)
    full = LeastSquaresTask(config)
    Engine(full, str(tmp_path / "full"), log=quiet).run()
    # Stop mid-epoch (step 21 of 48; epoch 2, batch 5), then resume with the whole budget.
    part = Engine(LeastSquaresTask(dataclasses.replace(config, max_steps=21)), str(tmp_path / "part"), log=quiet)
    part.run()
    resumed_task = LeastSquaresTask(config)
    resumed = Engine(resumed_task, str(tmp_path / "part"), resume=True, log=quiet).run()
    for name, value in weights(str(tmp_path / "full")).items():
        np.testing.assert_array_equal(value, weights(str(tmp_path / "part"))[name], err_msg=name)
    full_metrics = json.load(open(tmp_path / "full" / "metrics.json"))
    # The resumed epoch's train loss covers the whole epoch (its accumulators were checkpointed).
    assert resumed.metrics["history"][-1]["train_loss"] == full_metrics["history"][-1]["train_loss"]
    with pytest.raises(RunDirError, match="already holds a run"):
        Engine(LeastSquaresTask(config), str(tmp_path / "full"), log=quiet)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    config = LeastSquaresConfig(epochs=50, batch_size=16, lr_kernel=10.0, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError) as info:
        Engine(LeastSquaresTask(config), str(tmp_path / "run"), log=quiet).run()
    bad = info.value.step
    assert bad >= 2
    kept = info.value.last_good_checkpoint
    assert kept is not None and int(kept.rsplit("-", 1)[1]) < bad
    for name, value in weights(str(tmp_path / "run")).items():
        if value.dtype.kind == "f":
            assert np.all(np.isfinite(value)), name


def test_corrupt_latest_checkpoint_falls_back(tmp_path):
    run = str(tmp_path / "run")
    config = LeastSquaresConfig(epochs=2, batch_size=16, keep_checkpoints=5)
    Engine(LeastSquaresTask(config), run, log=quiet).run()
    latest = tf.train.latest_checkpoint(os.path.join(run, "checkpoints"))
    data = [f for f in os.listdir(os.path.join(run, "checkpoints")) if f.startswith(os.path.basename(latest) + ".data")]
    with open(os.path.join(run, "checkpoints", data[0]), "r+b") as f:
        f.truncate(8)
    lines = []
    engine = Engine(LeastSquaresTask(dataclasses.replace(config, epochs=3)), run, resume=True, log=lines.append)
    assert any("corrupt" in line for line in lines) and any("falling back" in line for line in lines)
    assert int(engine.state.step.numpy()) == 16  # the end of epoch 1, the checkpoint before the damaged one


def _script(run_dir, resume=False):
    return [sys.executable, os.path.abspath(__file__), run_dir] + (["--resume"] if resume else [])


def _latest_step(run_dir):
    path = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    return int(path.rsplit("-", 1)[1]) if path else 0


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    full, killed = str(tmp_path / "full"), str(tmp_path / "killed")
    proc = subprocess.Popen(_script(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _latest_step(killed) < 100 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed; make it longer"
    assert 0 < _latest_step(killed) < 2000
    subprocess.run(_script(full), env=env, check=True, capture_output=True)
    out = subprocess.run(_script(killed, resume=True), env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    a, b = weights(full), weights(killed)
    assert len(a) >= 8
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


if __name__ == "__main__":
    task = LeastSquaresTask(LeastSquaresConfig(epochs=125, batch_size=16, checkpoint_every=10, deterministic=True))
    Engine(task, sys.argv[1], resume="--resume" in sys.argv, log=quiet, hooks=[Slow()]).run()
