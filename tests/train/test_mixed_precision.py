"""Mixed precision end to end: float32 master weights and logits, loss scaling, losses close to float32.

Tolerances. The same batches in the same order reach all three runs, so differences come only from
rounding in the low-precision activations: float16 keeps 11 significant bits (unit roundoff
u = 2**-11 ~ 4.9e-4), bfloat16 keeps 8 (u = 2**-8 ~ 3.9e-3). Rounding errors of many independent
products partly cancel, but every SGD step feeds them back into the weights, so the gap grows with
the number of steps and the learning rate. Over 10 momentum steps at lr 0.03 (the loss falls from
~3.0 to ~2.1) we allow 4u relative on the mean training loss for float16 (2e-3) and 2.5u for bfloat16
(1e-2). Measured on this CPU: 3.9e-4 and 4.4e-4. (At lr 0.05 over 20 steps the float16 gap already
reached 2.4e-3: the loss surface, not the format, then dominates.)
"""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.train.config import TrainConfig
from cs231n_tf.train.trainer import Trainer

CONV = dict(model="three_layer_convnet", batch_size=64, optimizer="momentum", lr=0.03, epochs=1, log_every=5,
            model_options={"num_filters": 8, "filter_size": 3, "hidden_dim": 32, "batchnorm": True})
TOLERANCE = {"mixed_float16": 2e-3, "mixed_bfloat16": 1e-2}


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def float32_run(tmp_path_factory):
    trainer = Trainer(TrainConfig(max_steps=10, **CONV), str(tmp_path_factory.mktemp("f32") / "run"), log=quiet)
    initial = trainer.evaluate("train")["loss"]
    return initial, trainer.run().metrics


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_loss_matches_float32(tmp_path, float32_run, policy):
    initial, base = float32_run
    trainer = Trainer(TrainConfig(max_steps=10, mixed_precision=policy, **CONV), str(tmp_path / "run"), log=quiet)
    model = trainer.model
    assert model.get_layer("conv1").compute_dtype == policy.split("_")[1]
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)  # float32 master weights
    scaled = isinstance(trainer.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16")  # bfloat16 has float32's range: no loss scaling needed
    if scaled:
        assert trainer.optimizer.dynamic and float(trainer.optimizer.loss_scale) == 2.0 ** 15
    metrics = trainer.run().metrics
    assert base["final_train_loss"] < 0.9 * initial  # the runs really trained
    assert metrics["final_train_loss"] == pytest.approx(base["final_train_loss"], rel=TOLERANCE[policy])
    x = next(iter(trainer.data.split("test")))[0]
    assert trainer.model(x).dtype == tf.float32  # the builder's logits layer computes in float32 under any policy
    if scaled:
        assert float(trainer.optimizer.loss_scale) >= 1.0


def test_clipping_under_float16_uses_unscaled_gradients(tmp_path):
    """With loss scale 2**15 the scaled gradients are huge; clipping them instead of the true ones
    would shrink the step by 2**15. The float16 step must match the float32 clipped step."""
    cfg = dict(CONV, max_steps=1, optimizer="sgd", lr=0.5, clip_norm=0.01)
    deltas = {}
    for policy in (None, "mixed_float16"):
        trainer = Trainer(TrainConfig(mixed_precision=policy, **cfg), str(tmp_path / str(policy)), log=quiet)
        before = [v.numpy() for v in trainer.model.trainable_variables]
        trainer.run()
        deltas[policy] = [a.numpy() - b for a, b in zip(trainer.model.trainable_variables, before)]
    norm32 = np.sqrt(sum((d.astype(np.float64) ** 2).sum() for d in deltas[None]))
    norm16 = np.sqrt(sum((d.astype(np.float64) ** 2).sum() for d in deltas["mixed_float16"]))
    assert norm32 == pytest.approx(0.5 * 0.01, rel=1e-4)  # step = lr * clip_norm: the clip was active
    assert norm16 == pytest.approx(norm32, rel=1e-3)
    cos = sum((a * b).sum() for a, b in zip(deltas[None], deltas["mixed_float16"])) / (norm32 * norm16)
    assert cos > 0.999
