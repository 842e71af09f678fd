"""Saliency maps (lecture 12): which pixels the class score is most sensitive to.

- Saliency: Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks" (2014): the gradient
  of the *unnormalised* class score with respect to the image, absolute value, max over channels.
- SmoothGrad: Smilkov et al. (2017): the mean of the saliency over noisy copies of the image.
- Guided backpropagation: Springenberg et al., "Striving for Simplicity" (2015): backpropagate
  through every ReLU only where the forward input was positive *and* the incoming gradient is
  positive, so only evidence for the class flows back.

Images ``x`` are ``(N, H, W, C)`` in the model's own input space; labels ``y`` are ``(N,)`` ints.
Maps are ``(N, H, W)`` float32. A Keras model whose last layer applies softmax is differentiated
through that layer's pre-softmax output (the unnormalised score, as tf-keras-vis's ``ReplaceToLinear``
does); any other callable goes through :func:`cs231n_tf.adversarial.as_logits_fn`, which turns
probability outputs into log-probabilities.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.adversarial.attacks import as_logits_fn
from cs231n_tf.errors import DataError


def score_head(model):
    """``(tensor, head)``: the unnormalised class scores of a Keras ``model`` are ``head(tensor)``.

    For a model whose last layer applies softmax, ``tensor`` is that layer's input and ``head`` the
    layer without its softmax; otherwise ``tensor`` is the model's output and ``head`` the identity.
    """
    last = model.layers[-1]
    if isinstance(last, tf.keras.layers.Softmax):
        return last.input, tf.identity
    if getattr(last, "activation", None) is tf.keras.activations.softmax:
        linear = last.__class__.from_config({**last.get_config(), "activation": "linear"})
        linear.build(last.input_shape)
        linear.set_weights(last.get_weights())
        return last.input, linear
    return model.output, tf.identity


def class_scores_fn(model, x=None):
    """A callable ``images -> unnormalised class scores (N, K)`` for ``model``."""
    if isinstance(model, tf.keras.Model) and model.layers:
        tensor, head = score_head(model)
        body = tf.keras.Model(model.inputs, tensor)
        return lambda t: tf.cast(head(body(t, training=False)), tf.float32)
    return as_logits_fn(model, x=x)


def check_batch(x, y, logits_fn):
    """``x`` as a float32 ``(N, H, W, C)`` tensor and ``y`` as int32 labels in range of the model."""
    x = tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank != 4:
        raise DataError(f"x must be a batch of images (N, H, W, C), got shape {tuple(x.shape)}")
    y = np.broadcast_to(np.asarray(y), (int(x.shape[0]),))
    num_classes = int(logits_fn(x[:1]).shape[-1])
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_classes:
        raise DataError(f"class indices must be in 0..{num_classes - 1}, got {np.unique(y).tolist()[:8]}")
    return x, tf.convert_to_tensor(y, tf.int32)


def score_gradient(logits_fn, x, y):
    """``d score_y / d x``: the gradient of each image's class score, shaped like ``x``."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(tf.gather(logits_fn(x), y, axis=1, batch_dims=1))
    return tape.gradient(score, x)


def saliency(model, x, y):
    """Saliency maps ``max_c |d s_y / d x|`` of shape ``(N, H, W)``."""
    logits_fn = class_scores_fn(model, x=x)
    x, y = check_batch(x, y, logits_fn)
    return tf.reduce_max(tf.abs(score_gradient(logits_fn, x, y)), axis=-1).numpy()


def compute_saliency_maps(X, y, model):
    """Assignment 3's function: saliency maps ``(N, H, W)`` of images ``X`` for labels ``y``."""
    return saliency(model, X, y)


def smoothgrad(model, x, y, samples=16, noise=0.15, seed=0):
    """SmoothGrad: mean over ``samples`` copies with Gaussian noise of ``noise * (max - min)`` of each
    image of ``|d s_y / d x|`` (max over channels), ``(N, H, W)``."""
    samples = validation.positive_int("samples", samples)
    noise = validation.positive_number("noise", noise, allow_zero=True)
    logits_fn = class_scores_fn(model, x=x)
    x, y = check_batch(x, y, logits_fn)
    sigma = noise * (tf.reduce_max(x, [1, 2, 3], keepdims=True) - tf.reduce_min(x, [1, 2, 3], keepdims=True))
    total = tf.zeros(x.shape[:3])
    for i in range(samples):
        noisy = x + sigma * tf.random.stateless_normal(x.shape, [seed, i])
        total += tf.reduce_max(tf.abs(score_gradient(logits_fn, noisy, y)), axis=-1)
    return (total / samples).numpy()


@tf.custom_gradient
def guided_relu(x):
    """ReLU whose backward pass keeps only positive gradients at positive inputs (guided backprop)."""
    def grad(dy):
        return dy * tf.cast(x > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)
    return tf.nn.relu(x), grad


def _guided_layer(layer):
    config = layer.get_config()
    if isinstance(layer, tf.keras.layers.ReLU):
        return tf.keras.layers.Activation(guided_relu, name=layer.name)
    if getattr(layer, "activation", None) is tf.keras.activations.relu:
        config["activation"] = guided_relu
    return layer.__class__.from_config(config)


def guided_model(model):
    """A copy of the Keras ``model`` (same weights) whose ReLUs are :func:`guided_relu`."""
    if not isinstance(model, tf.keras.Model):
        raise DataError(f"guided backpropagation needs a Keras model, got {type(model).__name__}")
    clone = tf.keras.models.clone_model(model, clone_function=_guided_layer)
    clone.set_weights(model.get_weights())
    return clone


def guided_backprop(model, x, y):
    """Guided-backpropagation gradients ``(N, H, W, C)`` of the class score (not reduced: an image)."""
    guided = guided_model(model)
    logits_fn = class_scores_fn(guided)
    x, y = check_batch(x, y, logits_fn)
    return score_gradient(logits_fn, x, y).numpy()
