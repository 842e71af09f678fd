"""DeepDream (Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks", 2015; lecture 12).

Gradient *ascent* on the image to amplify whatever a layer already sees: the objective is
``0.5 * mean(A^2)`` of the layer's activations ``A``. Each step rolls the image by a random jitter
(so the pattern does not lock to the pixel grid), divides the gradient by its mean absolute value
(so one ``step_size`` works at every layer and scale), undoes the jitter and clips. Octaves run the
ascent on the image downscaled by ``octave_scale`` ``k`` times first, then add the detail it found to
the full image, so large structures appear as well as fine texture.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ShapeError
from cs231n_tf.visualize.style import feature_extractor


def _objective(extractor, layer, image, fixed_size):
    # A model with a fixed input size sees the octave's image resized back up, which keeps the
    # ascent coarse at small octaves; a fully convolutional one sees it as it is.
    x = tf.image.resize(image, fixed_size) if fixed_size else image
    act = tf.cast(extractor(x, training=False)[layer], tf.float32)
    return 0.5 * tf.reduce_mean(tf.square(act))


def deep_dream(model, image, layer, *, steps=20, step_size=0.01, octaves=3, octave_scale=1.4, max_jitter=8,
               clip=None, seed=0):
    """Amplify ``layer``'s activations in ``image`` ``(1, H, W, C)`` (in ``model``'s input space).

    ``steps`` ascent steps per octave; ``octaves`` scales ``octave_scale ** -k`` for ``k = octaves-1 .. 0``;
    ``clip`` ``(low, high)`` bounds the pixels. An unknown ``layer`` raises ``ConfigError`` listing the
    valid ones. Returns ``(image, objective)``: the dreamed image and the objective after each octave.
    """
    steps = validation.positive_int("steps", steps)
    octaves = validation.positive_int("octaves", octaves)
    max_jitter = validation.non_negative_int("max_jitter", max_jitter)
    step_size = validation.positive_number("step_size", step_size)
    octave_scale = validation.positive_number("octave_scale", octave_scale)
    extractor = feature_extractor(model, [layer])
    image = tf.convert_to_tensor(image, tf.float32)
    if image.shape.rank != 4 or image.shape[0] != 1:
        raise ShapeError(f"image must have shape (1, H, W, C), got {tuple(image.shape)}")
    height, width = int(image.shape[1]), int(image.shape[2])
    fixed = model.input_shape[1:3]
    fixed_size = tuple(fixed) if None not in fixed else None
    lo, hi = (-np.inf, np.inf) if clip is None else clip
    rng = np.random.default_rng(seed)

    @tf.function(reduce_retracing=True)
    def ascend(img, shift):
        img = tf.roll(img, shift, (1, 2))
        with tf.GradientTape() as tape:
            tape.watch(img)
            value = _objective(extractor, layer, img, fixed_size)
        g = tape.gradient(value, img)
        img = img + step_size * g / (tf.reduce_mean(tf.abs(g)) + 1e-8)
        return tf.clip_by_value(tf.roll(img, -shift, (1, 2)), lo, hi)

    history = []
    for k in range(octaves - 1, -1, -1):
        size = (max(1, round(height / octave_scale ** k)), max(1, round(width / octave_scale ** k)))
        small = tf.image.resize(image, size)
        dreamed = small
        for _ in range(steps):
            shift = rng.integers(-max_jitter, max_jitter + 1, 2) if max_jitter else np.zeros(2, np.int64)
            dreamed = ascend(dreamed, tf.constant(shift, tf.int32))
        # Add only what this octave changed, so the full-resolution detail of the image survives.
        image = tf.clip_by_value(image + tf.image.resize(dreamed - small, (height, width)), lo, hi)
        history.append(float(_objective(extractor, layer, image, fixed_size)))
    return image.numpy(), np.asarray(history)
