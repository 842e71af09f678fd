"""Convolution (lecture 5, assignment 2): a naive loop version and a fast im2col version.

Layout NHWC, kernels ``(KH, KW, C_in, C_out)`` as in ``tf.nn.conv2d``. Like the course (and
``tf.nn.conv2d``) this is cross-correlation: the kernel is not flipped. Zero padding of ``pad``
on every side; ``(H + 2*pad - KH)`` and ``(W + 2*pad - KW)`` must be divisible by ``stride``.
"""

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ShapeError
from cs231n_tf.ops._util import check_dim, check_rank, float_tensors, shape_of
from cs231n_tf.ops._windows import col2im_blocks, crop_hw, im2col_blocks, pad_hw, window_grid


def _check_conv(op, x, w, b, stride, pad):
    """Validate a conv's arguments; returns ``(x, stride, pad, out_h, out_w)``."""
    stride = validation.positive_int("stride", stride)
    pad = validation.non_negative_int("pad", pad)
    check_rank(x, 4, "x", "(N, H, W, C_in)")
    check_rank(w, 4, "w", "(KH, KW, C_in, C_out)")
    check_rank(b, 1, "b", "(C_out,)")
    kernel_h, kernel_w, c_in, c_out = w.shape
    if kernel_h is None or kernel_w is None:
        raise ShapeError(f"{op}: the kernel's KH and KW must be static, got w shape {w.shape}")
    check_dim(x.shape[3], c_in, f"{op}: x's channels must match w's C_in (w shape {w.shape})")
    check_dim(b.shape[0], c_out, f"{op}: b's length must match w's C_out (w shape {w.shape})")
    x, out_h, out_w = window_grid(x, kernel_h, kernel_w, stride, pad, op)
    return x, stride, pad, out_h, out_w


def _matmul_channels(x, m, transpose_m=False):
    """``(N, H, W, C) @ (C, F) -> (N, H, W, F)`` as one 2-D matmul."""
    n, height, width, channels = shape_of(x)
    out = tf.matmul(tf.reshape(x, [-1, channels]), m, transpose_b=transpose_m)
    return tf.reshape(out, [n, height, width, tf.shape(out)[1]])


def conv_forward(x, w, stride, pad):
    """``sum_k cols_k @ w[kh, kw]`` over kernel offsets: ``(N, H, W, C) -> (N, Ho, Wo, F)``."""
    kernel_h, kernel_w = w.shape[0], w.shape[1]
    blocks = im2col_blocks(pad_hw(x, pad), kernel_h, kernel_w, stride)
    w_blocks = tf.unstack(tf.reshape(w, [kernel_h * kernel_w, w.shape[2], w.shape[3]]))
    return tf.add_n([_matmul_channels(block, w_k) for block, w_k in zip(blocks, w_blocks)])


def conv_backward_input(dout, w, stride, pad):
    """dx of :func:`conv_forward`: ``dcols_k = dout @ w[kh, kw]^T``, then col2im and unpad.

    ``dout (N, Ho, Wo, F) -> dx (N, (Ho-1)*stride + KH - 2*pad, ..., C)``.
    """
    kernel_h, kernel_w = w.shape[0], w.shape[1]
    w_blocks = tf.unstack(tf.reshape(w, [kernel_h * kernel_w, w.shape[2], w.shape[3]]))
    dblocks = [_matmul_channels(dout, w_k, transpose_m=True) for w_k in w_blocks]
    return crop_hw(col2im_blocks(dblocks, kernel_h, kernel_w, stride), pad)


def conv_backward_kernel(x, dout, kernel_shape, stride, pad):
    """dw of :func:`conv_forward`: ``dw[kh, kw] = cols_k^T @ dout``, shape ``kernel_shape``."""
    kernel_h, kernel_w, channels, filters = kernel_shape
    blocks = im2col_blocks(pad_hw(x, pad), kernel_h, kernel_w, stride)
    dout_2d = tf.reshape(dout, [-1, filters])
    dw = [tf.matmul(tf.reshape(block, [-1, channels]), dout_2d, transpose_a=True) for block in blocks]
    return tf.reshape(tf.stack(dw), kernel_shape)


