"""Upsampling for segmentation (lecture 11): nearest neighbour, bed of nails, max unpooling and
transposed convolution. All NHWC.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, ShapeError
from cs231n_tf.ops._util import (
    check_dim, check_in_range, check_rank, float_tensors, int_tensor, shape_of,
)
from cs231n_tf.ops.conv import conv_backward_input, conv_backward_kernel, conv_forward
from cs231n_tf.ops.pool import check_pool, max_pool_first_argmax


def nearest_upsample(x, factor):
    """Nearest-neighbour upsampling: ``(N, H, W, C) -> (N, H*factor, W*factor, C)``, each value
    copied into a ``factor x factor`` block. Backward: each block's gradients summed."""
    factor = validation.positive_int("factor", factor)
    (x,) = float_tensors(x)
    check_rank(x, 4, "x", "(N, H, W, C)")

    @tf.custom_gradient
    def _upsample(x):
        n, height, width, channels = shape_of(x)
        blocks = tf.broadcast_to(x[:, :, None, :, None, :], [n, height, factor, width, factor, channels])

        def grad(dout):
            dout = tf.reshape(dout, [n, height, factor, width, factor, channels])
            return tf.reduce_sum(dout, [2, 4])

        return tf.reshape(blocks, [n, height * factor, width * factor, channels]), grad

    return _upsample(x)


def _dilate(x, factor):
    """Zero-insertion: ``(N, H, W, C) -> (N, H*factor, W*factor, C)`` with ``x`` at the
    top-left of each ``factor x factor`` block, zeros elsewhere."""
    n, height, width, channels = shape_of(x)
    x = tf.reshape(x, [n, height, 1, width, 1, channels])
    x = tf.pad(x, [[0, 0], [0, 0], [0, factor - 1], [0, 0], [0, factor - 1], [0, 0]])
    return tf.reshape(x, [n, height * factor, width * factor, channels])


def bed_of_nails_upsample(x, factor):
    """Bed-of-nails upsampling: ``(N, H, W, C) -> (N, H*factor, W*factor, C)``, each value at the
    top-left of its ``factor x factor`` block, zeros elsewhere. Backward: the top-left gradients."""
    factor = validation.positive_int("factor", factor)
    (x,) = float_tensors(x)
    check_rank(x, 4, "x", "(N, H, W, C)")

    @tf.custom_gradient
    def _upsample(x):
        def grad(dout):
            return dout[:, ::factor, ::factor, :]

        return _dilate(x, factor), grad

    return _upsample(x)


def max_pool_with_argmax(x, pool_height, pool_width, stride):
    """Max pooling that also returns where each maximum was, for :func:`max_unpool`.

    ``x (N, H, W, C)`` -> ``(out (N, Ho, Wo, C), argmax (N, Ho, Wo, C) int64)``. ``argmax`` is
    the flat index into ``x``, ``((n * H + h) * W + w) * C + c``: the encoding of
    ``tf.nn.max_pool_with_argmax(..., include_batch_in_index=True)``. On ties, the first maximum
    in row-major window order. Gradient as :func:`max_pool`; ``argmax`` has none.
    """
    (x,) = float_tensors(x)
    x, pool_height, pool_width, stride = check_pool("max_pool_with_argmax", x, pool_height,
                                                    pool_width, stride)
    out, position = max_pool_first_argmax(x, pool_height, pool_width, stride)
    _, height, width, channels = [tf.cast(d, tf.int64) for d in shape_of(x)]
    n, out_h, out_w, _ = shape_of(out)
    position = tf.cast(position, tf.int64)
    batch = tf.reshape(tf.range(n, dtype=tf.int64), [-1, 1, 1, 1])
    row = tf.reshape(tf.range(out_h, dtype=tf.int64), [1, -1, 1, 1]) * stride + position // pool_width
    col = tf.reshape(tf.range(out_w, dtype=tf.int64), [1, 1, -1, 1]) * stride + position % pool_width
    channel = tf.reshape(tf.range(channels, dtype=tf.int64), [1, 1, 1, -1])
    return out, ((batch * height + row) * width + col) * channels + channel


def _output_shape(output_shape):
    """``output_shape`` as a list of 4 Python ints (or an int tensor when not static)."""
    value = tf.get_static_value(tf.convert_to_tensor(output_shape))
    if value is None:
        return tf.cast(output_shape, tf.int64)
    value = np.asarray(value)
    if value.shape != (4,) or not np.issubdtype(value.dtype, np.integer) or (value < 1).any():
        raise ConfigError(f"output_shape must be 4 positive ints (N, H, W, C), got {output_shape!r}")
    return [int(v) for v in value]


