"""Receptive fields from the layers' kernel sizes, strides and padding (lecture 12's patch crops).

Walking the layers in order, each spatial layer with (effective) kernel ``k``, stride ``s`` and top/left
padding ``p`` updates the field size ``r``, the jump ``j`` (input pixels between neighbouring outputs)
and the input coordinate ``start`` of output 0's field:

    r <- r + (k - 1) * j        start <- start - p * j        j <- j * s

Output ``(i, j)`` of the layer then sees input rows ``start_h + i * j_h .. + r_h - 1`` (clipped to the
image). TensorFlow's ``"same"`` padding puts ``floor(total / 2)`` on the top/left, with
``total = max((out - 1) * s + k - in, 0)``. Layers that keep the spatial size (activations,
normalisation, 1x1 convolutions, identity adds of residual blocks) leave the field unchanged.
"""

import dataclasses

import tensorflow as tf

from cs231n_tf.errors import ConfigError

_CONV = (tf.keras.layers.Conv2D, tf.keras.layers.DepthwiseConv2D, tf.keras.layers.SeparableConv2D)
_POOL = (tf.keras.layers.MaxPooling2D, tf.keras.layers.AveragePooling2D)


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """Per axis (rows, columns): field ``size``, ``jump`` between outputs and ``start`` of output 0."""
    size: tuple
    jump: tuple
    start: tuple

    def box(self, i, j, image_shape=None):
        """``(top, left, bottom, right)`` (exclusive ends) of output ``(i, j)``'s field, clipped to
        ``image_shape`` ``(H, W)`` when given."""
        top, left = self.start[0] + i * self.jump[0], self.start[1] + j * self.jump[1]
        bottom, right = top + self.size[0], left + self.size[1]
        if image_shape is not None:
            top, left = max(0, top), max(0, left)
            bottom, right = min(image_shape[0], bottom), min(image_shape[1], right)
        return top, left, bottom, right


def _geometry(layer):
    """``(kernel, strides, padding)`` per axis of a spatial layer, or None."""
    if isinstance(layer, _CONV):
        d = layer.dilation_rate
        k = tuple(d[a] * (layer.kernel_size[a] - 1) + 1 for a in range(2))
        return k, tuple(layer.strides), layer.padding
    if isinstance(layer, _POOL):
        return tuple(layer.pool_size), tuple(layer.strides), layer.padding
    return None


def receptive_field(model, layer):
    """The :class:`ReceptiveField` of the outputs of the layer named ``layer`` in the Keras ``model``."""
    names = [l.name for l in model.layers]
    if layer not in names:
        raise ConfigError(f"unknown layer {layer!r}; layers: {', '.join(names)}")
    r, j, start = [1, 1], [1, 1], [0, 0]
    for l in model.layers:
        if isinstance(l, tf.keras.layers.ZeroPadding2D):
            for a in range(2):
                start[a] -= l.padding[a][0] * j[a]
        geometry = _geometry(l)
        if geometry is not None:
            kernel, strides, padding = geometry
            in_shape = l.input_shape
            for a in range(2):
                pad = 0
                if padding == "same":
                    size_in = in_shape[1 + a]
                    out = -(-size_in // strides[a])
                    pad = max((out - 1) * strides[a] + kernel[a] - size_in, 0) // 2
                r[a] += (kernel[a] - 1) * j[a]
                start[a] -= pad * j[a]
                j[a] *= strides[a]
        if l.name == layer:
            break
    return ReceptiveField(tuple(r), tuple(j), tuple(start))
