"""A small version of the assignment's ``Solver``: minibatch training of the course's networks.

Each step computes ``(loss, grads)`` with the network's compiled ``tf.function`` and applies one of
the course's update rules (:mod:`cs231n_tf.optim.rules`) to every parameter, keeping one config
dict (learning rate and the rule's state) per parameter. The update runs eagerly, as in the
assignment; it is a handful of elementwise ops per parameter, small next to the forward and
backward passes. After every epoch the learning rate is multiplied by ``lr_decay`` and train /
validation accuracy are recorded; at the end the parameters with the best validation accuracy are
restored.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.classic._inputs import as_labels, choice, non_negative_float
from cs231n_tf.classic._network import OpsNetwork, store
from cs231n_tf.errors import DataError, InputTypeError
from cs231n_tf.optim.rules import RULES

DATA_KEYS = ("x_train", "y_train", "x_val", "y_val")


def accuracy(net, x, y, batch_size=1000):
    """Fraction of ``x`` that ``net`` classifies as ``y``, scored ``batch_size`` rows at a time."""
    y = np.asarray(y)
    predictions = [net.predict(x[i:i + batch_size]) for i in range(0, len(y), batch_size)]
    return float(np.mean(np.concatenate(predictions) == y))


def train_network(net, data, update="sgd", learning_rate=1e-3, num_epochs=10, batch_size=100, seed=0,
                  lr_decay=1.0, optim_config=None, num_train_samples=1000):
    """Train ``net`` on ``data`` and return its history.

    ``data`` is a dict of NumPy arrays ``x_train, y_train, x_val, y_val``. ``update`` names a rule
    of :mod:`cs231n_tf.optim.rules` (``'sgd'``, ``'sgd_momentum'``, ``'adam'``, ...), configured
    with ``learning_rate`` plus any other hyperparameters in ``optim_config`` (e.g.
    ``{'momentum': 0.9}``). Each epoch visits the training set once in a random order drawn from
    ``seed``. Training accuracy is measured on ``num_train_samples`` random training examples.

    Returns ``{'loss_history': [...], 'train_acc_history': [...], 'val_acc_history': [...],
    'best_val_acc': float}``; ``net.params`` (and ``net.bn_params``) end at the epoch with the
    best validation accuracy.
    """
    if not isinstance(net, OpsNetwork):
        raise InputTypeError(f"net must be one of the cs231n_tf.classic networks, got {type(net).__name__}")
    if not isinstance(data, dict) or any(k not in data for k in DATA_KEYS):
        raise DataError(f"data must be a dict with keys {', '.join(DATA_KEYS)}; got "
                        f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
    rule = RULES[choice("update", update, tuple(RULES))]
    learning_rate = non_negative_float("learning_rate", learning_rate)
    num_epochs = validation.positive_int("num_epochs", num_epochs)
    batch_size = validation.positive_int("batch_size", batch_size)
    lr_decay = non_negative_float("lr_decay", lr_decay)
    x_train, x_val = np.asarray(data["x_train"]), np.asarray(data["x_val"])
    y_train = as_labels(data["y_train"], len(x_train), "data['y_train']").numpy()
    y_val = as_labels(data["y_val"], len(x_val), "data['y_val']").numpy()
    if len(x_train) == 0 or len(x_val) == 0:
        raise DataError(f"data needs training and validation examples, got {len(x_train)} and {len(x_val)}")

    rng = np.random.default_rng(seed)
    configs = {k: {**(optim_config or {}), "learning_rate": learning_rate} for k in net.params}
    history = {"loss_history": [], "train_acc_history": [], "val_acc_history": [], "best_val_acc": -1.0}
    best = None
    num_train = len(x_train)
    for _ in range(num_epochs):
        order = rng.permutation(num_train)
        for start in range(0, num_train, batch_size):
            idx = order[start:start + batch_size]
            loss, grads = net.loss_tensors(x_train[idx], y_train[idx])
            for name, grad in grads.items():
                next_w, configs[name] = rule(tf.convert_to_tensor(net.params[name]), grad, configs[name])
                store(net.params, name, next_w)
            history["loss_history"].append(float(loss))
        for config in configs.values():
            config["learning_rate"] *= lr_decay
        sample = rng.choice(num_train, min(num_train_samples, num_train), replace=False)
        history["train_acc_history"].append(accuracy(net, x_train[sample], y_train[sample]))
        val_acc = accuracy(net, x_val, y_val)
        history["val_acc_history"].append(val_acc)
        if val_acc > history["best_val_acc"]:
            history["best_val_acc"] = val_acc
            best = [{k: tf.identity(v) for k, v in d.items()} for d in (net.params, net.bn_params)]
    for mapping, saved in zip((net.params, net.bn_params), best):
        for name, value in saved.items():
            store(mapping, name, value)
    return history
