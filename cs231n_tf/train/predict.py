"""Classify image files with a trained run or a pretrained zoo model: the top-k classes of each.

``predict_images(["cat.jpg", "photo:coffee"], model="efficientnet_lite0")`` runs the packaged
ImageNet weights on the evaluation crop they were scored with
(:func:`cs231n_tf.models.imagenet.center_crop_resize`); ``run_dir=...`` runs any classification
run, resizing each image to the run's input size and normalising it as its training data was.
``photo:NAME`` names a photo shipped inside an installed package (:mod:`cs231n_tf.data.photos`).
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, ShapeError

PHOTO_PREFIX = "photo:"


def read_image_spec(spec, channels=None):
    """The uint8 ``(H, W, C)`` pixels of an image file path or of ``photo:NAME`` (a shipped photo)."""
    from cs231n_tf.data import photos
    from cs231n_tf.data.sources import read_image

    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"an image must be a file path or photo:NAME, got {spec!r}")
    path = photos.photo_path(spec[len(PHOTO_PREFIX):]) if spec.startswith(PHOTO_PREFIX) else spec
    return read_image(path, channels=channels)


def _pretrained(name, weights, image_size):
    from cs231n_tf.models import build, imagenet
    from cs231n_tf.models.registry import pretrained_spec

    spec = pretrained_spec(name, weights)
    size = spec.canonical_input_shape[0] if image_size is None else validation.positive_int("image_size", image_size)
    model = build(name, input_shape=(size, size, spec.canonical_input_shape[-1]), weights=weights)
    mean, std = (np.asarray(s, np.float32) for s in spec.input_stats)

    def prepare(image):
        return (imagenet.center_crop_resize(image, size).numpy() / 255.0 - mean) / std

    names = imagenet.class_names() if model.output_shape[-1] == imagenet.NUM_CLASSES else None
    return model, prepare, spec.canonical_input_shape[-1], names, {"model": name, "weights": weights,
                                                                   "input_size": [size, size]}


def _from_run(run_dir, checkpoint):
    from cs231n_tf.train.evaluate import load_run

    run = load_run(run_dir, checkpoint, float32=True)
    info = run.run_config["data"]
    shape = tuple(info["image_shape"])
    mean, std = np.asarray(info["mean"], np.float32), np.asarray(info["std"], np.float32)

    def prepare(image):
        x = tf.image.resize(tf.cast(image, tf.float32), shape[:2]).numpy() if image.shape[:2] != shape[:2] \
            else image.astype(np.float32)
        return (x / 255.0 - mean) / std

    return run.model, prepare, shape[-1], tuple(info["class_names"]), {"run_dir": run.run_dir,
                                                                      "checkpoint": run.checkpoint}


def predict_images(images, *, run_dir=None, model=None, weights="imagenet", k=5, image_size=None, checkpoint=None):
    """The ``k`` most probable classes of each image, with one of ``run_dir`` or ``model``.

    ``images``: file paths (PNG/JPEG/GIF/BMP) or ``photo:NAME``. Returns
    ``{"source": {...}, "predictions": [{"image": spec, "top": [{"index", "name", "probability"}]}]}``.
    Image files are taken as 0..255 pixels (``/ 255`` is the unit scale every run's export uses).
    """
    from cs231n_tf.models.imagenet import top_k

    if (run_dir is None) == (model is None):
        raise ConfigError("give exactly one of run_dir (a trained run) and model (a pretrained model name)")
    if isinstance(images, str) or not images:
        raise ConfigError("images must be a non-empty list of paths or photo:NAME")
    k = validation.positive_int("k", k)
    if run_dir is not None:
        net, prepare, channels, names, source = _from_run(run_dir, checkpoint)
    else:
        net, prepare, channels, names, source = _pretrained(model, weights, image_size)
    batch = np.stack([prepare(read_image_spec(spec, channels)) for spec in images]).astype(np.float32)
    if batch.shape[1:] != tuple(net.input_shape[1:]):
        raise ShapeError(f"prepared images have shape {batch.shape[1:]}, the model takes {tuple(net.input_shape[1:])}")
    logits = np.concatenate([tf.cast(net(batch[i:i + 32], training=False), tf.float32).numpy()
                             for i in range(0, len(batch), 32)])
    rows = top_k(logits, k, names)
    return {"source": source, "predictions": [
        {"image": spec, "top": [{"index": i, "name": n, "probability": p} for i, n, p in row]}
        for spec, row in zip(images, rows)]}
