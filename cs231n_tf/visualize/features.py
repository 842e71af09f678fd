"""What the layers compute (lecture 12): first-layer filters, activation maps, maximally activating patches.

- :func:`filter_grid`: the first convolution's kernels ``(k, k, C, F)``, each scaled to [0, 1], tiled
  into one image (Krizhevsky et al. 2012's figure of oriented edges and colour blobs).
- :func:`activations`: any layer's feature maps ``(N, h, w, K)`` for a batch.
- :func:`max_activating_patches`: the input crops (receptive-field correct, :mod:`.receptive`) where
  one channel of a layer fires most over a set of images (Girshick et al. 2014's figure).
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, DataError
from cs231n_tf.visualize.receptive import receptive_field


def layer_output(model, layer):
    """The layer named ``layer`` of ``model`` (its output is what :func:`activations` returns)."""
    names = [l.name for l in model.layers]
    if layer not in names:
        raise ConfigError(f"unknown layer {layer!r}; layers: {', '.join(names)}")
    return model.get_layer(layer)


def activations(model, x, layer):
    """The output of the layer named ``layer`` for images ``x`` ``(N, H, W, C)``, as a numpy array."""
    target = layer_output(model, layer)
    sub = tf.keras.Model(model.inputs, target.output)
    return sub(tf.convert_to_tensor(x, tf.float32), training=False).numpy()


def first_conv(model):
    """The first 2-D convolution of ``model`` (Conv2D or DepthwiseConv2D)."""
    for layer in model.layers:
        if isinstance(layer, (tf.keras.layers.Conv2D, tf.keras.layers.DepthwiseConv2D)):
            return layer
    raise ConfigError(f"model {model.name!r} has no convolutional layer, so there are no filters to show")


def filter_grid(model, layer=None, padding=1):
    """The kernels of ``layer`` (default: the first conv) as one image ``(rows, cols, 3 or 1)`` in [0, 1].

    Kernel ``f`` ``(k, k, C)`` is min-max scaled on its own; RGB kernels stay colour, others show their
    first input channel. Kernels are laid out in a near-square grid with ``padding`` pixels between.
    """
    conv = first_conv(model) if layer is None else layer_output(model, layer)
    if not hasattr(conv, "kernel") and not hasattr(conv, "depthwise_kernel"):
        raise ConfigError(f"layer {conv.name!r} has no convolution kernel")
    w = (conv.depthwise_kernel if hasattr(conv, "depthwise_kernel") else conv.kernel).numpy()
    if w.ndim != 4:
        raise ConfigError(f"layer {conv.name!r} has a kernel of shape {w.shape}, not (k, k, C, F)")
    if hasattr(conv, "depthwise_kernel"):
        w = np.transpose(w, (0, 1, 3, 2))
    w = w if w.shape[2] == 3 else w[:, :, :1]
    k, kw, c, f = w.shape
    cols = int(np.ceil(np.sqrt(f)))
    rows = int(np.ceil(f / cols))
    grid = np.ones((rows * (k + padding) - padding, cols * (kw + padding) - padding, c), np.float32)
    for i in range(f):
        tile = w[..., i]
        tile = (tile - tile.min()) / max(float(tile.max() - tile.min()), 1e-12)
        r, q = divmod(i, cols)
        grid[r * (k + padding):r * (k + padding) + k, q * (kw + padding):q * (kw + padding) + kw] = tile
    return grid


def max_activating_patches(model, x, layer, channel, top=8):
    """The ``top`` receptive-field crops of ``x`` where ``channel`` of ``layer`` is largest.

    Returns ``[{"image": n, "position": (i, j), "activation": a, "box": (top, left, bottom, right),
    "patch": array}, ...]``, strongest first; boxes are clipped to the image.
    """
    top = validation.positive_int("top", top)
    acts = activations(model, x, layer)
    if acts.ndim != 4:
        raise DataError(f"layer {layer!r} outputs shape {acts.shape[1:]}, not a feature map (h, w, K)")
    channel = validation.int_in("channel", channel, 0, acts.shape[-1] - 1)
    field = receptive_field(model, layer)
    a = acts[..., channel]
    order = np.argsort(a.ravel())[::-1][:top]
    x = np.asarray(x)
    out = []
    for flat in order:
        n, i, j = np.unravel_index(flat, a.shape)
        box = field.box(int(i), int(j), x.shape[1:3])
        out.append({"image": int(n), "position": (int(i), int(j)), "activation": float(a[n, i, j]), "box": box,
                    "patch": x[n, box[0]:box[2], box[1]:box[3]]})
    return out
