"""Augmentation that moves a label map with its image: flip, scale (zoom in) and crop (translate).

Every operation is a stateless random op of ``seed`` (shape ``[2]``), so the same seed gives the
same view, which is what makes a resumed run see the batches of an uninterrupted one. Images are
resampled bilinearly, masks with nearest neighbour (a label stays a label: no blends of classes);
pixels that come from outside the image get the ignore label, so the loss does not learn the padding.
"""

import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.segmentation.losses import IGNORE_LABEL

AUGMENTATIONS = ("flip", "scale", "crop")


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


def augment_pair(image, mask, seed, ops=AUGMENTATIONS, max_scale=1.5, crop_fraction=0.125):
    """One random view of ``image (H, W, C) float`` and ``mask (H, W) int`` -> the same shapes.

    ``flip``: mirror left-right with probability 1/2. ``scale``: resize both by a factor uniform in
    ``[1, max_scale]`` and crop ``H x W`` back at a random position. ``crop``: pad by
    ``crop_fraction`` of the size (image with zeros, mask with the ignore label) and crop ``H x W``
    back at a random offset.
    """
    height, width = image.shape[0], image.shape[1]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    mask = tf.cast(mask, tf.int32)[..., None]
    if "flip" in ops:
        flip = tf.random.stateless_uniform([], seeds[0]) < 0.5
        image = tf.where(flip, tf.reverse(image, [1]), image)
        mask = tf.where(flip, tf.reverse(mask, [1]), mask)
    if "scale" in ops:
        factor = tf.random.stateless_uniform([], seeds[1], 1.0, max_scale)
        size = tf.cast(tf.round(factor * [height, width]), tf.int32)
        image = tf.image.resize(image, size, method="bilinear")
        mask = tf.image.resize(mask, size, method="nearest")
        image, mask = _crop(image, mask, seeds[2], height, width)
    if "crop" in ops:
        pad_h, pad_w = int(round(height * crop_fraction)), int(round(width * crop_fraction))
        image = tf.pad(image, [[pad_h, pad_h], [pad_w, pad_w], [0, 0]])
        mask = tf.pad(mask + 1, [[pad_h, pad_h], [pad_w, pad_w], [0, 0]]) - 1  # padding becomes -1 ...
        mask = tf.where(mask < 0, IGNORE_LABEL, mask)  # ... then the ignore label
        image, mask = _crop(image, mask, seeds[3], height, width)
    image = tf.ensure_shape(image, [height, width, image.shape[-1]])
    return image, tf.ensure_shape(mask[..., 0], [height, width])


def _crop(image, mask, seed, height, width):
    """The same random ``height x width`` window of both."""
    room = tf.cast(tf.shape(mask)[:2] - [height, width] + 1, tf.float32)
    offset = tf.cast(tf.floor(tf.random.stateless_uniform([2], seed) * room), tf.int32)
    top, left = offset[0], offset[1]
    return (image[top:top + height, left:left + width], mask[top:top + height, left:left + width])
