"""Where image-classification data comes from: each source returns NumPy arrays.

A source yields ``RawData``: images as ``(N, H, W, C)`` arrays in their stored dtype (uint8 for
most sets), integer labels, class names and ``pixel_max`` (the value that maps to 1.0). Keeping
images in their stored dtype (uint8 rather than float32) keeps CIFAR-sized sets at a quarter of
the memory; the pipeline converts per batch.

Sources:
- ``digits``: scikit-learn's real 8x8 handwritten digits (1,797 images), shipped inside
  scikit-learn, so it works with no network. The package's embedded default.
- ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``: TensorFlow Datasets. They are read from
  ``data_dir`` (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``); nothing is downloaded unless
  ``download=True``, which first checks within seconds that the network is reachable.
- ``folder:PATH``: one sub-folder per class holding image files (PNG, JPEG, BMP, GIF).
- ``npz:PATH``: a NumPy ``.npz`` with ``x_train, y_train, x_test, y_test``.
"""

import contextlib
import dataclasses
import logging
import os
import socket

import numpy as np

from cs231n_tf.errors import ConfigError, DataError

TFDS_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100")
EMBEDDED_NAMES = ("digits",)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclasses.dataclass
class RawData:
    """Arrays of one data set before splitting off validation and normalising."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray  # None when the source has no test split of its own
    y_test: np.ndarray
    class_names: tuple
    pixel_max: float
    source: str


@contextlib.contextmanager
def _quiet_absl():
    """tfds logs an absl WARNING for every absent data set it probes; absence is reported by us."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def default_tfds_dir():
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def load_digits():
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = bunch.images.astype(np.float32)[..., None]  # (1797, 8, 8, 1), values 0..16
    return RawData(images, bunch.target.astype(np.int64), None, None,
                   tuple(str(c) for c in bunch.target_names), 16.0, "scikit-learn load_digits (embedded)")


