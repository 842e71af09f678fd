"""Data augmentation (lecture 7, "data augmentation") as seeded, batched ``tf.data`` maps.

Every transform takes a batch ``images`` of shape ``(N, H, W, C)`` in unit scale (pixels in [0, 1],
before standardisation) and a stateless seed (an int tensor of shape ``(2,)``), draws independent
random parameters for each image with ``tf.random.stateless_*`` ops, and returns a batch of the same
shape. Stateless ops make the result a pure function of ``(images, seed)``: the trainer seeds batch
``i`` of epoch ``e`` from ``(config.seed, e, i)``, so a run resumed mid-epoch augments exactly the
batches the uninterrupted run would have.

=================  ==================================================================================
``flip``           horizontal flip with probability 1/2 (Krizhevsky et al. 2012).
``crop[:P]``       zero-pad ``P`` pixels (default 4) on each side, take a random ``H x W`` crop
                   (He et al. 2015, "Deep Residual Learning", CIFAR-10 recipe, section 4.2).
``resized_crop``   a crop of random area fraction in ``[S, 1]`` (default ``S = 0.08``) and aspect ratio
``[:S]``           in ``[3/4, 4/3]``, resized back to ``H x W`` (Szegedy et al. 2015, "Going deeper
                   with convolutions"; the scale augmentation that replaced the ResNet paper's
                   random short-side resize).
``color[:J]``      colour jitter: brightness offset in ``[-J, J]``, contrast and saturation factors in
                   ``[1 - J, 1 + J]`` (default ``J = 0.4``), then clipped to [0, 1].
``pca_lighting``   AlexNet's lighting noise: add ``V @ (alpha * lambda)`` to every pixel, where
``[:SIGMA]``       ``lambda, V`` are the eigenvalues/eigenvectors of the training set's RGB
                   covariance and ``alpha ~ N(0, SIGMA)`` per image (default ``SIGMA = 0.1``).
``noise[:S]``      i.i.d. Gaussian pixel noise of std ``S`` (default 0.1), clipped to [0, 1]: one of the
                   train-time defences against adversarial examples that lecture 16 lists as failing.
=================  ==================================================================================

:func:`tta_predict` is test-time augmentation: the average prediction over the centre and the four
corner crops of the padded image and their mirror images (the "10-crop" evaluation of Krizhevsky
et al. 2012, with crops of the original size taken from a padded image).
"""

import math

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, InputTypeError

AUGMENTATIONS = ("flip", "crop", "resized_crop", "color", "pca_lighting", "noise")
# name -> (default value of the optional ``name:VALUE``, its type, test of a valid value, the rule).
_PARAMS = {
    "flip": None,
    "crop": (4, int, lambda v: v >= 0, "an int >= 0 (padding in pixels)"),
    "resized_crop": (0.08, float, lambda v: 0.0 < v <= 1.0, "a number in (0, 1] (smallest area fraction)"),
    "color": (0.4, float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1] (jitter strength)"),
    "pca_lighting": (0.1, float, lambda v: v >= 0.0, "a number >= 0 (std of alpha)"),
    "noise": (0.1, float, lambda v: v >= 0.0, "a number >= 0 (std of the pixel noise)"),
}


