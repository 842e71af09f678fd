"""Segmentation data: the embedded shapes scenes and the ``masks:IMAGE_DIR:MASK_DIR`` format.

``masks:IMAGE_DIR:MASK_DIR`` is the format of PASCAL VOC's ``JPEGImages`` + ``SegmentationClass``:
an image folder and a folder of PNG label maps, one integer class per pixel, ``255`` = ignore
(void). A mask belongs to the image with the same file stem (``2007_000032.jpg`` ->
``2007_000032.png``). The class count is ``max label + 1`` over all masks unless a class-names
file (one name per line, line ``k`` names class ``k``) is given; then every label must be a
class of that file or 255. Masks are read with Pillow, which gives the palette *indices* of VOC's
palette PNGs (TensorFlow's decoder would expand them to RGB colours).
"""

import dataclasses
import os

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, DataError
from cs231n_tf.segmentation.losses import IGNORE_LABEL

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclasses.dataclass
class SegmentationData:
    """``images (N, H, W, 3) uint8``, ``masks (N, H, W) uint8`` (255 = ignore), ``class_names`` (K,)."""

    images: np.ndarray
    masks: np.ndarray
    class_names: tuple
    source: str

    def __len__(self):
        return len(self.images)

    @property
    def num_classes(self):
        return len(self.class_names)

    def subset(self, index):
        return SegmentationData(self.images[index], self.masks[index], self.class_names, self.source)


def parse_dataset(spec):
    """``("shapes", None)`` or ``("masks", (image_dir, mask_dir))`` for a ``dataset`` spec."""
    if spec == "shapes":
        return "shapes", None
    if isinstance(spec, str) and spec.startswith("masks:"):
        parts = spec[len("masks:"):].split(":")
        if len(parts) == 2 and all(parts):
            return "masks", tuple(parts)
    raise ConfigError(f"dataset must be 'shapes' (embedded) or 'masks:IMAGE_DIR:MASK_DIR', got {spec!r}")


