"""Fully connected networks built from the hand-written ops (lecture 4, assignments 1-2).

Architecture, for ``L = len(hidden_dims) + 1`` layers::

    {affine - [batchnorm | layernorm] - relu - [dropout]} x (L - 1) - affine - softmax

Parameters: ``W1 .. WL`` (``(D_in, D_out)``, drawn from ``N(0, weight_scale**2)``), ``b1 .. bL``
(zeros) and, with a normalisation, ``gamma1 .. gamma{L-1}`` (ones) and ``beta1 .. beta{L-1}``
(zeros). Batchnorm keeps ``running_mean{i}`` (zeros) and ``running_var{i}`` (ones) in
``bn_params``; the assignment starts the running variance at zero, but ones keeps test-time
outputs finite before the first training step.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import ops, validation
from cs231n_tf.classic._inputs import choice, non_negative_float
from cs231n_tf.classic._network import OpsNetwork, check_flat_input
from cs231n_tf.errors import ConfigError, InputTypeError

NORMALIZATIONS = (None, "batchnorm", "layernorm")


class FullyConnectedNet(OpsNetwork):
    """Fully connected net of any depth with optional dropout and batch/layer normalisation.

    ``dropout`` is the probability of dropping a unit (the 2017 assignment's convention, 0 = no
    dropout layers). Dropout masks come from TF's global generator, fresh on every training-time
    call (``tf.random.set_seed`` makes runs repeatable); an int ``dropout_seed`` instead fixes the
    masks (layer ``i`` uses ``dropout_seed + i``), which is what a gradient check needs.
    ``x`` may be ``(N, input_dim)`` or ``(N, d1, ..., dk)`` with ``d1 * ... * dk == input_dim``.
    See :class:`~cs231n_tf.classic._network.OpsNetwork` for ``params``, ``bn_params`` and ``loss``.
    """

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, dropout=0.0, normalization=None,
                 reg=0.0, weight_scale=1e-2, dtype=tf.float32, seed=0, dropout_seed=None):
        super().__init__(reg, dtype, seed)
        try:
            hidden_dims = [validation.positive_int("hidden_dims entries", h) for h in hidden_dims]
        except TypeError:
            raise ConfigError(f"hidden_dims must be a sequence of positive ints, got {hidden_dims!r}") from None
        self.input_dim = validation.positive_int("input_dim", input_dim)
        self._num_classes = validation.positive_int("num_classes", num_classes)
        self.normalization = choice("normalization", normalization, NORMALIZATIONS)
        self.dropout = non_negative_float("dropout", dropout)
        if self.dropout >= 1.0:
            raise ConfigError(f"dropout must be a drop probability in [0, 1), got {dropout!r}")
        if dropout_seed is not None and (isinstance(dropout_seed, bool)
                                         or not isinstance(dropout_seed, (int, np.integer))):
            raise InputTypeError(f"dropout_seed must be an int or None, got {dropout_seed!r}")
        self.dropout_seed = None if dropout_seed is None else int(dropout_seed)
        weight_scale = non_negative_float("weight_scale", weight_scale)

        dims = [self.input_dim, *hidden_dims, self._num_classes]
        self.num_layers = len(dims) - 1
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            self._add_weight(f"W{i}", [d_in, d_out], weight_scale)
            self._add_constant(self.params, f"b{i}", [d_out], 0.0)
            if i < self.num_layers and self.normalization is not None:
                self._add_constant(self.params, f"gamma{i}", [d_out], 1.0)
                self._add_constant(self.params, f"beta{i}", [d_out], 0.0)
                if self.normalization == "batchnorm":
                    self._add_constant(self.bn_params, f"running_mean{i}", [d_out], 0.0)
                    self._add_constant(self.bn_params, f"running_var{i}", [d_out], 1.0)

    def _check_input(self, x):
        return check_flat_input(x, self.input_dim, self.dtype)

    def _forward(self, p, state, x, training):
        new_state = {}
        h = x
        for i in range(1, self.num_layers):
            h = ops.affine(h, p[f"W{i}"], p[f"b{i}"])
            if self.normalization == "batchnorm":
                h, mean, var = ops.batchnorm(h, p[f"gamma{i}"], p[f"beta{i}"], state[f"running_mean{i}"],
                                             state[f"running_var{i}"], training)
                new_state[f"running_mean{i}"], new_state[f"running_var{i}"] = mean, var
            elif self.normalization == "layernorm":
                h = ops.layernorm(h, p[f"gamma{i}"], p[f"beta{i}"])
            h = ops.relu(h)
            if self.dropout > 0:
                seed = None if self.dropout_seed is None else self.dropout_seed + i
                h = ops.dropout(h, self.dropout, training, seed=seed)
        scores = ops.affine(h, p[f"W{self.num_layers}"], p[f"b{self.num_layers}"])
        return scores, new_state


class TwoLayerNet(FullyConnectedNet):
    """affine - relu - affine - softmax (assignment 2's ``TwoLayerNet``), weights ``N(0, weight_scale**2)``.

    Parameters ``W1 (input_dim, hidden_dim)``, ``b1``, ``W2 (hidden_dim, num_classes)``, ``b2``.
    Like the course's class it computes in float64 by default, so the notebooks' checks (scores
    within 1e-6 of the reference values) hold; pass ``dtype=tf.float32`` for speed.
    """

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10, weight_scale=1e-3, reg=0.0,
                 seed=0, dtype=tf.float64):
        super().__init__([hidden_dim], input_dim, num_classes, reg=reg, weight_scale=weight_scale, dtype=dtype,
                         seed=seed)
