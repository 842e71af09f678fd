"""Real photographs that ship inside installed packages, for demos, tests and small data sets.

Only files inside the wheels are used -- scikit-image's ``skimage/data`` directory (some of its
other images are fetched at run time and are never touched here) and scikit-learn's
``sklearn/datasets/images`` -- so nothing is downloaded. :func:`write_crop_folder` turns them into
a small real-image classification set in the ``folder:`` format: each photo is a class, its
examples random crops of it.
"""

import os

import numpy as np

from cs231n_tf.errors import ConfigError, DataError

# name -> (package, file inside its data directory, what it shows)
PHOTOS = {
    "chelsea": ("skimage", "chelsea.png", "Chelsea the cat (a tabby)"),
    "coffee": ("skimage", "coffee.png", "a cup of espresso on a saucer"),
    "astronaut": ("skimage", "astronaut.png", "astronaut Eileen Collins"),
    "rocket": ("skimage", "rocket.jpg", "a rocket on its launch pad"),
    "motorcycle_left": ("skimage", "motorcycle_left.png", "a motorcycle (left stereo view)"),
    "china": ("sklearn", "china.jpg", "a Chinese temple"),
    "flower": ("sklearn", "flower.jpg", "a flower"),
}


def _data_dir(package):
    if package == "skimage":
        try:
            import skimage.data
        except ImportError:
            raise DataError("the scikit-image photos need scikit-image (pip install scikit-image, a dependency "
                            "of cs231n_tf)") from None
        return os.path.dirname(skimage.data.__file__)
    import sklearn.datasets

    return os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")


def photo_names():
    """Names accepted by :func:`photo_path` and :func:`load_photo`."""
    return tuple(PHOTOS)


def photo_path(name):
    """The file of the shipped photo ``name``."""
    if name not in PHOTOS:
        raise ConfigError(f"unknown photo {name!r}; shipped photos: {', '.join(PHOTOS)}")
    package, filename, _ = PHOTOS[name]
    path = os.path.join(_data_dir(package), filename)
    if not os.path.isfile(path):
        raise DataError(f"photo {name!r} should be at {path} but is not; reinstall {package}")
    return path


def load_photo(name):
    """The photo ``name`` as uint8 RGB ``(H, W, 3)``."""
    from cs231n_tf.data.sources import read_image

    return read_image(photo_path(name), channels=3)


def write_crop_folder(out_dir, names=None, per_class=20, size=96, min_scale=0.25, max_scale=0.5, seed=0):
    """Write a ``folder:`` data set: one class per photo, ``per_class`` random square crops each.

    Each crop's side is a uniform ``[min_scale, max_scale]`` fraction of the photo's shorter side,
    at a uniform position, resized to ``size x size`` and saved as PNG. Returns ``out_dir``.
    """
    import tensorflow as tf

    names = tuple(PHOTOS) if names is None else tuple(names)
    if len(names) < 2:
        raise ConfigError(f"a classification folder needs at least 2 photos, got {names!r}")
    if not 0 < min_scale <= max_scale <= 1:
        raise ConfigError(f"need 0 < min_scale <= max_scale <= 1, got {min_scale!r}, {max_scale!r}")
    rng = np.random.default_rng(seed)
    for name in names:
        photo = load_photo(name)
        h, w = photo.shape[:2]
        folder = os.path.join(out_dir, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(int(per_class)):
            side = int(rng.uniform(min_scale, max_scale) * min(h, w))
            top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            crop = tf.image.resize(photo[top:top + side, left:left + side], (size, size), antialias=True)
            png = tf.io.encode_png(tf.cast(tf.clip_by_value(tf.round(crop), 0, 255), tf.uint8))
            tf.io.write_file(os.path.join(folder, f"{i:04d}.png"), png)
    return out_dir
