"""What the course's networks share: parameters, regularised softmax loss, compiled loss/gradients.

A network subclasses :class:`OpsNetwork` and provides ``_forward`` (scores from parameters) and
``_check_input``. Gradients come from ``tf.GradientTape`` running backwards through the
hand-written ``tf.custom_gradient`` ops of :mod:`cs231n_tf.ops`, so every backward step is the
course's derivation rather than TensorFlow's autodiff of the forward pass.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import ops
from cs231n_tf.classic._inputs import as_features, as_float_tensor, as_labels, non_negative_float
from cs231n_tf.errors import ConfigError, DataError, InputTypeError, ShapeError


def float_dtype(dtype):
    """``dtype`` (a tf/NumPy dtype or its name) as ``tf.float32`` or ``tf.float64``."""
    try:
        dt = tf.as_dtype(dtype)
    except TypeError:
        raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (tf.float32, tf.float64):
        raise ConfigError(f"dtype must be float32 or float64, got {dt.name}")
    return dt


def store(mapping, key, value):
    """Put ``value`` under ``key``: assign into the variable there, or wrap it in a new variable."""
    if isinstance(mapping.get(key), tf.Variable):
        mapping[key].assign(value)
    else:
        mapping[key] = tf.Variable(value, name=key)


class OpsNetwork:
    """Base class of :class:`~cs231n_tf.classic.TwoLayerNet` and friends.

    ``params`` maps names (``W1, b1, ...``, ``gamma1, beta1, ...``) to ``tf.Variable``s of
    ``dtype``. Read them with ``params[name].numpy()``; set them with ``params[name].assign(a)``,
    or replace an entry by any NumPy array/tensor of the same shape (``loss`` converts whatever it
    finds, and :func:`train_network` turns it back into a variable). ``bn_params`` holds the
    batch-normalisation running statistics the same way (empty without batchnorm).

    ``loss(x)`` returns test-time scores; ``loss(x, y)`` runs the training-time forward pass
    (dropout on, batchnorm on batch statistics, running statistics updated) and returns
    ``(loss, grads)``. The loss is the mean softmax cross-entropy plus ``0.5 * reg * sum(W**2)``
    over the weight matrices ``W*`` only (not biases, gammas or betas).
    """

    def __init__(self, reg, dtype, seed):
        self.reg = non_negative_float("reg", reg)
        self.dtype = float_dtype(dtype)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise InputTypeError(f"seed must be an int, got {seed!r}")
        self.seed = int(seed)
        self.params = {}
        self.bn_params = {}
        self._init_stream = 0
        self._scores_fn = tf.function(self._scores, reduce_retracing=True, autograph=False)
        self._train_fn = tf.function(self._loss_and_grads, reduce_retracing=True, autograph=False)

    def _normal(self, shape, scale):
        # Each weight draws from its own stream of the stateless RNG, so one seed fixes them all.
        self._init_stream += 1
        return scale * tf.random.stateless_normal(shape, seed=[self.seed, self._init_stream], dtype=self.dtype)

    def _add_weight(self, name, shape, scale):
        self.params[name] = tf.Variable(self._normal(shape, scale), name=name)

    def _add_constant(self, mapping, name, shape, value):
        mapping[name] = tf.Variable(tf.fill(shape, tf.constant(value, self.dtype)), name=name)

    @property
    def num_classes(self):
        return self._num_classes

    def _check_input(self, x):
        """``x`` as a tensor of ``self.dtype`` with the shape the network takes."""
        raise NotImplementedError

    def _forward(self, p, state, x, training):
        """Scores ``(N, C)`` and the updated ``state`` (batchnorm running statistics)."""
        raise NotImplementedError

    def _tensors(self, mapping):
        return {k: tf.convert_to_tensor(v, dtype=self.dtype) for k, v in mapping.items()}

    def _scores(self, p, state, x):
        return self._forward(p, state, x, False)[0]

    def _loss_and_grads(self, p, state, x, y, reg):
        with tf.GradientTape() as tape:
            tape.watch(p)
            scores, new_state = self._forward(p, state, x, True)
            weights = [v for k, v in p.items() if k.startswith("W")]
            penalty = 0.5 * reg * tf.add_n([tf.reduce_sum(w * w) for w in weights])
            loss = ops.softmax_loss(scores, y) + penalty
        return loss, tape.gradient(loss, p), new_state

    def scores(self, x):
        """Test-time class scores ``(N, C)`` as a tensor."""
        return self._scores_fn(self._tensors(self.params), self._tensors(self.bn_params), self._check_input(x))

    def predict(self, x):
        """Predicted labels ``(N,)``, an int32 NumPy array."""
        return tf.argmax(self.scores(x), axis=1, output_type=tf.int32).numpy()

    def loss_tensors(self, x, y):
        """Like ``loss(x, y)`` but returns tensors ``(loss, grads)`` (no NumPy round trip)."""
        x = self._check_input(x)
        y = as_labels(y, x.shape[0], "y")
        if int(tf.reduce_max(y)) >= self._num_classes:
            raise DataError(f"y has label {int(tf.reduce_max(y))} but the network has {self._num_classes} classes")
        loss, grads, new_state = self._train_fn(self._tensors(self.params), self._tensors(self.bn_params), x, y,
                                                tf.constant(self.reg, self.dtype))
        for key, value in new_state.items():
            store(self.bn_params, key, value)
        return loss, grads

    def loss(self, x, y=None):
        """Scores ``(N, C)`` (NumPy) if ``y`` is None, else ``(loss, grads)``: a float and a dict of
        NumPy arrays with the keys and shapes of ``params``."""
        if y is None:
            return self.scores(x).numpy()
        loss, grads = self.loss_tensors(x, y)
        return float(loss), {k: v.numpy() for k, v in grads.items()}


def check_flat_input(x, input_dim, dtype):
    """``x (N, d1, ..., dk)`` flattened to ``(N, input_dim)`` in ``dtype``."""
    t = as_features(x, "x", dtype)
    if t.shape[0] == 0:
        raise ShapeError("x must hold at least one example, got 0")
    if t.shape[1] != input_dim:
        raise ShapeError(f"x has {t.shape[1]} features per example but the network takes input_dim={input_dim}")
    return t


def check_image_input(x, shape, dtype):
    """``x`` of shape ``(N, H, W, C)`` with ``(H, W, C) == shape``, in ``dtype``."""
    t = as_float_tensor(x, "x", dtype)
    if t.shape.rank != 4 or tuple(t.shape[1:]) != tuple(shape) or t.shape[0] == 0:
        raise ShapeError(f"x must have shape (N, {', '.join(map(str, shape))}) with N >= 1, got {tuple(t.shape)}")
    return t