def conv2d_im2col(x, w, b, stride=1, pad=0):
    """Fast convolution by im2col and matrix multiplication.

    Shapes: ``x (N, H, W, C_in)``, ``w (KH, KW, C_in, C_out)``, ``b (C_out,)`` ->
    ``out (N, Ho, Wo, C_out)`` with ``Ho = (H + 2*pad - KH) / stride + 1`` (same for W).

    Forward: ``out = cols @ W + b`` where ``cols`` is the im2col matrix, used in one block per
    kernel offset (see ``_windows``). Backward: ``dW = cols^T @ dout``, ``db = sum(dout)`` and
    ``dx = col2im(dout @ W^T)``, col2im summing each window's gradient back into place.
    """
    x, w, b = float_tensors(x, w, b)
    x, stride, pad, _, _ = _check_conv("conv2d_im2col", x, w, b, stride, pad)

    @tf.custom_gradient
    def _conv(x, w, b):
        def grad(dout):
            dx = conv_backward_input(dout, w, stride, pad)
            dw = conv_backward_kernel(x, dout, w.shape, stride, pad)
            return dx, dw, tf.reduce_sum(dout, [0, 1, 2])

        return conv_forward(x, w, stride, pad) + b, grad

    return _conv(x, w, b)


def conv2d_naive(x, w, b, stride=1, pad=0):
    """Convolution written as a loop over output positions, for teaching; slow.

    Shapes as :func:`conv2d_im2col`. ``out[:, i, j, f] = sum(window(i, j) * w[..., f]) + b[f]``
    where ``window(i, j) = x_pad[:, i*stride : i*stride + KH, j*stride : j*stride + KW, :]``,
    computed as the flattened window times the flattened filters. Backward loops over the same
    positions: ``dw += window^T dout[:, i, j]`` and ``dwindow = dout[:, i, j] w^T`` is added back
    where the window came from.
    The loops run in Python, so H and W must be static.
    """
    x, w, b = float_tensors(x, w, b)
    x, stride, pad, out_h, out_w = _check_conv("conv2d_naive", x, w, b, stride, pad)
    if not (isinstance(out_h, int) and isinstance(out_w, int)):
        raise ShapeError(f"conv2d_naive loops in Python and needs static H and W, got x shape {x.shape}")
    kernel_h, kernel_w = w.shape[0], w.shape[1]

    @tf.custom_gradient
    def _conv(x, w, b):
        x_pad = pad_hw(x, pad)
        _, padded_h, padded_w, _ = shape_of(x_pad)
        w_flat = tf.reshape(w, [-1, w.shape[3]])  # one column of KH*KW*C_in weights per filter

        def window(i, j):
            top, left = i * stride, j * stride
            return x_pad[:, top:top + kernel_h, left:left + kernel_w, :]

        def flat_window(i, j):
            return tf.reshape(window(i, j), [-1, w_flat.shape[0]])

        rows = []
        for i in range(out_h):
            row = [flat_window(i, j) @ w_flat + b for j in range(out_w)]
            rows.append(tf.stack(row, axis=1))
        out = tf.stack(rows, axis=1)

        def grad(dout):
            dw_parts, dx_parts = [], []
            for i in range(out_h):
                for j in range(out_w):
                    d = dout[:, i, j, :]
                    dw_parts.append(tf.matmul(flat_window(i, j), d, transpose_a=True))
                    dwindow = tf.reshape(tf.matmul(d, w_flat, transpose_b=True), tf.shape(window(i, j)))
                    top, left = i * stride, j * stride
                    dx_parts.append(tf.pad(dwindow, [
                        [0, 0],
                        [top, padded_h - top - kernel_h],
                        [left, padded_w - left - kernel_w],
                        [0, 0],
                    ]))
            dx = crop_hw(tf.add_n(dx_parts), pad)
            dw = tf.reshape(tf.add_n(dw_parts), w.shape)
            return dx, dw, tf.reduce_sum(dout, [0, 1, 2])

        return out, grad

    return _conv(x, w, b)