def read_class_names(path):
    """The class names of a file with one name per line (blank lines at the end ignored)."""
    if not os.path.isfile(path):
        raise DataError(f"class-names file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f.read().rstrip("\n").split("\n")]
    if len(names) < 2 or any(not n for n in names):
        raise DataError(f"class-names file {path!r} must name at least 2 classes, one per line with no blank "
                        f"lines, got {names!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"class-names file {path!r} names {', '.join(duplicates)} more than once")
    return tuple(names)


def read_mask(path):
    """A PNG label map as ``(H, W) uint8`` class indices (grayscale or palette PNG)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P"):
                raise DataError(f"mask {path!r} must be an 8-bit grayscale or palette PNG (one class index per "
                                f"pixel), got mode {img.mode!r}")
            return np.array(img, np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot read mask {path!r}: {exc}") from None


def _stems(directory, extensions, what):
    if not os.path.isdir(directory):
        raise DataError(f"{what} folder {directory!r} does not exist")
    found = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in extensions and not name.startswith("."):
            if stem in found:
                raise DataError(f"{what} folder {directory!r} has two files with the stem {stem!r}")
            found[stem] = os.path.join(directory, name)
    if not found:
        raise DataError(f"{what} folder {directory!r} has no {'/'.join(extensions)} files")
    return found


def load_masks(image_dir, mask_dir, class_names=None, image_size=None):
    """Images and label maps of ``masks:IMAGE_DIR:MASK_DIR`` (module docstring) as :class:`SegmentationData`.

    ``class_names``: a tuple, or ``None`` to infer ``max label + 1`` classes named ``class_0``...
    ``image_size``: resize every pair to ``image_size x image_size`` (images bilinear, masks nearest
    neighbour, so labels stay labels); ``None`` requires all images to have one size. Masks without
    an image are not used.
    """
    import tensorflow as tf

    from cs231n_tf.data.sources import read_image

    images = _stems(image_dir, IMAGE_EXTENSIONS, "image")
    masks = _stems(mask_dir, (".png",), "mask")
    missing = sorted(set(images) - set(masks))
    if missing:
        shown = ", ".join(os.path.basename(images[s]) for s in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"{len(missing)} image(s) in {image_dir!r} have no mask (<stem>.png) in {mask_dir!r}: {shown}")
    xs, ys = [], []
    for stem in sorted(images):
        image = read_image(images[stem], channels=3)
        mask = read_mask(masks[stem])
        if mask.shape != image.shape[:2]:
            raise DataError(f"mask {masks[stem]!r} is {mask.shape[1]}x{mask.shape[0]} but its image "
                            f"{images[stem]!r} is {image.shape[1]}x{image.shape[0]} (width x height)")
        if image_size is not None:
            image = tf.cast(tf.round(tf.image.resize(image, (image_size, image_size))), tf.uint8).numpy()
            mask = tf.image.resize(mask[..., None], (image_size, image_size), method="nearest")[..., 0].numpy()
        elif xs and image.shape != xs[0].shape:
            raise DataError(f"images differ in size ({images[stem]!r} is {image.shape[1]}x{image.shape[0]}, the "
                            f"first {xs[0].shape[1]}x{xs[0].shape[0]}); give an image size to resize them")
        xs.append(image)
        ys.append(mask)
    masks_array = np.stack(ys)
    labels = np.unique(masks_array)
    labels = labels[labels != IGNORE_LABEL]
    if class_names is None:
        count = int(labels.max()) + 1 if len(labels) else 0
        if count < 2:
            raise DataError(f"the masks in {mask_dir!r} have fewer than 2 classes (labels {labels.tolist()}); "
                            f"give class names to fix the class count")
        class_names = tuple(f"class_{k}" for k in range(count))
    else:
        outside = labels[labels >= len(class_names)]
        if len(outside):
            raise DataError(f"the masks in {mask_dir!r} have label(s) {outside.tolist()} outside the "
                            f"{len(class_names)} classes 0..{len(class_names) - 1} of the class names "
                            f"(and {IGNORE_LABEL} = ignore)")
    return SegmentationData(np.stack(xs), masks_array, tuple(class_names), f"masks:{image_dir}:{mask_dir}")


def shapes_data(num_images, image_size, seed):
    """The embedded scenes (:func:`cs231n_tf.data.shapes.shape_scenes`) as :class:`SegmentationData`."""
    from cs231n_tf.data.shapes import shape_scenes

    scenes = shape_scenes(num_images, image_size=image_size, seed=seed)
    return SegmentationData(scenes.images, scenes.masks, scenes.class_names, "shapes")


def load_dataset(spec, class_names_file=None, image_size=None, num_images=256, seed=0):
    """All of data set ``spec`` (``shapes``: ``num_images`` scenes of ``seed``), e.g. a held-out set."""
    kind, dirs = parse_dataset(spec)
    names = read_class_names(class_names_file) if class_names_file else None
    if kind == "shapes":
        data = shapes_data(num_images, image_size or 64, seed)
        if names is not None and len(names) != data.num_classes:
            raise DataError(f"the shapes data set has {data.num_classes} classes {', '.join(data.class_names)}; "
                            f"the class-names file names {len(names)}")
        return data
    return load_masks(*dirs, class_names=names, image_size=image_size)


def split_data(data, validation_fraction, test_fraction, seed):
    """``(train, validation, test)``: a seeded random split of ``data`` by the two fractions."""
    validation.positive_number("validation_fraction", validation_fraction, allow_zero=True)
    validation.positive_number("test_fraction", test_fraction, allow_zero=True)
    n = len(data)
    n_val, n_test = int(round(n * validation_fraction)), int(round(n * test_fraction))
    if n - n_val - n_test < 1 or validation_fraction + test_fraction >= 1:
        raise DataError(f"{data.source} has {n} image(s): too few for validation_fraction {validation_fraction} "
                        f"and test_fraction {test_fraction} plus at least one training image")
    order = np.random.default_rng(seed).permutation(n)
    return (data.subset(order[n_val + n_test:]), data.subset(order[:n_val]),
            data.subset(order[n_val:n_val + n_test]))
