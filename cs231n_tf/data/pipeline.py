"""Splitting, normalising and batching a data set into ``tf.data`` pipelines."""

import dataclasses

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.data import sources
from cs231n_tf.errors import ConfigError, DataError


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Metadata of a loaded data set.

    ``mean``/``std`` are statistics of the training split in unit scale (pixels divided by
    ``pixel_max``); the pipelines feed models ``(x / pixel_max - mean) / std``. With
    ``preprocessing="channel"`` they are per-channel, shape ``(C,)``; with ``"mean_image"`` ``mean`` is
    the per-pixel mean image ``(H, W, C)`` and ``std`` is all ones (the lecture's "subtract the mean
    image", AlexNet-style). Either way the formula broadcasts, so exports need not know which.
    """

    name: str
    image_shape: tuple
    num_classes: int
    class_names: tuple
    num_train: int
    num_validation: int
    num_test: int
    pixel_max: float
    mean: tuple
    std: tuple
    source: str
    preprocessing: str = "channel"

    def to_json(self):
        return dataclasses.asdict(self)


def _split_indices(labels, fraction, rng):
    """Stratified split: ``fraction`` of each class (at least one if the class has 2+) goes right."""
    left, right = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        if fraction > 0 and k == 0 and len(idx) > 1:
            k = 1
        right.append(idx[:k])
        left.append(idx[k:])
    return np.sort(np.concatenate(left)), np.sort(np.concatenate(right))


PREPROCESSING = ("channel", "mean_image", "model")


def _mean_image(x, pixel_max):
    total = np.zeros(x.shape[1:])
    for start in range(0, len(x), 4096):
        total += (x[start:start + 4096].astype(np.float64) / pixel_max).sum(axis=0)
    return total / len(x)


def _channel_stats(x, pixel_max):
    # Accumulate in float64 over chunks so CIFAR-sized uint8 arrays are not copied as floats at once.
    c = x.shape[-1]
    total = np.zeros(c)
    total_sq = np.zeros(c)
    count = 0
    for start in range(0, len(x), 4096):
        chunk = x[start:start + 4096].astype(np.float64) / pixel_max
        total += chunk.sum(axis=(0, 1, 2))
        total_sq += (chunk ** 2).sum(axis=(0, 1, 2))
        count += chunk.shape[0] * chunk.shape[1] * chunk.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    return mean, np.where(std < 1e-6, 1.0, std)  # constant channels: avoid dividing by zero


class DataSplits:
    """Train/validation/test splits of one data set with its metadata.

    Unpacks as ``train, validation, test, info = load(...)``. The ``train`` property is an
    infinitely reshuffling pipeline for quick use; the trainer uses :meth:`train_epoch`, whose order
    depends only on ``(seed, epoch)`` so that a resumed run sees exactly the batches it would have.
    """

    def __init__(self, info, arrays, batch_size, normalize=True):
        self.info = info
        self.arrays = arrays  # dict: x_train, y_train, x_validation, y_validation, x_test, y_test
        self.batch_size = batch_size
        self.normalize = normalize
        self._mean = tf.constant(np.asarray(info.mean, np.float32))
        self._std = tf.constant(np.asarray(info.std, np.float32))

    def __iter__(self):
        return iter((self.train, self.validation, self.test, self.info))

    def to_unit(self, x):
        """Stored pixels -> float32 in [0, 1] (the export's input convention)."""
        return tf.cast(x, tf.float32) / self.info.pixel_max

    def standardize(self, x):
        """Unit-scale images -> the model's input (``(x - mean) / std`` when normalising)."""
        if self.normalize:
            x = (x - self._mean) / self._std
        return x

    def preprocess(self, x):
        """Stored pixels -> the model's input (unit scale, then standardised)."""
        return self.standardize(self.to_unit(x))

    def _pipeline(self, x, y, batch_size, drop_remainder=False, augment=None, augment_seed=0, first_batch=0):
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size, drop_remainder=drop_remainder)
        if augment:
            # Batch i is augmented with the stateless seed (augment_seed, i), i counted from the start
            # of the epoch, so skipping batches on resume does not shift the random draws.
            ds = ds.enumerate(start=first_batch).map(
                lambda i, xy: (self.standardize(augment(self.to_unit(xy[0]), tf.stack([augment_seed, i]))),
                               tf.cast(xy[1], tf.int32)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        else:
            ds = ds.map(lambda xb, yb: (self.preprocess(xb), tf.cast(yb, tf.int32)),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        options = tf.data.Options()
        # Every worker builds the same pipeline; sharding by element keeps the split exact.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(options)

    def steps_per_epoch(self, batch_size=None, drop_remainder=True):
        n, b = self.info.num_train, batch_size or self.batch_size
        return n // b if drop_remainder else -(-n // b)

    def train_epoch(self, epoch, seed, batch_size=None, skip_batches=0, drop_remainder=True, augment=None):
        """Batches of training epoch ``epoch`` in an order fixed by ``(seed, epoch)``.

        ``skip_batches`` starts the epoch part-way (exact resume after a crash). ``augment`` is an
        optional ``fn(unit_images, seed) -> unit_images`` (e.g. :class:`cs231n_tf.data.augment.Augmenter`)
        applied to each batch before standardisation, with a stateless seed fixed by
        ``(seed, epoch, batch index)``; only the training split is ever augmented.
        """
        b = batch_size or self.batch_size
        order = np.random.default_rng([int(seed), int(epoch)]).permutation(self.info.num_train)
        order = order[skip_batches * b:]
        x, y = self.arrays["x_train"][order], self.arrays["y_train"][order]
        augment_seed = np.int64(np.random.default_rng([int(seed), int(epoch), 1]).integers(2 ** 62))
        return self._pipeline(x, y, b, drop_remainder, augment=augment, augment_seed=augment_seed,
                              first_batch=skip_batches).prefetch(tf.data.AUTOTUNE)

    @property
    def train(self):
        ds = tf.data.Dataset.from_tensor_slices((self.arrays["x_train"], self.arrays["y_train"]))
        ds = ds.cache().shuffle(self.info.num_train, reshuffle_each_iteration=True).repeat()
        ds = ds.batch(self.batch_size, drop_remainder=True)
        ds = ds.map(lambda xb, yb: (self.preprocess(xb), tf.cast(yb, tf.int32)), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def split(self, name, batch_size=None):
        """Batched, normalised, cached pipeline of ``validation`` or ``test`` (or ``train``, in order)."""
        if name not in ("train", "validation", "test"):
            raise ConfigError(f"split must be 'train', 'validation' or 'test', got {name!r}")
        x, y = self.arrays[f"x_{name}"], self.arrays[f"y_{name}"]
        return self._pipeline(x, y, batch_size or self.batch_size).cache().prefetch(tf.data.AUTOTUNE)

    @property
    def validation(self):
        return self.split("validation")

    @property
    def test(self):
        return self.split("test")

    def representative_images(self, count=200, seed=0):
        """Up to ``count`` training images in unit scale, for int8 calibration."""
        rng = np.random.default_rng(seed)
        idx = rng.choice(self.info.num_train, size=min(count, self.info.num_train), replace=False)
        return self.to_unit(self.arrays["x_train"][np.sort(idx)]).numpy()


def load(name="digits", *, batch_size=64, validation_fraction=0.1, test_fraction=0.2, split_seed=0,
         data_dir=None, download=False, normalize=True, image_size=None, preprocessing="channel",
         input_stats=None):
    """Load data set ``name`` as train/validation/test ``tf.data`` pipelines plus metadata.

    Args:
      name: ``digits`` (embedded), ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100`` (tfds),
        ``folder:PATH`` or ``npz:PATH``.
      batch_size: batch size of the pipelines.
      validation_fraction: share of the training split held out (stratified) for validation.
      test_fraction: share held out for testing by sources without a test split of their own
        (``digits``, ``folder:``).
      split_seed: seed of the held-out splits; the same seed always gives the same splits.
      data_dir: where tfds data sets live (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
      download: let tfds download a missing data set (needs network; checked first).
      normalize: standardise with the training split's statistics (see ``preprocessing``).
      preprocessing: ``channel`` (default): subtract the per-channel mean, divide by the
        per-channel std; ``mean_image``: subtract the per-pixel mean image only; ``model``: the
        fixed ``input_stats`` (a pretrained model's normalisation).
      input_stats: with ``preprocessing="model"``, per-channel ``(mean, std)`` of unit-scale pixels.
      image_size: ``(H, W)`` to resize ``folder:`` images to.

    Returns:
      :class:`DataSplits` (unpacks as ``train, validation, test, info``).
    """
    batch_size = validation.positive_int("batch_size", batch_size)
    if preprocessing not in PREPROCESSING:
        raise ConfigError(f"preprocessing must be one of {', '.join(PREPROCESSING)}, got {preprocessing!r}")
    for fname, frac in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= float(frac) < 1.0:
            raise ConfigError(f"{fname} must be in [0, 1), got {frac!r}")
    if preprocessing == "model":
        try:
            stats = np.asarray(input_stats, np.float64)
        except (TypeError, ValueError):
            stats = np.zeros(0)
        if stats.ndim != 2 or stats.shape[0] != 2 or not np.all(stats[1] > 0):
            raise ConfigError(f"preprocessing='model' needs input_stats=(mean, std) per channel, got {input_stats!r}")
    raw = sources.load_raw(name, data_dir=data_dir, download=download, image_size=image_size)
    rng = np.random.default_rng(split_seed)
    x_train, y_train, x_test, y_test = raw.x_train, raw.y_train, raw.x_test, raw.y_test
    for split, x in (("training", x_train), ("test", x_test)):
        if x is not None and len(x) == 0:  # every source, before the splits divide it further
            raise DataError(f"data set {name!r} has an empty {split} split")
    if x_test is None:
        keep, held = _split_indices(y_train, test_fraction, rng)
        if len(held) == 0:
            raise ConfigError(f"data set {name!r} has no test split; test_fraction must be > 0")
        x_train, y_train, x_test, y_test = x_train[keep], y_train[keep], x_train[held], y_train[held]
    keep, held = _split_indices(y_train, validation_fraction, rng)
    x_val, y_val = x_train[held], y_train[held]
    x_train, y_train = x_train[keep], y_train[keep]
    if len(x_train) == 0:
        raise DataError(f"data set {name!r} has no training examples left after the splits")
    num_classes = len(raw.class_names)
    top = int(max(y_train.max(initial=0), y_test.max(initial=0)))
    if top >= num_classes:
        raise DataError(f"data set {name!r} has label {top} but only {num_classes} class names")
    if preprocessing == "model":
        if stats.shape[1] != x_train.shape[-1]:
            raise DataError(f"the model's normalisation is for {stats.shape[1]} channels but {name!r} has "
                            f"{x_train.shape[-1]}")
        mean, std = stats
    elif preprocessing == "mean_image":
        mean = _mean_image(x_train, raw.pixel_max).tolist()
        std = np.ones(x_train.shape[-1])
    else:
        mean, std = _channel_stats(x_train, raw.pixel_max)
    info = DatasetInfo(
        name=name, image_shape=tuple(int(d) for d in x_train.shape[1:]), num_classes=num_classes,
        class_names=tuple(raw.class_names), num_train=len(x_train), num_validation=len(x_val),
        num_test=len(x_test), pixel_max=float(raw.pixel_max), mean=_as_tuple(mean),
        std=_as_tuple(std), source=raw.source, preprocessing=preprocessing,
    )
    arrays = dict(x_train=x_train, y_train=y_train, x_validation=x_val, y_validation=y_val,
                  x_test=x_test, y_test=y_test)
    return DataSplits(info, arrays, int(batch_size), normalize=normalize)


def _as_tuple(values):
    """Nested lists/arrays -> nested tuples of floats (hashable, JSON-friendly)."""
    if np.ndim(values) == 0:
        return float(values)
    return tuple(_as_tuple(v) for v in values)


def list_datasets(data_dir=None):
    """``(name, kind, status)`` for the named data sets; status says whether it can load offline."""
    rows = [("digits", "embedded (scikit-learn)", "available")]
    for name in sources.TFDS_NAMES:
        try:
            present = sources.tfds_is_present(name, data_dir)
        except Exception:  # a broken tfds folder must not break the listing
            present = False
        rows.append((name, "tfds", "present" if present else
                     f"absent from {data_dir or sources.default_tfds_dir()} (needs a download)"))
    rows.append(("folder:PATH", "user", "one sub-folder per class of image files"))
    rows.append(("npz:PATH", "user", "arrays x_train, y_train, x_test, y_test"))
    return rows
