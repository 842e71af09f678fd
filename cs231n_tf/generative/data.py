"""Images for the GANs, scaled to [-1, 1] (the range of the course's tanh generators).

``digits`` is scikit-learn's embedded 8x8 set; ``digits28`` the same images resized (bilinear) to
28x28 so the course's MNIST architectures run offline; any other name is what
:func:`cs231n_tf.data.sources.load_raw` reads (``npz:PATH``, ``folder:PATH``, tfds ``mnist``...).
Sets without a test split of their own keep a fixed 20% of their images (``split_seed``) for
scoring.
"""

import dataclasses

import numpy as np

from cs231n_tf.data import sources

UPSAMPLED = {"digits28": ("digits", 28)}


@dataclasses.dataclass
class GANImages:
    """Train/test images ``[n, H, W, C]`` float32 in [-1, 1] with their integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def image_shape(self):
        return tuple(int(d) for d in self.x_train.shape[1:])


def to_signed(x, pixel_max):
    """Stored pixels -> [-1, 1]."""
    return (np.asarray(x, np.float32) / np.float32(pixel_max) * 2.0 - 1.0).astype(np.float32)


def to_unit(x):
    """Images in [-1, 1] -> [0, 1] (the Bernoulli means of the autoencoders)."""
    return ((np.asarray(x, np.float32) + 1.0) / 2.0).astype(np.float32)


def quantize(x, levels):
    """Images in [-1, 1] -> integer intensity levels ``0..levels-1`` (``levels=2``: binarised at 1/2)."""
    scaled = np.round(to_unit(x) * (int(levels) - 1))
    return np.clip(scaled, 0, int(levels) - 1).astype(np.int32)


def load_images(name="digits28", split_seed=0, test_fraction=0.2):
    """The data set ``name`` as :class:`GANImages` (see the module docstring)."""
    base, size = UPSAMPLED.get(name, (name, None))
    raw = sources.load_raw(base)
    x, y = to_signed(raw.x_train, raw.pixel_max), raw.y_train
    if raw.x_test is None:
        order = np.random.default_rng(split_seed).permutation(len(x))
        held = order[:int(round(test_fraction * len(x)))]
        keep = np.sort(order[len(held):])
        x_test, y_test, x, y = x[np.sort(held)], y[np.sort(held)], x[keep], y[keep]
    else:
        x_test, y_test = to_signed(raw.x_test, raw.pixel_max), raw.y_test
    if size is not None:
        import tensorflow as tf

        def resize(images):
            return np.clip(tf.image.resize(images, (size, size), method="bilinear").numpy(), -1, 1).astype(np.float32)

        x, x_test = resize(x), resize(x_test)
    return GANImages(x, y, x_test, y_test, f"{raw.source}" + (f", resized to {size}x{size}" if size else ""))
