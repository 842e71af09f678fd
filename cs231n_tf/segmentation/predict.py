"""Predicted label maps of image files, drawn as a coloured mask blended over each image.

Colours are PASCAL VOC's colour map (class ``k``'s RGB from the bits of ``k``, so class 0 is
black and neighbouring ids get distinct colours); an image is resized to the run's input size for
the network and the label map is resized back with nearest neighbour, so the overlay has the
original image's size.
"""

import os

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError
from cs231n_tf.fileio import atomic_write_bytes, confined_path


def voc_colormap(num_classes):
    """``(num_classes, 3) uint8``: PASCAL VOC's palette (bit ``i`` of ``k``'s three lowest bit groups
    goes to bit ``7 - i`` of R, G, B)."""
    colours = np.zeros((num_classes, 3), np.uint8)
    for k in range(num_classes):
        c, r, g, b = k, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours[k] = (r, g, b)
    return colours


def overlay(image, labels, num_classes, alpha=0.5):
    """``image (H, W, 3) uint8`` with the colours of ``labels (H, W)`` blended in at ``alpha``
    (background, class 0, left as it is)."""
    colours = voc_colormap(num_classes)[labels].astype(np.float32)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
    return np.where((labels > 0)[..., None], np.round(blended), image).astype(np.uint8)


def predict_files(run_dir, paths, out_dir, alpha=0.5, checkpoint=None):
    """Segment each image file in ``paths`` with a run; writes ``out_dir/<stem>.png`` (the overlay)
    and ``out_dir/<stem>_labels.png`` (the label map, one class index per pixel). Returns
    ``[{"image", "overlay", "labels", "class_pixels": {name: count}}]``."""
    import tensorflow as tf

    from cs231n_tf.data.sources import read_image
    from cs231n_tf.segmentation.task import load_model, predict_labels

    if not paths:
        raise ConfigError("predict needs at least one image path")
    alpha = validation.positive_number("alpha", alpha)
    if alpha > 1:
        raise ConfigError(f"alpha must be in (0, 1], got {alpha!r}")
    images = [read_image(p, channels=3) for p in paths]  # every file is checked before any work
    model, config, names = load_model(run_dir, checkpoint)
    size = config.image_size
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"the images must have distinct file stems (outputs are named by them), got {stems}")
    results = []
    for path, stem, image in zip(paths, stems, images):
        net_in = tf.image.resize(image.astype(np.float32) / 255.0, (size, size)).numpy()[None]
        labels = predict_labels(model, net_in)[0]
        labels = tf.image.resize(labels[..., None], image.shape[:2], method="nearest")[..., 0].numpy()
        drawn = overlay(image, labels, len(names), alpha)
        target = confined_path(out_dir, f"{stem}.png")
        label_target = confined_path(out_dir, f"{stem}_labels.png")
        atomic_write_bytes(target, tf.io.encode_png(drawn).numpy())
        atomic_write_bytes(label_target, tf.io.encode_png(labels.astype(np.uint8)[..., None]).numpy())
        counts = np.bincount(labels.ravel(), minlength=len(names))
        results.append({"image": os.path.abspath(path), "overlay": target, "labels": label_target,
                        "class_pixels": {n: int(c) for n, c in zip(names, counts)}})
    return results
