"""Shapes drawn with NumPy: the primitive of the package's synthetic image sets.

The captioning set (:func:`cs231n_tf.sequence.captions.synthetic_captions`) and the scene sets of
segmentation and detection (:func:`shape_scenes`) draw their objects with :func:`shape_mask`, so a
shape means the same pixels everywhere.
"""

import dataclasses

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError

# Exact RGB values: nothing is anti-aliased, so each colour's pixels are exactly its shape's mask.
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
    "white": (240, 240, 240),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUND = (0, 0, 0)


def shape_mask(shape, centre, size, image_size):
    """Boolean ``(S, S)`` mask of ``shape`` centred at ``centre = (y, x)`` with half-extent ``size``.

    A circle of radius ``size``; a square of half-side ``0.85 * size`` (about the circle's area);
    an upward equilateral triangle inscribed in the circle of radius ``size`` (its centroid is
    ``centre``). Pixel ``(i, j)`` is inside when its centre ``(i + 0.5, j + 0.5)`` is.
    """
    if shape not in SHAPES:
        raise ConfigError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    cy, cx = centre
    mask = np.zeros((image_size, image_size), bool)
    # Every shape lies within [c - size, c + size] on both axes: only that window is evaluated.
    y0, x0 = (max(int(np.floor(c - size)) - 1, 0) for c in (cy, cx))
    y1, x1 = (min(int(np.ceil(c + size)) + 1, image_size) for c in (cy, cx))
    if y1 <= y0 or x1 <= x0:
        return mask
    yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
    if shape == "circle":
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= size ** 2
    elif shape == "square":
        half = 0.85 * size
        inside = (np.abs(yy - cy) <= half) & (np.abs(xx - cx) <= half)
    else:
        h = np.sqrt(3) / 2 * size
        verts = [(cy - size, cx), (cy + size / 2, cx + h), (cy + size / 2, cx - h)]  # clockwise on screen
        inside = np.ones_like(yy, bool)
        for (ya, xa), (yb, xb) in zip(verts, verts[1:] + verts[:1]):
            inside &= (xb - xa) * (yy - ya) - (yb - ya) * (xx - xa) >= 0
    mask[y0:y1, x0:x1] = inside
    return mask


# ---- scenes: several overlapping shapes on textured backgrounds (segmentation, detection) --------


@dataclasses.dataclass
class SceneInstances:
    """The visible objects of one scene, in painting order (later objects occlude earlier ones).

    ``boxes (M, 4) int32``: ``[ymin, xmin, ymax, xmax]`` in pixels, the tight box of the visible
    mask with exclusive ``ymax``/``xmax`` (``mask[ymin:ymax, xmin:xmax]`` holds every visible
    pixel); ``classes (M,) uint8`` in ``1..K`` (``SHAPES[k - 1]``); ``masks (M, H, W) bool``, the
    visible part of each object after the objects painted over it.
    """

    boxes: np.ndarray
    classes: np.ndarray
    masks: np.ndarray

    def __len__(self):
        return len(self.classes)


@dataclasses.dataclass
class ShapeScenes:
    """A synthetic scene set: ``images (N, H, W, 3) uint8``; ``masks (N, H, W) uint8`` semantic label
    maps (0 = background, ``k`` = ``class_names[k]``); ``instances``: one :class:`SceneInstances`
    per image; ``class_names = ("background", *SHAPES)``."""

    images: np.ndarray
    masks: np.ndarray
    instances: list
    class_names: tuple

    def __len__(self):
        return len(self.images)

    @property
    def num_classes(self):
        return len(self.class_names)


