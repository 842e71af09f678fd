"""Sliding windows over NHWC tensors: im2col and its adjoint, col2im.

im2col is kept in blocks: ``cols = [cols_1 | ... | cols_K]`` with one ``(N, Ho, Wo, C)`` block per
kernel offset ``(kh, kw)`` (row-major), holding ``x[:, kh + stride*i, kw + stride*j, :]``. Then
``cols @ W == sum_k cols_k @ W_k``: the same arithmetic as one big matmul, without materialising
the KH*KW times larger column matrix (copying it makes one big matmul several times slower on
CPU). Pooling reduces over the same blocks.
"""

import tensorflow as tf

from cs231n_tf.errors import ShapeError
from cs231n_tf.ops._util import shape_of


def window_grid(x, kernel_h, kernel_w, stride, pad, op):
    """Output height and width of ``kernel_h x kernel_w`` windows moved by ``stride`` over ``x``.

    ``x`` is ``(N, H, W, C)``, zero-padded by ``pad`` on every side. Each size is
    ``(size + 2*pad - kernel) / stride + 1`` and must be a whole number: ShapeError otherwise
    (at trace time for static sizes; dynamic sizes get a graph assert, attached to the returned
    ``x``). Returns ``(x, out_h, out_w)``; sizes are ints where static.
    """
    _, height, width, _ = shape_of(x)
    checks = []
    out = []
    for axis, k, size, kernel in (("H", "KH", height, kernel_h), ("W", "KW", width, kernel_w)):
        span = size + 2 * pad - kernel
        if not isinstance(size, int):
            checks.append(tf.debugging.assert_equal(
                span % stride, 0, message=f"{op}: ({axis} + 2*pad - {k}) not divisible by stride {stride}"
            ))
        elif span < 0:
            raise ShapeError(
                f"{op}: window {k}={kernel} is larger than the padded input "
                f"{axis} + 2*pad = {size} + 2*{pad} = {size + 2 * pad}"
            )
        elif span % stride:
            raise ShapeError(
                f"{op}: ({axis} + 2*pad - {k}) = ({size} + 2*{pad} - {kernel}) = {span} is not "
                f"divisible by stride {stride}; choose stride and pad so that it is"
            )
        out.append(span // stride + 1)
    if checks:
        with tf.control_dependencies(checks):
            x = tf.identity(x)
    return x, out[0], out[1]


def pad_hw(x, pad):
    """Zero-pad H and W of an NHWC tensor by ``pad`` on every side."""
    if pad == 0:
        return x
    return tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])


def crop_hw(x, pad):
    """The adjoint of :func:`pad_hw`: drop ``pad`` rows and columns on every side."""
    if pad == 0:
        return x
    return x[:, pad:-pad, pad:-pad, :]


def _phases(x, stride):
    """Split an ``(N, H, W, C)`` tensor into its ``stride x stride`` phases by a reshape:
    ``(N, ceil(H/stride), stride, ceil(W/stride), stride, C)``, zero-padding H and W up to a
    multiple of the stride first. ``x[:, stride*i + a, stride*j + b]`` is ``out[:, i, a, j, b]``.
    """
    n, height, width, channels = shape_of(x)
    extra_h, extra_w = -height % stride, -width % stride
    if not (isinstance(extra_h, int) and isinstance(extra_w, int) and extra_h == extra_w == 0):
        x = tf.pad(x, [[0, 0], [0, extra_h], [0, extra_w], [0, 0]])
    return tf.reshape(x, [n, -(-height // stride), stride, -(-width // stride), stride, channels])


def im2col_blocks(x, kernel_h, kernel_w, stride):
    """im2col of an already padded ``(N, Hp, Wp, C)`` tensor, one block per kernel offset.

    Returns a list of ``kernel_h * kernel_w`` tensors ``(N, Ho, Wo, C)``, offsets in row-major
    order; block ``kh * kernel_w + kw`` holds ``x[:, kh + stride*i, kw + stride*j, :]``, which is
    a unit-stride slice of phase ``(kh % stride, kw % stride)`` (slicing with a step is several
    times slower on CPU).
    """
    _, height, width, _ = shape_of(x)
    out_h = (height - kernel_h) // stride + 1
    out_w = (width - kernel_w) // stride + 1
    phases = _phases(x, stride)
    return [
        phases[:, kh // stride:kh // stride + out_h, kh % stride,
               kw // stride:kw // stride + out_w, kw % stride, :]
        for kh, kw in _offsets(kernel_h, kernel_w)
    ]


def col2im_blocks(blocks, kernel_h, kernel_w, stride):
    """col2im, the adjoint of :func:`im2col_blocks`.

    Every block ``(N, Ho, Wo, C)`` goes back to the input positions its kernel offset read, and
    overlapping windows add up: blocks are summed into their phase (shifted by
    ``(kh // stride, kw // stride)``), then the phases are interleaved back. Returns the padded
    input's shape, ``(N, (Ho-1)*stride + kernel_h, (Wo-1)*stride + kernel_w, C)``.
    """
    n, out_h, out_w, channels = shape_of(blocks[0])
    phase_h = out_h - 1 + -(-kernel_h // stride)
    phase_w = out_w - 1 + -(-kernel_w // stride)
    phases = {}
    for (kh, kw), block in zip(_offsets(kernel_h, kernel_w), blocks):
        top, left = kh // stride, kw // stride
        shifted = tf.pad(block, [[0, 0], [top, phase_h - top - out_h], [left, phase_w - left - out_w], [0, 0]])
        phases.setdefault((kh % stride, kw % stride), []).append(shifted)
    if stride == 1:
        # One phase, already the whole padded input; interleaving would only copy it.
        return tf.add_n(phases[0, 0])
    zeros = tf.zeros([n, phase_h, phase_w, channels], blocks[0].dtype)
    rows = [
        tf.stack([tf.add_n(phases[a, b]) if (a, b) in phases else zeros for b in range(stride)], axis=3)
        for a in range(stride)
    ]
    interleaved = tf.reshape(tf.stack(rows, axis=2), [n, phase_h * stride, phase_w * stride, channels])
    return interleaved[:, :(out_h - 1) * stride + kernel_h, :(out_w - 1) * stride + kernel_w, :]


def _offsets(kernel_h, kernel_w):
    return [(kh, kw) for kh in range(kernel_h) for kw in range(kernel_w)]
