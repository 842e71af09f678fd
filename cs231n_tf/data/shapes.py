"""Shapes drawn with NumPy: the primitive of the package's synthetic image sets.

The captioning set (:func:`cs231n_tf.sequence.captions.synthetic_captions`) and the scene sets of
segmentation and detection draw their objects with :func:`shape_mask`, so a shape means the same
pixels everywhere.
"""

import numpy as np

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