def _network_reachable(host="storage.googleapis.com", port=443, timeout=3.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tfds_split_arrays(name, split, data_dir):
    import tensorflow_datasets as tfds

    ds = tfds.load(name, split=split, data_dir=data_dir, download=False, as_supervised=True)
    xs, ys = [], []
    # Batched iteration rather than batch_size=-1: it reads in bounded chunks and also works with
    # tfds.testing.mock_data, whose generator datasets have unknown cardinality.
    for x, y in tfds.as_numpy(ds.batch(8192)):
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DataError(f"tfds data set {name!r} split {split!r} in {data_dir} is empty")
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def load_tfds(name, data_dir=None, download=False):
    import tensorflow_datasets as tfds

    data_dir = data_dir or default_tfds_dir()
    remedy = (
        f"Provide it with `cs231n-tf datasets --download {name} --data-dir {data_dir}` on a machine "
        f"with network access, or `tfds build {name} --data_dir {data_dir}`, then copy the folder "
        f"{os.path.join(data_dir, name)} here (or point data_dir or TFDS_DATA_DIR at its parent)."
    )
    with _quiet_absl():
        builder = tfds.builder(name, data_dir=data_dir)
        prepared = builder.is_prepared()
    if download and not prepared:
        if not _network_reachable():
            raise DataError(f"data set {name!r} is not in {data_dir} and cannot be downloaded: "
                            f"no network connection. {remedy}")
        builder.download_and_prepare()
    try:
        with _quiet_absl():
            x_train, y_train = _tfds_split_arrays(name, "train", data_dir)
            x_test, y_test = _tfds_split_arrays(name, "test", data_dir)
    except AssertionError as exc:  # tfds signals missing data with a bare AssertionError
        raise DataError(f"data set {name!r} not found in {data_dir}. {remedy}") from exc
    label = builder.info.features["label"]
    names = tuple(label.names) if getattr(label, "names", None) else tuple(str(i) for i in range(label.num_classes))
    pixel_max = 255.0 if x_train.dtype == np.uint8 else 1.0
    return RawData(x_train, y_train, x_test, y_test, names, pixel_max, f"tfds:{name} ({data_dir})")


def tfds_is_present(name, data_dir=None):
    import tensorflow_datasets as tfds

    with _quiet_absl():
        return tfds.builder(name, data_dir=data_dir or default_tfds_dir()).is_prepared()


def _check_arrays(x, y, what):
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{what}: images must have shape (N, H, W) or (N, H, W, C), got {x.shape}")
    if len(x) == 0:
        raise DataError(f"{what} split is empty; it needs at least one image")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{what}: labels must have shape ({len(x)},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{what}: labels must be integers, got dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise DataError(f"{what}: labels must be >= 0, got {int(y.min())}")
    if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{what}: images must be uint8 or float, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise DataError(f"{what}: images contain NaN or Inf")
    return x, y.astype(np.int64)


def load_npz(path):
    if not os.path.isfile(path):
        raise DataError(f"npz data set {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f.files]
            if missing:
                raise DataError(f"npz data set {path!r} lacks array(s) {', '.join(missing)}; "
                                "it needs x_train, y_train, x_test, y_test")
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"cannot read npz data set {path!r}: {exc}") from exc
    x_train, y_train = _check_arrays(arrays["x_train"], arrays["y_train"], f"{path} train")
    x_test, y_test = _check_arrays(arrays["x_test"], arrays["y_test"], f"{path} test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{path}: train images {x_train.shape[1:]} and test images {x_test.shape[1:]} differ in shape")
    if x_train.dtype != np.uint8:
        # Float images: [0, 1] if they already are, else taken as 0..255 values.
        pixel_max = 1.0 if float(max(x_train.max(initial=0), x_test.max(initial=0))) <= 1.0 else 255.0
        x_train, x_test = x_train.astype(np.float32), x_test.astype(np.float32)
    else:
        pixel_max = 255.0
    num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return RawData(x_train, y_train, x_test, y_test, tuple(str(i) for i in range(num_classes)),
                   pixel_max, f"npz:{path}")


def read_image(path, channels=None):
    """Decode the PNG/JPEG/GIF/BMP file ``path`` to a uint8 ``(H, W, C)`` array (``channels`` forces C)."""
    import tensorflow as tf

    if not os.path.isfile(path):
        raise DataError(f"image file {path!r} does not exist")
    try:
        img = tf.io.decode_image(tf.io.read_file(path), channels=channels or 0, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as exc:
        raise DataError(f"cannot decode image {path!r}: {exc.message.splitlines()[0]}") from None
    return tf.image.convert_image_dtype(img, tf.uint8, saturate=True).numpy()  # 16-bit PNGs scale down


def load_folder(path, image_size=None):
    import tensorflow as tf

    if not os.path.isdir(path):
        raise DataError(f"image folder {path!r} does not exist")
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))
    if len(classes) < 2:
        raise DataError(f"image folder {path!r} needs one sub-folder per class (at least 2), found {len(classes)}")
    images, labels, shape = [], [], None
    for label, cls in enumerate(classes):
        files = sorted(f for f in os.listdir(os.path.join(path, cls)) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise DataError(f"class folder {os.path.join(path, cls)!r} has no image files ({', '.join(IMAGE_EXTENSIONS)})")
        for fname in files:
            fpath = os.path.join(path, cls, fname)
            img = read_image(fpath)
            if shape is None:
                shape = tuple(image_size) + (img.shape[-1],) if image_size else img.shape
            if img.shape[-1] != shape[-1]:
                img = tf.image.grayscale_to_rgb(img).numpy() if img.shape[-1] == 1 else img[..., : shape[-1]]
            if img.shape[:2] != shape[:2]:
                if not image_size:
                    raise DataError(f"image {fpath!r} is {img.shape[0]}x{img.shape[1]} but earlier images are "
                                    f"{shape[0]}x{shape[1]}; pass image_size=(H, W) to resize them all")
                img = tf.cast(tf.round(tf.image.resize(img, shape[:2])), tf.uint8).numpy()
            images.append(img.astype(np.uint8))
            labels.append(label)
    x = np.stack(images)
    y = np.asarray(labels, np.int64)
    return RawData(x, y, None, None, tuple(classes), 255.0, f"folder:{path}")


def load_raw(name, data_dir=None, download=False, image_size=None):
    """Dispatch ``name`` to its source."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"data set name must be a non-empty string, got {name!r}")
    if name == "digits":
        return load_digits()
    if name in TFDS_NAMES:
        return load_tfds(name, data_dir=data_dir, download=download)
    if name.startswith("folder:"):
        return load_folder(name[len("folder:"):], image_size=image_size)
    if name.startswith("npz:"):
        return load_npz(name[len("npz:"):])
    raise ConfigError(f"unknown data set {name!r}; known: {', '.join(EMBEDDED_NAMES + TFDS_NAMES)}, "
                      "folder:PATH, npz:PATH")
