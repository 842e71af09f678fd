"""Three-layer convolutional network built from the hand-written ops (lecture 5, assignment 2).

    conv - relu - 2x2 max pool - affine - relu - affine - softmax

NHWC images ``(N, H, W, C)``. The convolution (im2col) has stride 1 and zero padding
``(filter_size - 1) // 2``, which keeps H and W for odd filter sizes ("same"); the pool halves
them, so ``W2`` is ``(H/2 * W/2 * num_filters, hidden_dim)``.
"""

import tensorflow as tf

from cs231n_tf import ops, validation
from cs231n_tf.classic._inputs import non_negative_float
from cs231n_tf.classic._network import OpsNetwork, check_image_input
from cs231n_tf.errors import ConfigError


class ThreeLayerConvNet(OpsNetwork):
    """The assignment's ``ThreeLayerConvNet``, channels last.

    Parameters: ``W1 (filter_size, filter_size, C, num_filters)``, ``b1 (num_filters,)``,
    ``W2 (H/2 * W/2 * num_filters, hidden_dim)``, ``b2``, ``W3 (hidden_dim, num_classes)``, ``b3``;
    weights ``N(0, weight_scale**2)``, biases zero. See
    :class:`~cs231n_tf.classic._network.OpsNetwork` for ``params`` and ``loss``.
    """

    def __init__(self, input_dim=(32, 32, 3), num_filters=32, filter_size=7, hidden_dim=100, num_classes=10,
                 weight_scale=1e-3, reg=0.0, dtype=tf.float32, seed=0):
        super().__init__(reg, dtype, seed)
        try:
            height, width, channels = (validation.positive_int("input_dim entries", d) for d in input_dim)
        except (TypeError, ValueError):
            raise ConfigError(f"input_dim must be (H, W, C) positive ints, got {input_dim!r}") from None
        # The padding below keeps H and W only for odd filters, and the 2x2 pool needs them even.
        self.filter_size = validation.positive_int("filter_size", filter_size)
        if self.filter_size % 2 == 0:
            raise ConfigError(f"filter_size must be odd so that padding keeps H and W, got {filter_size}")
        if height % 2 or width % 2:
            raise ConfigError(f"input_dim H and W must be even for the 2x2 max pool, got {tuple(input_dim)}")
        self.input_dim = (height, width, channels)
        num_filters = validation.positive_int("num_filters", num_filters)
        hidden_dim = validation.positive_int("hidden_dim", hidden_dim)
        self._num_classes = validation.positive_int("num_classes", num_classes)
        weight_scale = non_negative_float("weight_scale", weight_scale)

        self._add_weight("W1", [self.filter_size, self.filter_size, channels, num_filters], weight_scale)
        self._add_constant(self.params, "b1", [num_filters], 0.0)
        self._add_weight("W2", [(height // 2) * (width // 2) * num_filters, hidden_dim], weight_scale)
        self._add_constant(self.params, "b2", [hidden_dim], 0.0)
        self._add_weight("W3", [hidden_dim, self._num_classes], weight_scale)
        self._add_constant(self.params, "b3", [self._num_classes], 0.0)

    def _check_input(self, x):
        return check_image_input(x, self.input_dim, self.dtype)

    def _forward(self, p, state, x, training):
        pad = (self.filter_size - 1) // 2
        h = ops.relu(ops.conv2d_im2col(x, p["W1"], p["b1"], stride=1, pad=pad))
        h = ops.max_pool(h, 2, 2, 2)
        h = ops.relu(ops.affine(h, p["W2"], p["b2"]))
        return ops.affine(h, p["W3"], p["b3"]), {}