def parse_augment(spec):
    """``"flip,crop:2"`` or ``["flip", "crop:2"]`` -> ``[("flip", None), ("crop", 2)]``.

    Raises ConfigError naming the bad entry and the accepted names.
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = [s for s in spec.split(",") if s.strip()]
    if not isinstance(spec, (list, tuple)):
        raise ConfigError(f"augment must be a list of names or a comma-separated string, got {spec!r}")
    parsed = []
    for entry in spec:
        if not isinstance(entry, str):
            raise ConfigError(f"augment entries must be strings, got {entry!r}")
        name, sep, raw = entry.strip().partition(":")
        if name not in _PARAMS:
            raise ConfigError(f"unknown augmentation {name!r}; accepted: {', '.join(AUGMENTATIONS)} "
                              "(with an optional :VALUE, e.g. crop:4)")
        if any(name == seen for seen, _ in parsed):
            raise ConfigError(f"augmentation {name!r} is listed twice in {spec!r}")
        if _PARAMS[name] is None:
            if sep:
                raise ConfigError(f"augmentation {name!r} takes no value, got {entry!r}")
            parsed.append((name, None))
            continue
        value, kind, valid, rule = _PARAMS[name]
        if sep:
            try:
                value = kind(raw)
            except ValueError:
                value = None
            if value is None or not math.isfinite(value) or not valid(value):
                raise ConfigError(f"augmentation {entry!r}: the value must be {rule}")
        parsed.append((name, value))
    return parsed


def _uniform(seed, n, low, high):
    return tf.random.stateless_uniform([n], seed, minval=low, maxval=high)


def horizontal_flip(images, seed):
    """Mirror each image left-right with probability 1/2. ``(N, H, W, C) -> (N, H, W, C)``."""
    images = tf.convert_to_tensor(images)
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def _crop_at(padded, oy, ox, height, width):
    """Per-image crops ``padded[n, oy[n]:oy[n]+height, ox[n]:ox[n]+width]`` (exact gathers)."""
    rows = oy[:, None] + tf.range(height)[None, :]
    cols = ox[:, None] + tf.range(width)[None, :]
    x = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def pad_and_crop(images, seed, padding=4, pad_value=0.0):
    """Pad ``padding`` pixels of ``pad_value`` on each side, then crop each image at a random offset.

    ``(N, H, W, C) -> (N, H, W, C)``; every output pixel is a pixel of the padded image, offsets
    uniform in ``[0, 2 * padding]`` (He et al. 2015, section 4.2).
    """
    images = tf.convert_to_tensor(images)
    if padding == 0:
        return images
    shape = tf.shape(images)
    n, h, w = shape[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]],
                    constant_values=tf.cast(pad_value, images.dtype))
    offsets = tf.random.stateless_uniform([n, 2], seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32)
    return _crop_at(padded, offsets[:, 0], offsets[:, 1], h, w)


def random_resized_crop(images, seed, min_area=0.08, ratio=(3 / 4, 4 / 3)):
    """Crop a random box (area fraction in ``[min_area, 1]``, aspect ratio in ``ratio``) and resize it
    back to ``(H, W)`` bilinearly. ``(N, H, W, C) -> (N, H, W, C)``.

    Box sides are fractions of the image side (``w = sqrt(area * r)``, ``h = sqrt(area / r)``), clipped
    to 1, and the box lies inside the image; the crop and resize is one ``tf.image.crop_and_resize``.
    """
    images = tf.convert_to_tensor(images)
    n = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 4)
    area = _uniform(seeds[0], n, min_area, 1.0)
    log_r = _uniform(seeds[1], n, math.log(ratio[0]), math.log(ratio[1]))
    r = tf.exp(log_r)
    h = tf.minimum(tf.sqrt(area / r), 1.0)
    w = tf.minimum(tf.sqrt(area * r), 1.0)
    y0 = _uniform(seeds[2], n, 0.0, 1.0) * (1.0 - h)
    x0 = _uniform(seeds[3], n, 0.0, 1.0) * (1.0 - w)
    boxes = tf.stack([y0, x0, y0 + h, x0 + w], axis=1)
    out = tf.image.crop_and_resize(tf.cast(images, tf.float32), boxes, tf.range(n), images.shape[1:3])
    return tf.cast(out, images.dtype)


def color_jitter(images, seed, brightness=0.4, contrast=0.4, saturation=0.4):
    """Per-image brightness offset, contrast and saturation factors, then clip to [0, 1].

    Brightness adds ``b ~ U(-brightness, brightness)`` (as ``tf.image.adjust_brightness``); contrast
    scales the distance to each image's per-channel mean by ``c ~ U(1 - contrast, 1 + contrast)``
    (as ``tf.image.adjust_contrast``); saturation blends with the image's grey version by
    ``s ~ U(1 - saturation, 1 + saturation)`` (only for 3-channel images). Keras's and ``tf.image``'s
    batched versions draw one factor for the whole batch, hence the per-image code here.
    ``(N, H, W, C) -> (N, H, W, C)``.
    """
    images = tf.convert_to_tensor(images)
    n = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    b = _uniform(seeds[0], n, -brightness, brightness)[:, None, None, None]
    c = _uniform(seeds[1], n, 1.0 - contrast, 1.0 + contrast)[:, None, None, None]
    x = images + b
    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    x = (x - mean) * c + mean
    if images.shape[-1] == 3:
        s = _uniform(seeds[2], n, 1.0 - saturation, 1.0 + saturation)[:, None, None, None]
        grey = tf.image.rgb_to_grayscale(x)
        x = grey + (x - grey) * s
    return tf.clip_by_value(x, 0.0, 1.0)


def pca_basis(images, pixel_max=1.0, chunk=4096):
    """Eigenvalues ``(C,)`` and eigenvectors ``(C, C)`` (columns) of the pixel covariance of
    ``images / pixel_max``.

    ``images``: array ``(N, H, W, C)``; ``images / pixel_max`` must be in the scale the lighting noise
    is added in (unit scale for the trainer). Accumulated in float64 over chunks, so CIFAR-sized
    uint8 arrays are never copied as floats at once.
    """
    images = np.asarray(images)
    c = images.shape[-1]
    total, outer, count = np.zeros(c), np.zeros((c, c)), 0
    for start in range(0, len(images), chunk):
        px = images[start:start + chunk].reshape(-1, c).astype(np.float64) / pixel_max
        total += px.sum(axis=0)
        outer += px.T @ px
        count += len(px)
    mean = total / count
    cov = outer / count - np.outer(mean, mean)
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    return np.maximum(eigenvalues, 0.0), eigenvectors


def pca_lighting(images, seed, eigenvalues, eigenvectors, std=0.1):
    """AlexNet lighting noise (Krizhevsky et al. 2012, section 4.1): add ``V @ (alpha * lambda)``.

    ``alpha ~ N(0, std)`` has one value per image and eigenvector, shared by all its pixels, so the
    noise changes the intensity and colour of the illumination, not the object.
    ``(N, H, W, C) -> (N, H, W, C)``.
    """
    images = tf.convert_to_tensor(images)
    c = images.shape[-1]
    values = tf.constant(np.asarray(eigenvalues), images.dtype)
    vectors = tf.constant(np.asarray(eigenvectors), images.dtype)
    alpha = tf.random.stateless_normal([tf.shape(images)[0], c], seed, stddev=std, dtype=images.dtype)
    shift = tf.linalg.matmul(alpha * values, vectors, transpose_b=True)  # (N, C): V @ (alpha*lambda)
    return images + shift[:, None, None, :]


def gaussian_noise(images, seed, std=0.1):
    """Add ``N(0, std^2)`` noise to every pixel independently, then clip to [0, 1]. ``(N, H, W, C) -> same``."""
    images = tf.convert_to_tensor(images)
    noise = tf.random.stateless_normal(tf.shape(images), seed, stddev=std, dtype=images.dtype)
    return tf.clip_by_value(images + noise, 0.0, 1.0)


class Augmenter:
    """The configured chain of augmentations, callable as ``augmenter(images, seed)``.

    Args:
      spec: names as accepted by :func:`parse_augment` (``"flip,crop"``, ``["crop:1"]``).
      train_images: training images ``(N, H, W, C)``, needed for ``pca_lighting``; divided by
        ``pixel_max`` they must be in unit scale.
    """

    def __init__(self, spec, train_images=None, pixel_max=1.0):
        self.steps = parse_augment(spec)
        self._basis = None
        if any(name == "pca_lighting" for name, _ in self.steps):
            if train_images is None:
                raise InputTypeError("pca_lighting needs train_images to compute the RGB covariance")
            self._basis = pca_basis(train_images, pixel_max)

    def __bool__(self):
        return bool(self.steps)

    def __call__(self, images, seed):
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), max(len(self.steps), 1))
        for (name, value), s in zip(self.steps, tf.unstack(seeds)):
            if name == "flip":
                images = horizontal_flip(images, s)
            elif name == "crop":
                images = pad_and_crop(images, s, padding=value)
            elif name == "resized_crop":
                images = random_resized_crop(images, s, min_area=value)
            elif name == "color":
                images = color_jitter(images, s, value, value, value)
            elif name == "noise":
                images = gaussian_noise(images, s, value)
            else:
                images = pca_lighting(images, s, *self._basis, std=value)
        return images


def tta_views(images, padding=4, flips=True, pad_value=0.0):
    """Test-time views of ``images (N, H, W, C)``: centre and 4 corner crops of the image padded by
    ``padding`` (the centre crop is the image itself), and with ``flips`` their mirror images.

    Returns a list of 5 (or 10) tensors of shape ``(N, H, W, C)``.
    """
    images = tf.convert_to_tensor(images)
    h, w = images.shape[1], images.shape[2]
    p = int(padding)
    padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=tf.cast(pad_value, images.dtype))
    views = [padded[:, oy:oy + h, ox:ox + w, :]
             for oy, ox in ((p, p), (0, 0), (0, 2 * p), (2 * p, 0), (2 * p, 2 * p))]
    if flips:
        views += [tf.reverse(v, axis=[2]) for v in views]
    return views


def tta_predict(model, images, padding=4, flips=True, average="probabilities", preprocess=None,
                pad_value=0.0, batch_size=256):
    """Average ``model``'s predictions over the :func:`tta_views` of ``images``.

    Args:
      model: a Keras model returning logits.
      images: ``(N, H, W, C)`` in the space the crops are taken in (unit scale if ``preprocess``
        maps unit scale to the model's input, e.g. ``DataSplits.preprocess`` on ``to_unit`` data).
      average: ``"probabilities"`` (mean of softmax outputs) or ``"logits"`` (mean of logits).
      preprocess: optional function applied to each view before the model.

    Returns:
      NumPy ``(N, num_classes)`` float32: averaged probabilities or logits.
    """
    if average not in ("probabilities", "logits"):
        raise ConfigError(f"average must be 'probabilities' or 'logits', got {average!r}")
    images = np.asarray(images, np.float32)
    predict = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), reduce_retracing=True)
    outputs = []
    for start in range(0, len(images), batch_size):
        total = 0.0
        views = tta_views(images[start:start + batch_size], padding, flips, pad_value)
        for view in views:
            out = predict(preprocess(view) if preprocess is not None else view)
            total += tf.nn.softmax(out) if average == "probabilities" else out
        outputs.append((total / len(views)).numpy())
    return np.concatenate(outputs)
