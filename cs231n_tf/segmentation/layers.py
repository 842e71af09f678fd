"""The upsampling layers of lecture 11's fully convolutional networks, as Keras layers. NHWC.

- nearest neighbour: ``UpSampling2D(interpolation="nearest")`` (each value copied into its block);
- "bed of nails": :class:`BedOfNails` (each value in the top-left of its block, zeros elsewhere);
- max unpooling: :class:`MaxPoolWithArgmax` remembers where each maximum was ("switches") and the
  matching :class:`MaxUnpooling` puts values back there, zeros elsewhere (Zeiler & Fergus 2014;
  SegNet, Badrinarayanan et al. 2015);
- transposed convolution (learnable): ``Conv2DTranspose`` (Long et al. 2015, FCN);
- bilinear: ``UpSampling2D(interpolation="bilinear")``.

The tier-1 ops in :mod:`cs231n_tf.ops.upsample` are the same maths written out; the tests prove
both tiers equal, values and gradients.
"""

import tensorflow as tf

from cs231n_tf import validation

UPSAMPLING = ("nearest", "bed_of_nails", "max_unpool", "transposed", "bilinear")


class BedOfNails(tf.keras.layers.Layer):
    """``(N, H, W, C) -> (N, H*factor, W*factor, C)``: each input value at the top-left of its
    ``factor x factor`` output block, zeros elsewhere (zero insertion). No weights."""

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = validation.positive_int("factor", factor)

    def call(self, x):
        f = self.factor
        shape = tf.shape(x)
        n, h, w, c = shape[0], shape[1], shape[2], shape[3]
        x = tf.reshape(x, [n, h, 1, w, 1, c])
        x = tf.pad(x, [[0, 0], [0, 0], [0, f - 1], [0, 0], [0, f - 1], [0, 0]])
        return tf.reshape(x, [n, h * f, w * f, c])

    def compute_output_shape(self, input_shape):
        n, h, w, c = tf.TensorShape(input_shape).as_list()
        return tf.TensorShape([n, None if h is None else h * self.factor, None if w is None else w * self.factor, c])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class MaxPoolWithArgmax(tf.keras.layers.Layer):
    """Max pooling that also returns its switches: ``x -> [pooled, argmax]``.

    ``tf.nn.max_pool_with_argmax(..., include_batch_in_index=True)``: ``argmax`` (int64, the
    pooled shape) is the flat index ``((n * H + h) * W + w) * C + c`` of each maximum in ``x``.
    With ``include_batch_in_index=False`` TensorFlow drops the ``n * H * W * C`` term, which a
    batched unpooling would then have to add back; including it makes the index a position in the
    whole flattened batch, what :class:`MaxUnpooling` scatters to. The gradient flows to the
    maxima only (TensorFlow's ``MaxPoolGradWithArgmax``); ``argmax`` has none.
    """

    def __init__(self, pool_size=2, strides=None, padding="VALID", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = validation.positive_int("pool_size", pool_size)
        self.strides = validation.positive_int("strides", strides if strides is not None else pool_size)
        self.padding = validation.one_of("padding", padding.upper(), ("VALID", "SAME"))

    def call(self, x):
        pooled, argmax = tf.nn.max_pool_with_argmax(x, self.pool_size, self.strides, self.padding,
                                                    include_batch_in_index=True)
        return pooled, tf.stop_gradient(argmax)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}


class MaxUnpooling(tf.keras.layers.Layer):
    """``[x, argmax, like] -> (shape of like)``: each value of ``x`` scattered to the flat position
    ``argmax`` (from the matching :class:`MaxPoolWithArgmax`) of a zero tensor shaped like ``like``,
    the tensor that was pooled (only its shape is used). Values sent to the same position (overlapping
    windows) add up. Backward: ``dx = dout_flat[argmax]`` (``tf.scatter_nd``'s gradient)."""

    def call(self, inputs):
        x, argmax, like = inputs
        shape = tf.shape(like, out_type=tf.int64)
        size = tf.reduce_prod(shape)
        flat = tf.scatter_nd(tf.reshape(argmax, [-1, 1]), tf.reshape(x, [-1]), tf.reshape(size, [1]))
        out = tf.reshape(flat, shape)
        out.set_shape(like.shape)
        return out

    def compute_output_shape(self, input_shapes):
        return tf.TensorShape(input_shapes[2])


def upsample(x, kind, factor=2, filters=None, name=None, switches=None):
    """``x`` upsampled by ``factor`` with ``kind`` (one of :data:`UPSAMPLING`), as Keras layers named ``name``.

    ``transposed`` needs ``filters`` (a ``Conv2DTranspose`` with a ``2 * factor`` kernel, stride
    ``factor``, ``same`` padding: FCN's learnable upsampling). ``max_unpool`` needs ``switches =
    (argmax, pooled input)`` from the matching :class:`MaxPoolWithArgmax`.
    """
    validation.one_of("upsampling", kind, UPSAMPLING)
    if kind == "nearest":
        return tf.keras.layers.UpSampling2D(factor, interpolation="nearest", name=name)(x)
    if kind == "bilinear":
        return tf.keras.layers.UpSampling2D(factor, interpolation="bilinear", name=name)(x)
    if kind == "bed_of_nails":
        return BedOfNails(factor, name=name)(x)
    if kind == "transposed":
        filters = validation.positive_int("filters", filters)
        return tf.keras.layers.Conv2DTranspose(filters, 2 * factor, strides=factor, padding="same", name=name)(x)
    argmax, like = switches
    return MaxUnpooling(name=name)([x, argmax, like])
