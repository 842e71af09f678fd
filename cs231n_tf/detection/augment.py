"""Augmentation that moves boxes with the image: horizontal flip and scale jitter (zoom-in crop).

Every operation is a stateless random op of ``seed`` (shape ``[2]``): the same seed gives the same
view, which is what makes a resumed run see the batches of an uninterrupted one. Boxes are pixels
``[ymin, xmin, ymax, xmax]`` of a padded ground truth whose ``valid (M,)`` marks the real rows.
"""

import tensorflow as tf

from cs231n_tf.errors import ConfigError

AUGMENTATIONS = ("flip", "scale")


def parse_augment(spec):
    """``"flip,scale"`` -> ``("flip", "scale")``; ``"none"`` or ``""`` -> ``()``."""
    if spec in (None, "", "none"):
        return ()
    items = tuple(s.strip() for s in str(spec).split(","))
    bad = [s for s in items if s not in AUGMENTATIONS]
    if bad or len(set(items)) != len(items):
        raise ConfigError(f"augment must be 'none' or a comma-separated subset of {', '.join(AUGMENTATIONS)}, "
                          f"got {spec!r}")
    return items


def flip_boxes(boxes, width):
    """Boxes of the left-right mirrored image: ``[ymin, W - xmax, ymax, W - xmin]``."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.stack([ymin, width - xmax, ymax, width - xmin], axis=-1)


def augment_detection(image, boxes, valid, seed, ops=AUGMENTATIONS, max_scale=1.5):
    """One random view of ``image (H, W, C) float``, ``boxes (M, 4)``, ``valid (M,)`` -> the same shapes.

    ``flip``: mirror left-right with probability 1/2. ``scale``: enlarge the image by a factor
    uniform in ``[1, max_scale]`` and crop ``H x W`` back at a random position; boxes are scaled,
    shifted and clipped to the window, and a box whose centre falls outside the window is dropped
    (``valid`` False; SSD's rule), as is one left with no area.
    """
    height, width = image.shape[0], image.shape[1]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    boxes = tf.cast(boxes, tf.float32)
    if "flip" in ops:
        flip = tf.random.stateless_uniform([], seeds[0]) < 0.5
        image = tf.where(flip, tf.reverse(image, [1]), image)
        boxes = tf.where(flip, flip_boxes(boxes, float(width)), boxes)
    if "scale" in ops:
        factor = tf.random.stateless_uniform([], seeds[1], 1.0, max_scale)
        size = tf.cast(tf.round(factor * [height, width]), tf.int32)
        image = tf.image.resize(image, size, method="bilinear")
        room = tf.cast(size - [height, width] + 1, tf.float32)
        offset = tf.floor(tf.random.stateless_uniform([2], seeds[2]) * room)
        top, left = tf.cast(offset[0], tf.int32), tf.cast(offset[1], tf.int32)
        image = image[top:top + height, left:left + width]
        scale = tf.cast(size, tf.float32) / [height, width]
        boxes = boxes * tf.tile(scale, [2]) - tf.tile(offset, [2])
        centre_y, centre_x = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        inside = (centre_y >= 0) & (centre_y < height) & (centre_x >= 0) & (centre_x < width)
        boxes = tf.clip_by_value(boxes, 0.0, tf.constant([height, width, height, width], tf.float32))
        has_area = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        valid = tf.cast(valid, tf.bool) & inside & has_area
    return tf.ensure_shape(image, [height, width, image.shape[-1]]), boxes, valid
