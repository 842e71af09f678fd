"""Shallow classifiers for lecture 16's comparisons: linear softmax, maxout MLP and an RBF network.

Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples" (ICLR 2015) explain
adversarial examples by linearity: FGSM fools a softmax (linear) classifier and a maxout network
almost always, while a shallow RBF network, whose class score falls off quadratically away from a
prototype, resists it (and is unconfident where it is fooled). These builders make those three
models for any image shape, so the comparison runs on the package's data (``experiments/adversarial_digits.py``).

- ``softmax_classifier``: flatten, one affine layer (assignment 1's softmax classifier).
- ``maxout_net``: Goodfellow et al., "Maxout Networks" (ICML 2013), the permutation-invariant MNIST
  model: two maxout layers of 240 units with 5 pieces each, then the softmax layer.
- ``rbf_net``: one radial-basis unit per class, ``logit_k = b_k - sum_d beta_kd (x_d - mu_kd)^2`` with
  ``beta = softplus(rho) >= 0`` (Goodfellow et al. 2015, section 7).
"""

import tensorflow as tf

from cs231n_tf.models.registry import check_input_shape, register
from cs231n_tf.validation import positive_int

layers = tf.keras.layers
_serializable = tf.keras.utils.register_keras_serializable(package="cs231n_tf")


@_serializable
class Maxout(layers.Layer):
    """``out[n, m] = max_k (x[n] @ kernel[:, m, k] + bias[m, k])``: ``units`` maxout units of ``pieces`` pieces.

    The library twin of the tier-1 :func:`cs231n_tf.ops.maxout` (same parameter layout ``(D, M, K)``).
    """

    def __init__(self, units, pieces, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int("units", units)
        self.pieces = positive_int("pieces", pieces)
        self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        d = int(input_shape[-1])
        self.kernel = self.add_weight("kernel", (d, self.units, self.pieces), initializer=self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.units, self.pieces), initializer="zeros")

    def call(self, x):
        return tf.reduce_max(tf.einsum("nd,dmk->nmk", x, self.kernel) + self.bias, axis=-1)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "pieces": self.pieces,
                "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer)}


@_serializable
class RBFLogits(layers.Layer):
    """One Gaussian radial-basis unit per class, in log space: ``b_k - sum_d softplus(rho_kd) (x_d - mu_kd)^2``.

    Centres start at small random values and precisions at ``softplus(rho) = init_precision``.
    """

    def __init__(self, num_classes, init_precision=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = positive_int("num_classes", num_classes)
        self.init_precision = float(init_precision)

    def build(self, input_shape):
        d = int(input_shape[-1])
        rho = float(tf.math.log(tf.math.expm1(self.init_precision)))
        self.centers = self.add_weight("centers", (self.num_classes, d),
                                       initializer=tf.keras.initializers.RandomUniform(0.0, 1.0))
        self.rho = self.add_weight("rho", (self.num_classes, d), initializer=tf.keras.initializers.Constant(rho))
        self.bias = self.add_weight("bias", (self.num_classes,), initializer="zeros")

    def call(self, x):
        diff = x[:, None, :] - self.centers[None]
        return self.bias - tf.reduce_sum(tf.nn.softplus(self.rho) * tf.square(diff), axis=-1)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "init_precision": self.init_precision}


@register("softmax_classifier", family="linear", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=3072 * 10 + 10, reference="CS231n assignment 1, the softmax classifier (W: 3073 x 10)")
def softmax_classifier(input_shape, num_classes):
    """Linear softmax classifier: flatten, then ``logits = x W + b``."""
    input_shape = check_input_shape(input_shape)
    inputs = layers.Input(input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    return tf.keras.Model(inputs, layers.Dense(num_classes, name="logits")(x), name="softmax_classifier")


@register("maxout_net", family="fully connected", canonical_input_shape=(28, 28, 1), canonical_num_classes=10,
          reference_params=784 * 240 * 5 + 240 * 5 + 240 * 240 * 5 + 240 * 5 + 240 * 10 + 10,
          reference="Goodfellow et al. 2013, permutation-invariant MNIST maxout MLP (2 x 240 units, 5 pieces)")
def maxout_net(input_shape, num_classes, *, hidden_dims=(240, 240), pieces=5, dropout=0.0):
    """Maxout MLP (Goodfellow et al. 2013): maxout layers of ``hidden_dims`` units, ``pieces`` pieces each.

    ``dropout``: rate on the input of every layer (the paper trains with dropout; 0 turns it off).
    """
    input_shape = check_input_shape(input_shape)
    if not 0.0 <= float(dropout) < 1.0:
        from cs231n_tf.errors import ConfigError

        raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
    inputs = layers.Input(input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate(hidden_dims, 1):
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{i}")(x)
        x = Maxout(units, pieces, name=f"maxout{i}")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"dropout{len(hidden_dims) + 1}")(x)
    return tf.keras.Model(inputs, layers.Dense(num_classes, name="logits")(x), name="maxout_net")


@register("rbf_net", family="linear", canonical_input_shape=(28, 28, 1), canonical_num_classes=10,
          reference_params=2 * 784 * 10 + 10,
          reference="Goodfellow et al. 2015, section 7: one RBF unit per class (centre and diagonal precision)")
def rbf_net(input_shape, num_classes, *, init_precision=0.1):
    """Shallow RBF network: one Gaussian unit per class over the flattened image (log-space scores)."""
    input_shape = check_input_shape(input_shape)
    inputs = layers.Input(input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    return tf.keras.Model(inputs, RBFLogits(num_classes, init_precision, name="logits")(x), name="rbf_net")
