"""Winograd F(2x2, 3x3) convolution (Lavin & Gray, 2016, "Fast algorithms for convolutional
neural networks").

The output is cut into 2x2 tiles; each needs a 4x4 input tile ``d`` (stride 2, overlapping by 2).
With the filter transformed once, ``U = G g G^T`` (4x4 per input/output channel pair), and each
input tile transformed, ``V = B^T d B``, a tile of output channel ``k`` is

    Y_k = A^T [ sum_c U_{c,k} (.) V_c ] A        ((.) = elementwise, 16 products per channel pair)

instead of 2*2*9 = 36 products of direct convolution: 2.25x fewer multiplications. The transforms
multiply only by 0, +-1 and +-1/2 (additions and shifts in hardware); the filter transform is done
once and the input transform is shared by all output channels, so like the paper we count only the
elementwise products. The sum over ``c`` turns into 16 independent ``[tiles, C] x [C, K]`` matrix
products, which is how a GPU implementation runs it.

Layout is TensorFlow's: images ``[N, H, W, C]``, filters ``[3, 3, C, K]``, stride 1, no dilation.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, ShapeError

PADDINGS = ("valid", "same")

# Lavin & Gray's F(2x2, 3x3) matrices.
B_T = np.array([[1, 0, -1, 0],
                [0, 1, 1, 0],
                [0, -1, 1, 0],
                [0, 1, 0, -1]], np.float64)
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], np.float64)
A_T = np.array([[1, 1, 1, 0],
                [0, 1, -1, -1]], np.float64)

TILE_OUT = 2
TILE_IN = 4
DIRECT_MULTIPLIES_PER_TILE = TILE_OUT * TILE_OUT * 9
WINOGRAD_MULTIPLIES_PER_TILE = TILE_IN * TILE_IN


def _padding(padding):
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ConfigError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def _output_size(height, width, padding):
    if padding == "same":
        return height, width
    return height - 2, width - 2


def _check_shapes(image_shape, filter_shape):
    if len(image_shape) != 4:
        raise ShapeError(f"images must be [N, H, W, C], got shape {tuple(image_shape)}")
    if len(filter_shape) != 4 or tuple(filter_shape[:2]) != (3, 3):
        raise ShapeError(f"filters must be [3, 3, C, K] for F(2x2, 3x3), got shape {tuple(filter_shape)}")
    if image_shape[3] != filter_shape[2]:
        raise ShapeError(f"images have {image_shape[3]} channels but filters expect {filter_shape[2]}")


def filter_transform(filters):
    """``U = G g G^T`` for filters ``[3, 3, C, K]`` -> ``[4, 4, C, K]``."""
    g = tf.convert_to_tensor(G, filters.dtype)
    return tf.einsum("ia,abck,jb->ijck", g, filters, g)


def winograd_conv2d(images, filters, padding="valid"):
    """Stride-1 3x3 convolution of ``images [N, H, W, C]`` with ``filters [3, 3, C, K]``.

    Equal to ``tf.nn.conv2d(images, filters, 1, padding.upper())`` up to float rounding, for
    float32 and float64. Returns ``[N, H', W', K]`` (``H' = H - 2`` for ``valid``, ``H`` for
    ``same``). Differentiable (the transforms are linear einsums).
    """
    padding = _padding(padding)
    images = tf.convert_to_tensor(images)
    filters = tf.convert_to_tensor(filters, images.dtype)
    _check_shapes(images.shape, filters.shape)
    height, width = images.shape[1], images.shape[2]
    out_h, out_w = _output_size(height, width, padding)
    if out_h < 1 or out_w < 1:
        raise ShapeError(f"images of {height}x{width} are too small for a 3x3 'valid' convolution")
    tiles_h, tiles_w = -(-out_h // TILE_OUT), -(-out_w // TILE_OUT)
    before = 1 if padding == "same" else 0
    # Pad so that every tile has its full 4x4 input; the extra outputs are cropped at the end.
    need_h, need_w = TILE_OUT * tiles_h + 2, TILE_OUT * tiles_w + 2
    x = tf.pad(images, [[0, 0], [before, need_h - height - before], [before, need_w - width - before], [0, 0]])
    d = tf.stack([tf.stack([x[:, a:a + TILE_OUT * tiles_h:TILE_OUT, b:b + TILE_OUT * tiles_w:TILE_OUT, :]
                            for b in range(TILE_IN)]) for a in range(TILE_IN)])  # [4, 4, N, th, tw, C]
    bt = tf.convert_to_tensor(B_T, images.dtype)
    v = tf.einsum("ia,abnhwc,jb->ijnhwc", bt, d, bt)
    u = filter_transform(filters)
    m = tf.einsum("ijnhwc,ijck->ijnhwk", v, u)  # the 16 elementwise products, summed over channels
    at = tf.convert_to_tensor(A_T, images.dtype)
    y = tf.einsum("ai,ijnhwk,bj->nhawbk", at, m, at)  # [N, th, 2, tw, 2, K]
    shape = tf.shape(y)
    y = tf.reshape(y, [shape[0], TILE_OUT * tiles_h, TILE_OUT * tiles_w, shape[5]])
    return y[:, :out_h, :out_w, :]


def multiply_count_ratio(image_shape=(1, 32, 32, 64), filter_shape=(3, 3, 64, 64), padding="same"):
    """Multiplications of direct vs Winograd convolution, counted from the actual tiles.

    Direct: ``N * H' * W' * 9 * C * K``. Winograd: ``N * tiles * 16 * C * K`` with
    ``tiles = ceil(H'/2) * ceil(W'/2)`` (edge tiles computed whole, then cropped). The ratio is
    2.25 exactly when ``H'`` and ``W'`` are even. Returns a dict with both counts and the ratio.
    """
    padding = _padding(padding)
    _check_shapes(image_shape, filter_shape)
    n, height, width, channels = (int(d) for d in image_shape)
    k = int(filter_shape[3])
    out_h, out_w = _output_size(height, width, padding)
    tiles = n * -(-out_h // TILE_OUT) * -(-out_w // TILE_OUT)
    direct = n * out_h * out_w * 9 * channels * k
    winograd = tiles * WINOGRAD_MULTIPLIES_PER_TILE * channels * k
    return {"tiles": tiles, "direct_multiplies": direct, "winograd_multiplies": winograd,
            "ratio": direct / winograd,
            "per_tile_per_channel_pair": (DIRECT_MULTIPLIES_PER_TILE, WINOGRAD_MULTIPLIES_PER_TILE)}
