"""Feature inversion (Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them",
CVPR 2015; lecture 12): what an image looks like to a layer.

From random noise, find ``x`` minimising ``||F(x) - F(x0)||^2 / ||F(x0)||^2 + tv_weight * TV(x)``: the
layer's features ``F`` of the target image ``x0``, normalised so the weight means the same at every
layer, plus the total-variation prior (:func:`cs231n_tf.visualize.style.tv_loss`) that stands in for
natural-image statistics. As in the paper, the descent is gradient descent with momentum, each step
normalised by the gradient's RMS and the learning rate decayed linearly to zero. Inverting an early
layer gives back nearly the image; deep layers keep only what the class needs.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ShapeError
from cs231n_tf.visualize.style import feature_extractor, tv_loss


@dataclasses.dataclass
class Inversion:
    """The reconstruction ``(1, H, W, C)`` and the feature-matching loss (without TV) after every step
    (``loss[0]``: the random start)."""

    image: np.ndarray
    loss: np.ndarray


def invert_features(model, target, layer, *, steps=200, learning_rate=0.1, momentum=0.9, tv_weight=1e-3, clip=None,
                    init_scale=0.1, seed=0):
    """Reconstruct ``target`` ``(1, H, W, C)`` from ``layer``'s features of it (``model``'s input space).

    An unknown ``layer`` raises ``ConfigError`` listing the valid ones. ``clip`` ``(low, high)`` keeps the
    pixels in range; the start is Gaussian noise of ``init_scale`` times the target's standard deviation.
    """
    steps = validation.positive_int("steps", steps)
    learning_rate = validation.positive_number("learning_rate", learning_rate)
    tv_weight = validation.positive_number("tv_weight", tv_weight, allow_zero=True)
    extractor = feature_extractor(model, [layer])
    target = tf.convert_to_tensor(target, tf.float32)
    if target.shape.rank != 4 or target.shape[0] != 1:
        raise ShapeError(f"target must have shape (1, H, W, C), got {tuple(target.shape)}")
    wanted = tf.cast(extractor(target, training=False)[layer], tf.float32)
    scale = tf.maximum(tf.reduce_sum(tf.square(wanted)), 1e-12)
    noise = tf.random.stateless_normal(target.shape, [seed, 0]) * init_scale * tf.math.reduce_std(target)
    image = tf.Variable(tf.reduce_mean(target) + noise)
    velocity = tf.Variable(tf.zeros_like(target))
    lo, hi = (-np.inf, np.inf) if clip is None else clip

    def feature_loss():
        return tf.reduce_sum(tf.square(tf.cast(extractor(image, training=False)[layer], tf.float32) - wanted)) / scale

    @tf.function
    def step(rate):
        with tf.GradientTape() as tape:
            loss = feature_loss() + tv_loss(image, tv_weight)
        g = tape.gradient(loss, image)
        velocity.assign(momentum * velocity - rate * g / (tf.sqrt(tf.reduce_mean(tf.square(g))) + 1e-12))
        image.assign(tf.clip_by_value(image + velocity, lo, hi))
        return feature_loss()

    losses = [float(feature_loss())]
    for t in range(steps):
        losses.append(float(step(tf.constant(learning_rate * (1 - t / steps), tf.float32))))
    return Inversion(image=image.numpy(), loss=np.asarray(losses))
