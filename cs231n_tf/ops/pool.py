"""Pooling (lecture 5, assignment 2): max and average over windows, no padding.

``x (N, H, W, C) -> (N, Ho, Wo, C)`` with ``Ho = (H - pool_height) / stride + 1`` (same for W);
a remainder is a ShapeError. Windows are the im2col blocks of ``_windows``.
"""

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.ops._util import check_rank, float_tensors, zeros_if_none
from cs231n_tf.ops._windows import col2im_blocks, im2col_blocks, window_grid


def check_pool(op, x, pool_height, pool_width, stride):
    """Validate pooling arguments; returns ``(x, pool_height, pool_width, stride)``."""
    pool_height = validation.positive_int("pool_height", pool_height)
    pool_width = validation.positive_int("pool_width", pool_width)
    stride = validation.positive_int("stride", stride)
    check_rank(x, 4, "x", "(N, H, W, C)")
    x, _, _ = window_grid(x, pool_height, pool_width, stride, 0, op)
    return x, pool_height, pool_width, stride


def max_pool_first_argmax(x, pool_height, pool_width, stride):
    """Max pooling that also returns where each max came from.

    Returns ``(out, position)``: ``position (N, Ho, Wo, C)`` int32 is the row-major index
    ``ph * pool_width + pw`` of the maximum inside its window; on ties, the first one.
    The gradient flows to that position only.
    """

    @tf.custom_gradient
    def _pool(x):
        blocks = im2col_blocks(x, pool_height, pool_width, stride)
        out, position = blocks[0], tf.zeros_like(blocks[0], dtype=tf.int32)
        for k, block in enumerate(blocks[1:], start=1):
            # Strictly greater: an equal later value does not move the argmax, so ties keep the first.
            better = block > out
            out = tf.where(better, block, out)
            position = tf.where(better, k, position)

        def grad(dout, _):
            dout = zeros_if_none(dout, out)
            zeros = tf.zeros_like(dout)
            dblocks = [tf.where(position == k, dout, zeros) for k in range(len(blocks))]
            return col2im_blocks(dblocks, pool_height, pool_width, stride)

        return (out, position), grad

    return _pool(x)


def max_pool(x, pool_height, pool_width, stride):
    """Max pooling: ``(N, H, W, C) -> (N, Ho, Wo, C)``, the maximum of each window.

    Backward: each window's upstream gradient goes to its argmax; on ties to the first maximum
    in row-major window order. Overlapping windows (stride < pool size) add up.
    """
    (x,) = float_tensors(x)
    x, pool_height, pool_width, stride = check_pool("max_pool", x, pool_height, pool_width, stride)
    return max_pool_first_argmax(x, pool_height, pool_width, stride)[0]


def avg_pool(x, pool_height, pool_width, stride):
    """Average pooling: ``(N, H, W, C) -> (N, Ho, Wo, C)``, the mean of each window.

    Backward: every input in a window receives ``dout / (pool_height * pool_width)``.
    """
    (x,) = float_tensors(x)
    x, pool_height, pool_width, stride = check_pool("avg_pool", x, pool_height, pool_width, stride)
    size = pool_height * pool_width

    @tf.custom_gradient
    def _pool(x):
        out = tf.add_n(im2col_blocks(x, pool_height, pool_width, stride)) / size

        def grad(dout):
            return col2im_blocks([dout / size] * size, pool_height, pool_width, stride)

        return out, grad

    return _pool(x)
