"""Class visualization by gradient ascent (Simonyan et al. 2014; Yosinski et al., "Understanding Neural
Networks Through Deep Visualization", 2015), assignment 3's ``create_class_visualization``.

Starting from small noise, repeat: jitter the image by a random roll of up to ``max_jitter`` pixels,
take a normalised gradient step on ``s_y(I) - l2_reg * ||I||^2`` (the unnormalised score), undo the
jitter, clip to the valid range and every ``blur_every`` steps blur with a Gaussian of ``blur_sigma``
(the lecture's regularisers: L2, jitter, clipping and periodic blur).
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.visualize.saliency import check_batch, class_scores_fn, score_gradient


def _gaussian_blur(img, sigma):
    radius = max(1, int(round(2 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-t ** 2 / (2 * sigma ** 2))
    k /= k.sum()
    c = int(img.shape[-1])
    # Separable depthwise blur with reflect padding, so the border does not darken.
    img = tf.pad(img, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    kh = tf.tile(tf.constant(k.reshape(-1, 1, 1, 1)), [1, 1, c, 1])
    kw = tf.tile(tf.constant(k.reshape(1, -1, 1, 1)), [1, 1, c, 1])
    img = tf.nn.depthwise_conv2d(img, kh, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(img, kw, [1, 1, 1, 1], "VALID")


def create_class_visualization(target_y, model, l2_reg=1e-3, learning_rate=25.0, num_iterations=100, blur_every=10,
                               max_jitter=16, blur_sigma=0.5, clip_min=None, clip_max=None, init=None,
                               image_shape=None, seed=0):
    """An image ``(1, H, W, C)`` that ``model`` scores highly as class ``target_y``.

    ``image_shape`` defaults to the model's input shape; ``init`` (``(1, H, W, C)``) replaces the
    random start; ``clip_min``/``clip_max`` bound the pixels (in the model's input space). Returns
    ``(image, scores)`` with the target score after each iteration.
    """
    num_iterations = validation.positive_int("num_iterations", num_iterations)
    blur_every = validation.positive_int("blur_every", blur_every)
    max_jitter = validation.non_negative_int("max_jitter", max_jitter)
    learning_rate = validation.positive_number("learning_rate", learning_rate)
    l2_reg = validation.positive_number("l2_reg", l2_reg, allow_zero=True)
    rng = np.random.default_rng(seed)
    shape = tuple(image_shape or model.input_shape[1:])
    img = tf.constant(init if init is not None else 0.1 * rng.standard_normal((1,) + shape), tf.float32)
    logits_fn = class_scores_fn(model)
    img, y = check_batch(img, [target_y], logits_fn)
    lo = -np.inf if clip_min is None else clip_min
    hi = np.inf if clip_max is None else clip_max

    # One compiled step (the jitter is an argument, so it traces once): eager steps cost several times
    # more than the network's forward and backward passes themselves.
    @tf.function
    def ascend(img, shift):
        img = tf.roll(img, shift, (1, 2))
        g = score_gradient(logits_fn, img, y) - 2 * l2_reg * img
        img = img + learning_rate * g / tf.maximum(tf.norm(g), 1e-12)
        return tf.clip_by_value(tf.roll(img, -shift, (1, 2)), lo, hi)

    score = tf.function(lambda img: logits_fn(img)[0, target_y])
    scores = []
    for t in range(num_iterations):
        shift = rng.integers(-max_jitter, max_jitter + 1, 2) if max_jitter else np.zeros(2, np.int64)
        img = ascend(img, tf.constant(shift, tf.int32))
        if (t + 1) % blur_every == 0:
            img = _gaussian_blur(img, blur_sigma)
        scores.append(float(score(img)))
    return img.numpy(), np.asarray(scores)
