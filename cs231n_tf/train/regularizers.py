"""Weight penalties (lecture 7, "regularization"): L2, L1 and elastic net on a model's weights.

The course adds ``R(W)`` to the data loss and regularises the weights that multiply the input
(kernels, embeddings), never biases or normalisation parameters: those shift or rescale activations,
and penalising them only hurts the fit. With ``wd`` the strength::

    l2       R = 0.5 * wd * sum(w**2)                                  dR/dw = wd * w
    l1       R = wd * sum(|w|)                                          dR/dw = wd * sign(w)
    elastic  R = wd * (l1_ratio * sum(|w|) + (1 - l1_ratio) * 0.5 * sum(w**2))

The factor 0.5 in the L2 term makes its gradient ``wd * w`` (the course's convention and what the
trainer always used). Elastic net is Zou & Hastie (2005), "Regularization and variable selection via
the elastic net", in scikit-learn's mixing convention (``l1_ratio=1`` is L1, ``0`` is L2).

The functions take any list of variables or tensors, so they work outside the trainer too:
``loss = data_loss + penalty("l1", decayed_variables(model), 1e-4)``.
"""

import numbers

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError

PENALTIES = ("l2", "l1", "elastic")

# Variable names (the last path component) that carry the layer's input-to-output weights.
_DECAYED_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings", "recurrent_kernel")


def decayed_variables(model):
    """Kernels and embeddings of ``model``: the weights a penalty applies to (not biases or norms)."""
    return [v for v in model.trainable_variables
            if v.name.split("/")[-1].split(":")[0] in _DECAYED_NAMES]


def _sum(terms):
    return tf.add_n([tf.constant(0.0)] + terms)


def l2_penalty(weights, weight_decay):
    """``0.5 * weight_decay * sum(w**2)`` over ``weights``, a float32 scalar."""
    return 0.5 * weight_decay * _sum([tf.reduce_sum(tf.square(tf.cast(w, tf.float32))) for w in weights])


def l1_penalty(weights, weight_decay):
    """``weight_decay * sum(|w|)`` over ``weights``, a float32 scalar."""
    return weight_decay * _sum([tf.reduce_sum(tf.abs(tf.cast(w, tf.float32))) for w in weights])


def elastic_penalty(weights, weight_decay, l1_ratio=0.5):
    """``weight_decay * (l1_ratio * sum|w| + (1 - l1_ratio) * 0.5 * sum w**2)``, a float32 scalar."""
    return l1_penalty(weights, weight_decay * l1_ratio) + l2_penalty(weights, weight_decay * (1.0 - l1_ratio))


def check_penalty(name, weight_decay, l1_ratio=0.5):
    """Raise ConfigError unless ``name``/``weight_decay``/``l1_ratio`` describe a valid penalty."""
    if name not in PENALTIES:
        raise ConfigError(f"unknown penalty {name!r}; choose one of {', '.join(PENALTIES)}")
    validation.positive_number("weight_decay", weight_decay, allow_zero=True)
    if isinstance(l1_ratio, bool) or not isinstance(l1_ratio, numbers.Real) or not 0.0 <= l1_ratio <= 1.0:
        raise ConfigError(f"l1_ratio must be a number in [0, 1], got {l1_ratio!r}")


def regularization_loss(model, decayed, name="l2", weight_decay=0.0, l1_ratio=0.5):
    """All a training loss adds to its data term, a float32 scalar: the layers' own losses
    (``model.losses``) plus the ``name`` penalty at ``weight_decay`` on ``decayed`` (the
    :func:`decayed_variables` of ``model``, computed once by the caller, outside its step)."""
    reg = _sum([tf.cast(loss, tf.float32) for loss in model.losses])
    if weight_decay and decayed:
        reg += penalty(name, decayed, weight_decay, l1_ratio)
    return reg


def penalty(name, weights, weight_decay, l1_ratio=0.5):
    """The penalty ``name`` (``l2``, ``l1`` or ``elastic``) of ``weights``, a float32 scalar."""
    check_penalty(name, weight_decay, l1_ratio)
    if name == "l2":
        return l2_penalty(weights, weight_decay)
    if name == "l1":
        return l1_penalty(weights, weight_decay)
    return elastic_penalty(weights, weight_decay, l1_ratio)
