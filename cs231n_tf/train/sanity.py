"""Babysitting a network before the real run: the sanity checks of CS231n lecture 6.

Before spending hours on training, the lecture checks three things in minutes:

(a) **Initial loss.** With small random weights the softmax is nearly uniform, so the mean
    cross-entropy of an untrained classifier over ``C`` classes is close to ``ln(C)``
    (2.303 for 10 classes). A much larger value means a bad initialisation or a wrong loss.
(b) **Regularisation is wired in.** Cranking up the L2 penalty must raise the loss.
(c) **The model can learn.** With regularisation off, a tiny subset of the training set (50
    examples) is overfitted to 100% training accuracy within a small step budget. If not, the
    learning rate, the optimizer or the gradient path is broken.

Models are built through the registry from the :class:`TrainConfig` (the same builder, options,
``init``, seed, optimizer and gradient clipping the trainer uses). Check (c) trains on the engine
(the package's one loop), in memory, on one device in float32 at the constant rate ``config.lr``
(no schedule) and without augmentation: the checks test the model, the loss and the optimizer, not
the input pipeline.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import Engine, StopAtMetric
from cs231n_tf.errors import ConfigError, NonFiniteLossError
from cs231n_tf.tasks.classification import ClassificationTask
from cs231n_tf.train import regularizers
from cs231n_tf.train import trainer as trainer_lib
from cs231n_tf.train import config as config_lib
from cs231n_tf.train.config import TrainConfig


@dataclasses.dataclass
class Check:
    """One sanity check: its measured ``value`` and what was ``expected`` of it."""

    name: str
    passed: bool
    value: float
    expected: str
    detail: str = ""

    def __str__(self):
        text = f"[{'PASS' if self.passed else 'FAIL'}] {self.name}: {self.value:.4g} (expected {self.expected})"
        return f"{text}; {self.detail}" if self.detail else text


@dataclasses.dataclass
class SanityReport:
    """The list of :class:`Check` results; ``passed`` only if every check passed."""

    checks: list

    @property
    def passed(self):
        return all(c.passed for c in self.checks)

    def __getitem__(self, name):
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def __str__(self):
        return "\n".join(str(c) for c in self.checks)


def build_model(config, data, without_dropout=False):
    """Build ``config.model`` in float32 with the config's seed (the trainer's initial weights).

    ``without_dropout`` sets every builder option whose name contains ``dropout`` to 0, the
    "regularisation off" of check (c).
    """
    options = dict(config.model_options)
    if without_dropout:
        from cs231n_tf import models

        for name in models.get_spec(config.model).options():
            if "dropout" in name:
                options[name] = 0.0
    config = dataclasses.replace(config, model_options=options, mixed_precision=None)
    tf.keras.utils.set_random_seed(config.seed)
    return trainer_lib.build_model(config, data.info.image_shape, data.info.num_classes)


def regularization_loss(model, config, weight_decay):
    """The trainer's regularisation term for ``model`` with ``config``'s penalty at ``weight_decay``."""
    return regularizers.regularization_loss(model, regularizers.decayed_variables(model), config.penalty,
                                            weight_decay, config.l1_ratio)


def data_loss(model, x, y, training):
    """Mean softmax cross-entropy of ``model`` on images ``x`` (N, H, W, C) and labels ``y`` (N,)."""
    logits = tf.cast(model(x, training=training), tf.float32)
    return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)), logits


def _subset(data, count, seed):
    """``count`` training examples drawn with ``seed``, preprocessed: (x (N, H, W, C), y (N,) int32)."""
    n = data.info.num_train
    idx = np.sort(np.random.default_rng(seed).choice(n, size=min(count, n), replace=False))
    x = data.preprocess(data.arrays["x_train"][idx])
    return x, tf.constant(data.arrays["y_train"][idx], tf.int32)


def _check_initial_loss(config, data, examples, tolerance):
    model = build_model(config, data)
    x, y = _subset(data, examples, config.seed)
    loss, _ = data_loss(model, x, y, training=False)
    loss = float(loss)
    chance = math.log(data.info.num_classes)
    passed = math.isfinite(loss) and abs(loss - chance) <= tolerance * chance
    return model, loss, Check(
        "initial_loss", passed, loss, f"ln({data.info.num_classes}) = {chance:.4f} within {tolerance:.0%}",
        f"{len(y)} training examples, inference mode, no regularisation; ratio to ln(C) {loss / chance:.3f}")


def _check_regularization(config, model, loss, strength):
    reg = float(regularization_loss(model, config, strength))
    with_reg = loss + reg
    passed = math.isfinite(with_reg) and with_reg > loss
    return Check("regularization_raises_loss", passed, with_reg, f"> {loss:.4f} (loss without regularisation)",
                 f"{config.penalty} penalty, weight_decay {strength:g}, adds {reg:.4g}")


def _check_overfit(config, data, examples, steps, target, check_every):
    model = build_model(config, data, without_dropout=True)
    optimizer = trainer_lib.make_optimizer(config.optimizer, config.lr, config.clip_norm, config.clip_value)
    x, y = _subset(data, examples, config.seed)
    # One full batch, check_every steps per epoch: the engine checks the last step's accuracy (that
    # of the forward pass it trains on) after every check_every steps and stops once it is reached.
    batches = tf.data.Dataset.from_tensors((x, y)).repeat(check_every)
    run = dataclasses.replace(config, epochs=-(-steps // check_every), max_steps=steps, batch_size=int(y.shape[0]),
                              steps_per_execution=check_every, weight_decay=0.0, mixed_precision=None,
                              strategy="default", augment=[], log_every=steps + 1)
    stop = StopAtMetric("accuracy", target)
    task = ClassificationTask(run, model=model, optimizer=optimizer, train_data=batches, evaluate=False)
    engine = Engine(task, None, log=None, hooks=[stop], progress=False)
    loss, accuracy = float("nan"), 0.0
    try:
        engine.run()
    except NonFiniteLossError:
        pass
    else:
        logs = {k: float(v) for k, v in engine.last_logs.items()}
        loss, accuracy = logs["loss"], logs["accuracy"]
    done = int(engine.state.step.numpy())
    passed = accuracy >= target
    return Check("overfit_small_subset", passed, accuracy, f">= {target:g} training accuracy within {steps} steps",
                 f"{int(y.shape[0])} examples, {config.optimizer} lr {config.lr:g}, no regularisation: "
                 f"{done} steps, loss {loss:.4g}")


def sanity_check(config=None, data=None, log=print, overfit_examples=50, overfit_steps=300, *,
                 loss_tolerance=0.5, regularization=1.0, loss_examples=512, overfit_target=1.0, check_every=10):
    """Run the lecture 6 sanity checks for ``config`` and return a :class:`SanityReport`.

    Args:
      config: :class:`TrainConfig` (default: the default config). Its model, options, init,
        seed, optimizer, lr, clipping and penalty type are used; its ``weight_decay`` is not (the
        checks turn regularisation off, then on at ``regularization``).
      data: a loaded ``DataSplits`` (default: load ``config.dataset``).
      log: called with each check's line as it finishes (``None``: silent).
      overfit_examples: size of the training subset of check (c).
      overfit_steps: full-batch step budget of check (c).
      loss_tolerance: check (a) passes when ``|loss - ln C| <= loss_tolerance * ln C``. With
        logits ``z ~ N(0, s^2)`` the expected loss is about ``ln C + s^2 / 2``, and He
        initialisation of the logit layer gives ``s^2`` near 1: on digits the registry's nets
        measure 1.00-1.41 x ``ln C`` (lenet5 1.00, fc_net 1.12, small_convnet 1.26,
        two_layer_net 1.34, three_layer_convnet 1.41), so the default is 50%. A broken
        initialisation lands far outside (all-ones kernels: hundreds).
      regularization: the L2 strength (``weight_decay``) of check (b).
      loss_examples: training examples averaged in check (a).
      overfit_target: training accuracy check (c) must reach.
      check_every: steps between accuracy checks in (c) (the run stops as soon as it passes).
    """
    config = (config or TrainConfig()).validate()
    overfit_examples = validation.positive_int("overfit_examples", overfit_examples)
    overfit_steps = validation.positive_int("overfit_steps", overfit_steps)
    loss_examples = validation.positive_int("loss_examples", loss_examples)
    check_every = validation.positive_int("check_every", check_every)
    validation.positive_number("loss_tolerance", loss_tolerance)
    validation.positive_number("regularization", regularization)
    if not 0 < overfit_target <= 1:
        raise ConfigError(f"overfit_target must be in (0, 1], got {overfit_target!r}")
    data = data or config_lib.load_data(config)
    log = log or (lambda _: None)
    checks = []
    model, loss, check = _check_initial_loss(config, data, loss_examples, loss_tolerance)
    checks.append(check)
    log(str(check))
    checks.append(_check_regularization(config, model, loss, regularization))
    log(str(checks[-1]))
    checks.append(_check_overfit(config, data, overfit_examples, overfit_steps, overfit_target, check_every))
    log(str(checks[-1]))
    return SanityReport(checks)
