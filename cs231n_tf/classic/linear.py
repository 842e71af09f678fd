"""Linear classifiers: multiclass SVM and softmax (lectures 2-3, assignment 1).

Scores are ``x @ W + b`` with ``W (D, C)`` and ``b (C,)``. The bias is kept separate from ``W``
(not folded into it with a column of ones) so that it is not regularised: the penalty
``reg * R(W)`` reads ``W`` only, as the course recommends, because a bias does not control how
strongly the classifier reacts to its input. ``R`` is

- ``'l2'``:          ``sum(W**2)`` (assignment 1 uses ``reg * sum(W**2)``, without a 1/2),
- ``'l1'``:          ``sum(|W|)`` (subgradient 0 where ``W == 0``),
- ``'elastic_net'``: ``l1_ratio * sum(|W|) + (1 - l1_ratio) * sum(W**2)``.

The data term is the hand-written ``svm_loss`` / ``softmax_loss`` of :mod:`cs231n_tf.ops`, whose
backward passes are the course's derivations. Training is minibatch SGD run as one compiled
``tf.function`` loop, with minibatches drawn (with replacement, as in the assignment) from a
seeded stateless RNG, so a given ``seed`` always gives the same run.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import ops, validation
from cs231n_tf.classic._inputs import (as_features, as_float_tensor, as_labels, check_finite, choice,
                                       non_negative_float)
from cs231n_tf.errors import ConfigError, DataError, InputTypeError, ShapeError

REGULARIZATIONS = ("l2", "l1", "elastic_net")

# Separate stateless-RNG streams: minibatch i uses (seed, i), the weight init (seed, _INIT_STREAM).
_INIT_STREAM = -1


def regularization_penalty(W, reg, regularization="l2", l1_ratio=0.5):
    """``reg * R(W)`` for ``R`` in ``'l2'``, ``'l1'``, ``'elastic_net'`` (see the module docstring)."""
    l2 = tf.reduce_sum(W * W)
    if regularization == "l2":
        return reg * l2
    l1 = tf.reduce_sum(tf.abs(W))
    if regularization == "l1":
        return reg * l1
    return reg * (l1_ratio * l1 + (1.0 - l1_ratio) * l2)


def _objective(W, b, x, y, reg, l1_ratio, data_loss, regularization):
    with tf.GradientTape() as tape:
        tape.watch([W, b])
        loss = data_loss(ops.affine(x, W, b), y) + regularization_penalty(W, reg, regularization, l1_ratio)
    dW, db = tape.gradient(loss, [W, b])
    return loss, dW, db


# autograph=False: nothing here branches on tensors, and converting the ops' code costs seconds.
@tf.function(reduce_retracing=True, autograph=False)
def _loss_and_grads(W, b, x, y, reg, l1_ratio, data_loss, regularization):
    return _objective(W, b, x, y, reg, l1_ratio, data_loss, regularization)


@tf.function(reduce_retracing=True, autograph=False)
def _sgd(W, b, x, y, learning_rate, reg, l1_ratio, num_iters, batch_size, seed, data_loss, regularization):
    num_train = tf.shape(x)[0]

    def step(it, history):
        idx = tf.random.stateless_uniform([batch_size], seed=tf.stack([seed, it]), minval=0,
                                          maxval=num_train, dtype=tf.int32)
        loss, dW, db = _objective(W.read_value(), b.read_value(), tf.gather(x, idx), tf.gather(y, idx),
                                  reg, l1_ratio, data_loss, regularization)
        # The updates must land before the next iteration reads W and b.
        with tf.control_dependencies([W.assign_sub(learning_rate * dW), b.assign_sub(learning_rate * db)]):
            return it + 1, history.write(it, loss)

    history = tf.TensorArray(W.dtype, size=num_iters)
    _, history = tf.while_loop(lambda it, _: it < num_iters, step, [tf.constant(0), history])
    return history.stack()


def _as_variable(value, name):
    if value is None:
        return None
    return tf.Variable(as_float_tensor(value, name), name=name)


class LinearClassifier:
    """Shared base of :class:`LinearSVM` and :class:`SoftmaxClassifier`.

    ``W (D, C)`` and ``b (C,)`` are ``tf.Variable``s (``None`` before the first :meth:`train`).
    Assigning a NumPy array or tensor to ``W`` or ``b`` wraps it in a new variable, keeping its
    dtype if it is float64. Subclasses set ``data_loss(scores, y) -> scalar``.
    """

    data_loss = None

    def __init__(self):
        self._W = None
        self._b = None

    @property
    def W(self):
        return self._W

    @W.setter
    def W(self, value):
        var = _as_variable(value, "W")
        if var is not None and var.shape.rank != 2:
            raise ShapeError(f"W must have shape (D, C), got {tuple(var.shape)}")
        self._W = var

    @property
    def b(self):
        return self._b

    @b.setter
    def b(self, value):
        var = _as_variable(value, "b")
        if var is not None and var.shape.rank != 1:
            raise ShapeError(f"b must have shape (C,), got {tuple(var.shape)}")
        self._b = var

    def _check_params(self, what):
        if self._W is None or self._b is None:
            raise ConfigError(f"{type(self).__name__}.{what} needs W and b: call train() first or set them")
        if self._b.shape[0] != self._W.shape[1] or self._b.dtype != self._W.dtype:
            raise ShapeError(
                f"b {tuple(self._b.shape)} {self._b.dtype.name} does not fit W "
                f"{tuple(self._W.shape)} {self._W.dtype.name}; b must have shape (C,) and W's dtype"
            )

    def _features(self, x, name):
        x = as_features(x, name, dtype=self._W.dtype)
        if x.shape[1] != self._W.shape[0]:
            raise ShapeError(f"{name} has {x.shape[1]} features per example but W expects {self._W.shape[0]}")
        return x

    def _labels(self, y, n, name):
        y = as_labels(y, n, name)
        num_classes = self._W.shape[1]
        if n and int(tf.reduce_max(y)) >= num_classes:
            raise DataError(f"{name} has label {int(tf.reduce_max(y))} but the classifier has {num_classes} classes")
        return y

    @staticmethod
    def _regularization(regularization, l1_ratio):
        choice("regularization", regularization, REGULARIZATIONS)
        try:
            l1_ratio = float(l1_ratio)
        except (TypeError, ValueError):
            raise ConfigError(f"l1_ratio must be a number in [0, 1], got {l1_ratio!r}") from None
        if not 0.0 <= l1_ratio <= 1.0:
            raise ConfigError(f"l1_ratio must be in [0, 1], got {l1_ratio!r}")
        return l1_ratio

    def train(self, x, y, learning_rate=1e-3, reg=1e-5, num_iters=100, batch_size=200, seed=0,
              regularization="l2", l1_ratio=0.5):
        """Minibatch SGD on ``x (N, ...)`` (flattened to ``(N, D)``) and labels ``y (N,)``.

        On the first call ``W`` is drawn from ``N(0, 0.001**2)`` and ``b`` set to zero, with
        ``C = max(y) + 1`` classes; later calls continue from the current parameters. Returns the
        loss of each iteration's minibatch (a list of ``num_iters`` floats).
        """
        learning_rate = non_negative_float("learning_rate", learning_rate)
        reg = non_negative_float("reg", reg)
        num_iters = validation.positive_int("num_iters", num_iters)
        batch_size = validation.positive_int("batch_size", batch_size)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise InputTypeError(f"seed must be an int, got {seed!r}")
        l1_ratio = self._regularization(regularization, l1_ratio)
        if self._W is None:
            xf = as_features(x, "x")
            if xf.shape[0] == 0:
                raise ShapeError("x must hold at least one training example, got 0")
            num_classes = int(tf.reduce_max(as_labels(y, xf.shape[0], "y"))) + 1
            w0 = 0.001 * tf.random.stateless_normal([xf.shape[1], num_classes], seed=[int(seed), _INIT_STREAM],
                                                    dtype=xf.dtype)
            self.W = w0
            self.b = tf.zeros([num_classes], xf.dtype)
        self._check_params("train")
        x = self._features(x, "x")
        if x.shape[0] == 0:
            raise ShapeError("x must hold at least one training example, got 0")
        y = self._labels(y, x.shape[0], "y")
        check_finite(x, "x")
        dtype = self._W.dtype
        history = _sgd(self._W, self._b, x, y, tf.constant(learning_rate, dtype), tf.constant(reg, dtype),
                       tf.constant(l1_ratio, dtype), tf.constant(num_iters), tf.constant(batch_size),
                       tf.constant(int(seed), tf.int32), type(self).data_loss, regularization)
        return [float(v) for v in history.numpy()]

    def loss(self, x_batch, y_batch, reg, regularization="l2", l1_ratio=0.5):
        """Loss and gradients on one minibatch: ``(loss, dW, db)`` as a float and NumPy arrays.

        ``loss`` is the mean data loss over the batch plus ``reg * R(W)``; ``dW (D, C)`` and
        ``db (C,)`` are its gradients (the latter has no regularisation part).
        """
        self._check_params("loss")
        reg = non_negative_float("reg", reg)
        l1_ratio = self._regularization(regularization, l1_ratio)
        x = self._features(x_batch, "x_batch")
        if x.shape[0] == 0:
            raise ShapeError("x_batch must hold at least one example, got 0")
        y = self._labels(y_batch, x.shape[0], "y_batch")
        dtype = self._W.dtype
        loss, dW, db = _loss_and_grads(tf.convert_to_tensor(self._W), tf.convert_to_tensor(self._b), x, y,
                                       tf.constant(reg, dtype), tf.constant(l1_ratio, dtype), type(self).data_loss,
                                       regularization)
        return float(loss), dW.numpy(), db.numpy()

    def scores(self, x):
        """Class scores ``x @ W + b``, shape ``(N, C)``."""
        self._check_params("scores")
        return tf.matmul(self._features(x, "x"), self._W) + self._b

    def predict(self, x):
        """Predicted labels ``(N,)`` (int32 NumPy array): the highest-scoring class of each row."""
        return tf.argmax(self.scores(x), axis=1, output_type=tf.int32).numpy()


class LinearSVM(LinearClassifier):
    """Multiclass SVM: mean hinge loss ``sum_{j != y} max(0, s_j - s_y + 1)`` plus ``reg * R(W)``."""

    data_loss = staticmethod(ops.svm_loss)


class SoftmaxClassifier(LinearClassifier):
    """Softmax (multinomial logistic regression): mean cross-entropy plus ``reg * R(W)``."""

    data_loss = staticmethod(ops.softmax_loss)