def max_unpool(x, argmax, output_shape):
    """Max unpooling: put each value of ``x`` back where :func:`max_pool_with_argmax` found it.

    ``x (N, Ho, Wo, C)``, ``argmax`` of the same shape (flat indices
    ``((n * H + h) * W + w) * C + c``, as ``tf.nn.max_pool_with_argmax`` with
    ``include_batch_in_index=True``), ``output_shape = (N, H, W, C)``. Positions nobody points to
    are zero; values pointing to the same position (overlapping windows) add up.
    Backward: ``dx = dout_flat[argmax]``.
    """
    (x,) = float_tensors(x)
    argmax = int_tensor(argmax, "argmax")
    if not x.shape.is_compatible_with(argmax.shape):
        raise ShapeError(f"max_unpool: argmax shape {argmax.shape} must equal x shape {x.shape}")
    output_shape = _output_shape(output_shape)
    if isinstance(output_shape, list):
        check_dim(x.shape[0], output_shape[0], f"max_unpool: x's N vs output_shape {output_shape}")
        check_dim(x.shape[3], output_shape[3], f"max_unpool: x's C vs output_shape {output_shape}")
        size = int(np.prod(output_shape))
    else:
        size = tf.reduce_prod(output_shape)
    argmax = check_in_range(tf.cast(argmax, tf.int64), size, "argmax", "flat indices into output_shape")

    @tf.custom_gradient
    def _unpool(x):
        flat = tf.scatter_nd(tf.reshape(argmax, [-1, 1]), tf.reshape(x, [-1]),
                             tf.cast(tf.reshape(size, [1]), tf.int64))

        def grad(dout):
            return tf.gather(tf.reshape(dout, [-1]), argmax)

        return tf.reshape(flat, output_shape), grad

    return _unpool(x)


def conv2d_transpose(x, w, b, stride=1, pad=0):
    """Transposed convolution: the adjoint of :func:`~cs231n_tf.ops.conv2d_im2col`.

    Kernel layout is TensorFlow's for ``tf.nn.conv2d_transpose``: ``w (KH, KW, C_out, C_in)``.
    Shapes: ``x (N, H, W, C_in)``, ``b (C_out,)`` -> ``(N, Ho, Wo, C_out)`` with
    ``Ho = (H - 1) * stride - 2 * pad + KH`` (same for W).

    ``w`` read as a conv kernel ``(KH, KW, C_out, C_in)`` maps ``C_out`` to ``C_in`` channels;
    this op is that conv's backward-data pass: each input pixel scatters ``x @ w[kh, kw]^T`` into
    an output window (col2im), overlaps add up, and ``pad`` is cropped from every side. Its
    backward is therefore the conv's forward: ``dx = conv(dout, w)``, ``dw`` the conv's kernel
    gradient with the roles of input and output swapped, ``db = sum(dout)``.
    """
    x, w, b = float_tensors(x, w, b)
    stride = validation.positive_int("stride", stride)
    pad = validation.non_negative_int("pad", pad)
    check_rank(x, 4, "x", "(N, H, W, C_in)")
    check_rank(w, 4, "w", "(KH, KW, C_out, C_in)")
    check_rank(b, 1, "b", "(C_out,)")
    kernel_h, kernel_w, c_out, c_in = w.shape
    if kernel_h is None or kernel_w is None:
        raise ShapeError(f"conv2d_transpose: the kernel's KH and KW must be static, got w shape {w.shape}")
    check_dim(x.shape[3], c_in, f"conv2d_transpose: x's channels must match w's C_in = w.shape[3] "
                                f"(w shape {w.shape}, layout (KH, KW, C_out, C_in))")
    check_dim(b.shape[0], c_out, f"conv2d_transpose: b's length must match w's C_out = w.shape[2] "
                                 f"(w shape {w.shape})")
    for axis, size, kernel in (("H", x.shape[1], kernel_h), ("W", x.shape[2], kernel_w)):
        if size is not None and (size - 1) * stride - 2 * pad + kernel < 1:
            raise ShapeError(
                f"conv2d_transpose: output {axis} = ({axis} - 1) * stride - 2 * pad + K = "
                f"({size} - 1) * {stride} - 2 * {pad} + {kernel} must be positive"
            )

    @tf.custom_gradient
    def _conv_transpose(x, w, b):
        def grad(dout):
            dx = conv_forward(dout, w, stride, pad)
            dw = conv_backward_kernel(dout, x, w.shape, stride, pad)
            return dx, dw, tf.reduce_sum(dout, [0, 1, 2])

        return conv_backward_input(x, w, stride, pad) + b, grad

    return _conv_transpose(x, w, b)