def _background(rng, size):
    """A float ``(S, S, 3)`` background: a linear gradient between two random colours in a random
    direction, plus a sinusoidal stripe texture of random frequency, orientation and colour."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * yy + np.sin(angle) * xx)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    image = start + t[..., None] * (end - start)
    stripe_angle, freq = rng.uniform(0, np.pi), rng.uniform(2, 8)
    phase = np.cos(stripe_angle) * yy + np.sin(stripe_angle) * xx
    texture = np.sin(2 * np.pi * freq * phase + rng.uniform(0, 2 * np.pi))
    return image + texture[..., None] * rng.uniform(-40, 40, 3)


def shape_scenes(num_images, image_size=64, seed=0, min_objects=2, max_objects=5, min_size=0.08, max_size=0.22,
                 noise=12.0, min_visible=6):
    """``num_images`` scenes of overlapping shapes: the embedded segmentation/detection data set.

    Each image gets ``min_objects..max_objects`` shapes (classes ``SHAPES``, drawn with
    :func:`shape_mask`) with half-extents uniform in ``[min_size, max_size] * image_size`` (scale
    variation) and centres anywhere in the image (objects may be cut by the border). Each object has
    a uniformly random RGB colour, independent of its class, so only the shape tells the class.
    Objects are painted in order over a gradient-plus-stripes background (:func:`_background`); a
    later object occludes an earlier one, and every mask and box describes only the visible part.
    Objects with fewer than ``min_visible`` visible pixels are dropped from ``instances`` and their
    pixels keep the label of what is painted there. Gaussian pixel noise of std ``noise`` is added
    last. The same arguments give the same scenes (``numpy.random.default_rng(seed)``).
    """
    num_images = validation.positive_int("num_images", num_images)
    image_size = validation.int_in("image_size", image_size, 8)
    min_objects = validation.non_negative_int("min_objects", min_objects)
    max_objects = validation.positive_int("max_objects", max_objects)
    if min_objects > max_objects:
        raise ConfigError(f"min_objects ({min_objects}) must not exceed max_objects ({max_objects})")
    min_size = validation.positive_number("min_size", min_size)
    max_size = validation.positive_number("max_size", max_size)
    if min_size > max_size or max_size > 0.5:
        raise ConfigError(f"need 0 < min_size <= max_size <= 0.5 (fractions of image_size), got "
                          f"min_size={min_size!r}, max_size={max_size!r}")
    noise = validation.positive_number("noise", noise, allow_zero=True)
    min_visible = validation.positive_int("min_visible", min_visible)
    rng = np.random.default_rng(seed)
    images = np.empty((num_images, image_size, image_size, 3), np.uint8)
    masks = np.zeros((num_images, image_size, image_size), np.uint8)
    instances = []
    for i in range(num_images):
        canvas = _background(rng, image_size)
        owner = np.full((image_size, image_size), -1, np.int64)  # which object each pixel shows
        classes = []
        for k in range(int(rng.integers(min_objects, max_objects + 1))):
            cls = int(rng.integers(len(SHAPES)))
            size = rng.uniform(min_size, max_size) * image_size
            centre = rng.uniform(0, image_size, 2)
            inside = shape_mask(SHAPES[cls], tuple(centre), size, image_size)
            canvas[inside] = rng.uniform(0, 255, 3)
            owner[inside] = k
            classes.append(cls + 1)
        boxes, kept_classes, kept_masks = [], [], []
        for k, cls in enumerate(classes):
            visible = owner == k
            if visible.sum() < min_visible:
                continue
            rows, cols = np.flatnonzero(visible.any(1)), np.flatnonzero(visible.any(0))
            boxes.append([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1])
            kept_classes.append(cls)
            kept_masks.append(visible)
        # Every painted pixel keeps its object's class, dropped slivers included.
        masks[i] = np.where(owner >= 0, np.asarray([0] + classes, np.uint8)[owner + 1], 0)
        canvas += rng.normal(0, noise, canvas.shape) if noise else 0
        images[i] = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
        instances.append(SceneInstances(
            np.asarray(boxes, np.int32).reshape(-1, 4), np.asarray(kept_classes, np.uint8),
            np.asarray(kept_masks, bool).reshape(-1, image_size, image_size)))
    return ShapeScenes(images, masks, instances, ("background",) + SHAPES)


# ---- single objects: one shape per image with its box and keypoints (classification + localization) --

KEYPOINTS = ("centre", "top", "right", "bottom", "left")


def shape_keypoints(shape, centre, size):
    """``(5, 2)`` float ``(y, x)`` keypoints of the shape :func:`shape_mask` draws: its centre and where
    its outline crosses the vertical and horizontal lines through the centre (``KEYPOINTS`` order).

    They depend on the class: a circle's lie at distance ``size``, a square's at its half-side
    ``0.85 * size``; the triangle's top is its apex (``size`` up), its bottom the middle of its base
    (``size / 2`` down) and its sides are crossed ``size / sqrt(3)`` left and right of the centroid.
    """
    if shape not in SHAPES:
        raise ConfigError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    if shape == "triangle":
        up, right, down = size, size / np.sqrt(3), size / 2
    else:
        up = right = down = size if shape == "circle" else 0.85 * size
    cy, cx = centre
    return np.array([(cy, cx), (cy - up, cx), (cy, cx + right), (cy + down, cx), (cy, cx - right)], np.float64)


@dataclasses.dataclass
class SingleShapes:
    """Images of one object each: ``images (N, H, W, 3) uint8``; ``boxes (N, 4) float32`` pixels
    ``[ymin, xmin, ymax, xmax]`` (the tight box of the mask, exclusive max); ``classes (N,) int32``
    indexing ``class_names = SHAPES``; ``keypoints (N, 5, 2) float32`` pixel ``(y, x)`` in
    ``KEYPOINTS`` order (:func:`shape_keypoints`)."""

    images: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    keypoints: np.ndarray
    class_names: tuple = SHAPES
    keypoint_names: tuple = KEYPOINTS

    def __len__(self):
        return len(self.images)


def single_shapes(num_images, image_size=64, seed=0, min_size=0.12, max_size=0.4, noise=8.0):
    """``num_images`` images of one shape each: the embedded classification + localization set.

    Each image shows one shape of a uniformly random class, half-extent uniform in
    ``[min_size, max_size] * image_size``, centred so the whole shape is inside the image, in a
    uniformly random RGB colour, over the textured backgrounds of :func:`shape_scenes`; Gaussian
    pixel noise of std ``noise`` is added last. The same arguments give the same images.
    """
    num_images = validation.positive_int("num_images", num_images)
    image_size = validation.int_in("image_size", image_size, 8)
    min_size = validation.positive_number("min_size", min_size)
    max_size = validation.positive_number("max_size", max_size)
    if min_size > max_size or max_size > 0.5:
        raise ConfigError(f"need 0 < min_size <= max_size <= 0.5 (fractions of image_size), got "
                          f"min_size={min_size!r}, max_size={max_size!r}")
    noise = validation.positive_number("noise", noise, allow_zero=True)
    rng = np.random.default_rng(seed)
    images = np.empty((num_images, image_size, image_size, 3), np.uint8)
    boxes = np.empty((num_images, 4), np.float32)
    classes = rng.integers(len(SHAPES), size=num_images).astype(np.int32)
    keypoints = np.empty((num_images, len(KEYPOINTS), 2), np.float32)
    for i in range(num_images):
        canvas = _background(rng, image_size)
        size = rng.uniform(min_size, max_size) * image_size
        centre = tuple(rng.uniform(size, image_size - size, 2))
        shape = SHAPES[classes[i]]
        inside = shape_mask(shape, centre, size, image_size)
        canvas[inside] = rng.uniform(0, 255, 3)
        rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
        boxes[i] = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
        keypoints[i] = shape_keypoints(shape, centre, size)
        canvas += rng.normal(0, noise, canvas.shape) if noise else 0
        images[i] = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return SingleShapes(images, boxes, classes, keypoints)
