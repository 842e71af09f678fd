"""Tier 1: the course's layers with forward and backward passes written by hand.

Every op is a function over tensors (NumPy arrays are accepted) whose gradient is a
``tf.custom_gradient`` spelling out the course's derivation; each works in float32 and float64,
eagerly and inside ``tf.function``. Layout NHWC, conv kernels ``(KH, KW, C_in, C_out)``.
``cs231n_tf.ops.gradcheck`` checks them against numerical gradients.

Modules follow the lectures: ``layers`` (affine, activations, dropout), ``conv``, ``pool``,
``norm``, ``losses``, ``rnn``, ``upsample`` (segmentation), ``gradcheck``.
"""

from cs231n_tf.ops.conv import conv2d_im2col, conv2d_naive
from cs231n_tf.ops.gradcheck import check_gradients, numerical_gradient, relative_error
from cs231n_tf.ops.layers import (
    affine, dropout, elu, leaky_relu, maxout, prelu, relu, sigmoid, tanh,
)
from cs231n_tf.ops.losses import softmax_loss, svm_loss, temporal_softmax_loss
from cs231n_tf.ops.norm import batchnorm, layernorm, spatial_batchnorm
from cs231n_tf.ops.pool import avg_pool, max_pool
from cs231n_tf.ops.rnn import (
    lstm, lstm_step, rnn, rnn_step, temporal_affine, word_embedding,
)
from cs231n_tf.ops.upsample import (
    bed_of_nails_upsample, conv2d_transpose, max_pool_with_argmax, max_unpool, nearest_upsample,
)

__all__ = [
    "affine", "avg_pool", "batchnorm", "bed_of_nails_upsample", "check_gradients",
    "conv2d_im2col", "conv2d_naive", "conv2d_transpose", "dropout", "elu", "layernorm",
    "leaky_relu", "lstm", "lstm_step", "max_pool", "max_pool_with_argmax", "max_unpool",
    "maxout", "nearest_upsample", "numerical_gradient", "prelu", "relative_error", "relu",
    "rnn", "rnn_step", "sigmoid", "softmax_loss", "spatial_batchnorm", "svm_loss", "tanh",
    "temporal_affine", "temporal_softmax_loss", "word_embedding",
]
