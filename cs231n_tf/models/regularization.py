"""Regularisation layers of lecture 7 that Keras lacks: DropConnect, fractional max pooling, max-norm.

* :class:`DropConnect` - a dense layer whose *weights* (not activations, as in dropout) are
  randomly zeroed while training (Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of Neural
  Networks using DropConnect", ICML 2013).
* :class:`FractionalMaxPool2D` - max pooling by a non-integer factor such as sqrt(2) over randomly
  placed regions (Graham, "Fractional Max-Pooling", 2014), a wrapper of ``tf.nn.fractional_max_pool``.
* :func:`max_norm` / :func:`with_max_norm` - the max-norm constraint ``||w|| <= c`` on each unit's
  incoming weights (Srivastava et al., "Dropout", JMLR 2014), Keras's own
  ``tf.keras.constraints.MaxNorm`` applied by the optimizer after every update.

Both layers follow the zoo's conventions (:mod:`cs231n_tf.models.layers`): randomness only when
``training`` is true, deterministic output otherwise; serializable through ``get_config``;
they compute in ``self.compute_dtype`` under mixed precision. Importing this module registers
:class:`FractionalMaxPool2D` with :func:`cs231n_tf.models.complexity.profile`; DropConnect is a
``Dense`` subclass, which the profiler already counts (``inputs x units`` multiply-adds).
"""

import math

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.models import complexity
from cs231n_tf.models.layers import check_probability

layers = tf.keras.layers

_serializable = tf.keras.utils.register_keras_serializable(package="cs231n_tf")
_smart_cond = tf.__internal__.smart_cond.smart_cond


@_serializable
class DropConnect(tf.keras.__internal__.layers.BaseRandomLayer, layers.Dense):
    """Dense layer with DropConnect on its kernel (Wan et al., ICML 2013).

    While training, each kernel entry is kept with probability ``keep_probability`` (``p``) and
    zeroed otherwise: ``y = x @ (M * W) / p + b`` with ``M_ij ~ Bernoulli(p)``. The division by
    ``p`` (the "inverted" convention of inverted dropout) makes ``E_M[y] = x @ W + b``, so at test
    time the layer is the plain dense layer ``x @ W + b``. (The paper instead keeps ``M * W``
    unscaled in training and, at test time, moment-matches a Gaussian over the masks and
    samples from it; the mean of that Gaussian, rescaled by ``1 / p``, is this layer's test
    output.) The bias is never masked.

    ``per_example=False`` draws one mask per mini-batch (one ``(in, units)`` mask shared by every
    example: cheap, one matmul); ``per_example=True`` draws one mask per example as in the paper,
    at the cost of an ``(N, in, units)`` mask. The masks come from Keras's seeded generator
    (``seed``), so a ``tf.function`` training step stays one static graph.
    All other arguments are those of ``tf.keras.layers.Dense``.
    Shapes: ``(N, ..., in) -> (N, ..., units)`` (``per_example=True``: ``(N, in) -> (N, units)``).
    """

    def __init__(self, units, keep_probability=0.5, per_example=False, seed=None, **kwargs):
        super().__init__(seed=seed, units=units, **kwargs)
        self.keep_probability = check_probability("keep_probability", keep_probability, low_open=True)
        self.per_example = bool(per_example)
        self.seed = seed

    def build(self, input_shape):
        if self.per_example and len(input_shape) != 2:
            raise ConfigError(f"DropConnect(per_example=True) takes (batch, features) inputs, got shape "
                              f"{tuple(input_shape)}")
        super().build(input_shape)

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        if self.keep_probability == 1.0:
            return super().call(inputs)
        return _smart_cond(training, lambda: self._masked(inputs), lambda: super(DropConnect, self).call(inputs))

    def _masked(self, inputs):
        p = self.keep_probability
        kernel = tf.cast(self.kernel, self.compute_dtype)
        x = tf.cast(inputs, self.compute_dtype)
        if self.per_example:
            shape = tf.concat([tf.shape(x)[:1], tf.shape(kernel)], 0)
            keep = self._random_generator.random_uniform(shape, dtype=tf.float32) < p
            masked = tf.cast(keep, self.compute_dtype) * (kernel / p)
            y = tf.einsum("ni,nio->no", x, masked)
        else:
            keep = self._random_generator.random_uniform(tf.shape(kernel), dtype=tf.float32) < p
            masked = tf.cast(keep, self.compute_dtype) * (kernel / p)
            y = tf.tensordot(x, masked, axes=[[x.shape.rank - 1], [0]])
        if self.use_bias:
            y = tf.nn.bias_add(y, tf.cast(self.bias, self.compute_dtype))
        return self.activation(y) if self.activation is not None else y

    def get_config(self):
        return {**super().get_config(), "keep_probability": self.keep_probability,
                "per_example": self.per_example, "seed": self.seed}


@_serializable
class FractionalMaxPool2D(layers.Layer):
    """Fractional max pooling (Graham 2014), a Keras wrapper of ``tf.nn.fractional_max_pool``.

    Shrinks height and width by ``pooling_ratio`` (``alpha``, between 1 and 2; the paper's
    favourite is sqrt(2)), so many more pooling layers fit in a network than with 2x2 pooling.
    The rows (and columns) are cut into ``floor(H / alpha)`` intervals of length
    ``floor(alpha)`` or ``ceil(alpha)``, placed at random (``pseudo_random=False``: a random
    permutation of the lengths) or pseudo-randomly (``pseudo_random=True``:
    ``a_i = ceil(alpha * (i + u))`` for one random ``u``). ``overlapping=True`` extends each
    region by the first row and column of the next, giving overlapping 2x2 / 3x3-like regions.

    Training (``training=True``) draws new regions on every call, one draw per call shared by
    the whole batch. The draws come from the op's own generator and are not reproducible from
    ``seed``: the op takes its seed as a graph attribute, and a fixed attribute would freeze
    the regions for the whole of training.
    Test time (``training=False``) uses one fixed set of regions, the op's deterministic mode
    with ``seed`` (default 1), so predictions are repeatable. (Graham also averages several
    random draws at test time; call the layer with ``training=True`` repeatedly for that.)
    The op has no float16 kernel, so pooling runs in float32 under mixed precision.
    Shapes: ``(N, H, W, C) -> (N, floor(H / alpha), floor(W / alpha), C)``.
    """

    def __init__(self, pooling_ratio=math.sqrt(2), pseudo_random=True, overlapping=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        try:
            ratio = float(pooling_ratio)
        except (TypeError, ValueError):
            raise InputTypeError(f"pooling_ratio must be a number in [1, 2], got {pooling_ratio!r}") from None
        if not 1.0 <= ratio <= 2.0:
            raise ConfigError(f"pooling_ratio must be in [1, 2] (e.g. sqrt(2) = 1.414), got {pooling_ratio!r}")
        seed = validation.optional_positive_int("seed", seed)
        self.pooling_ratio = ratio
        self.pseudo_random = bool(pseudo_random)
        self.overlapping = bool(overlapping)
        self.seed = seed
        self.input_spec = layers.InputSpec(ndim=4)

    def _pool(self, x, deterministic):
        seed = (self.seed or 1) if deterministic else 0
        y = tf.raw_ops.FractionalMaxPool(
            value=tf.cast(x, tf.float32), pooling_ratio=[1.0, self.pooling_ratio, self.pooling_ratio, 1.0],
            pseudo_random=self.pseudo_random, overlapping=self.overlapping, deterministic=deterministic,
            seed=seed, seed2=seed).output
        return tf.cast(y, self.compute_dtype)

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        return _smart_cond(training, lambda: self._pool(inputs, False), lambda: self._pool(inputs, True))

    def compute_output_shape(self, input_shape):
        n, h, w, c = tf.TensorShape(input_shape).as_list()
        shrink = lambda d: None if d is None else int(d / self.pooling_ratio)  # noqa: E731
        return tf.TensorShape([n, shrink(h), shrink(w), c])

    def get_config(self):
        return {**super().get_config(), "pooling_ratio": self.pooling_ratio, "pseudo_random": self.pseudo_random,
                "overlapping": self.overlapping, "seed": self.seed}


# A pooling window spans ceil(alpha) rows, one more when regions overlap.
complexity.register_layer_cost(
    FractionalMaxPool2D, "pool",
    lambda layer, _: (math.ceil(layer.pooling_ratio) + layer.overlapping) ** 2)


def max_norm(max_value, axis=0):
    """``tf.keras.constraints.MaxNorm(max_value, axis)``: rescale so each unit's weights have
    L2 norm at most ``max_value``.

    ``axis`` are the axes summed over for one unit: 0 for a Dense kernel ``(in, units)``,
    ``[0, 1, 2]`` for a Conv2D kernel ``(KH, KW, C_in, C_out)``. Pass the result as a layer's
    ``kernel_constraint``; Keras optimizers project the weights after every update.
    """
    try:
        value = float(max_value)
    except (TypeError, ValueError):
        raise InputTypeError(f"max_value must be a positive number, got {max_value!r}") from None
    if not value > 0 or math.isinf(value):
        raise ConfigError(f"max_value must be a positive finite number, got {max_value!r}")
    return tf.keras.constraints.MaxNorm(value, axis=axis)


def _kernel_axes(layer):
    """Axes of one unit's incoming weights in ``layer.kernel``, or None for other layers."""
    if isinstance(layer, layers.Dense):
        return 0
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)) and not isinstance(
            layer, (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)):
        return list(range(len(layer.kernel_size) + 1))
    return None


def with_max_norm(model, max_value):
    """A copy of functional ``model`` whose Dense and convolution kernels carry a max-norm
    constraint of ``max_value``, with the same weights (projected onto the constraint).

    The constraint lives on the kernel variables, so any Keras optimizer (and therefore the
    package's trainer and ``model.fit``) enforces it after each step; it survives
    ``get_config``/saving as an ordinary ``kernel_constraint``.
    """
    if not isinstance(model, tf.keras.Model) or not getattr(model, "_is_graph_network", False):
        raise InputTypeError(f"with_max_norm needs a functional tf.keras.Model, got {type(model).__name__}")
    max_norm(max_value)  # validates max_value before anything is cloned

    def clone(layer):
        axes = _kernel_axes(layer)
        config = layer.get_config()
        if axes is not None:
            config["kernel_constraint"] = tf.keras.constraints.serialize(max_norm(max_value, axes))
        return layer.__class__.from_config(config)

    copy = tf.keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    for layer in copy.layers:
        if _kernel_axes(layer) is not None:
            layer.kernel.assign(layer.kernel_constraint(layer.kernel))
    return copy
