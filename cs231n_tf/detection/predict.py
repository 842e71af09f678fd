"""Detections of image files drawn on the image: a box, the class name and the score per detection.

An image (a path or ``photo:NAME``) is resized to the run's input size for the network; the boxes
are scaled back to the original image, so the drawing and the returned boxes are in its pixels.
Colours follow PASCAL VOC's palette by class (as the segmentation overlays do).
"""

import os

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError
from cs231n_tf.fileio import atomic_write_bytes, confined_path


def draw_detections(image, boxes, classes, scores, class_names, width=2):
    """``image (H, W, 3) uint8`` with each box ``[ymin, xmin, ymax, xmax]`` (pixels) outlined and labelled
    ``"name score"`` above it, with Pillow."""
    from PIL import Image, ImageDraw

    from cs231n_tf.segmentation.predict import voc_colormap

    colours = voc_colormap(len(class_names) + 1)[1:]
    canvas = Image.fromarray(np.asarray(image, np.uint8))
    draw = ImageDraw.Draw(canvas)
    for (ymin, xmin, ymax, xmax), cls, score in zip(boxes, classes, scores):
        colour = tuple(int(v) for v in colours[int(cls)])
        draw.rectangle([float(xmin), float(ymin), float(xmax), float(ymax)], outline=colour, width=width)
        label = f"{class_names[int(cls)]} {score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), label)
        y = max(float(ymin) - (bottom - top) - 2, 0.0)
        draw.rectangle([float(xmin), y, float(xmin) + right - left + 2, y + bottom - top + 2], fill=colour)
        draw.text((float(xmin) + 1, y - top + 1), label, fill=(0, 0, 0))
    return np.asarray(canvas)


def predict_files(run_dir, specs, out_dir, min_score=0.3, checkpoint=None):
    """Detect objects in each image (a path or ``photo:NAME``) with a detection run.

    Writes ``out_dir/<stem>.png`` (the image with the detections scoring at least ``min_score``
    drawn) and returns ``[{"image", "drawn", "detections": [{"class", "score", "box"}]}]``
    (boxes in the original image's pixels).
    """
    import tensorflow as tf

    from cs231n_tf.detection.task import DetectionServing, anchors_of, load_model
    from cs231n_tf.train.predict import PHOTO_PREFIX, read_image_spec

    if not specs:
        raise ConfigError("predict needs at least one image")
    min_score = validation.positive_number("min_score", min_score, allow_zero=True)
    if min_score > 1:
        raise ConfigError(f"min_score must be in [0, 1], got {min_score!r}")
    images = [read_image_spec(s, channels=3) for s in specs]  # every image is checked before any work
    stems = [s[len(PHOTO_PREFIX):] if s.startswith(PHOTO_PREFIX) else os.path.splitext(os.path.basename(s))[0]
             for s in specs]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"the images must have distinct names (outputs are named by them), got {stems}")
    model, config, names = load_model(run_dir, checkpoint)
    module = DetectionServing(model, config, anchors_of(config))
    size = config.image_size
    results = []
    for spec, stem, image in zip(specs, stems, images):
        net_in = tf.image.resize(image.astype(np.float32) / 255.0, (size, size))[None]
        out = {k: v.numpy()[0] for k, v in module.serve(net_in).items()}
        n = int(out["num_detections"])
        keep = out["scores"][:n] >= min_score
        scale = np.array([image.shape[0] / size, image.shape[1] / size] * 2, np.float32)
        boxes = out["boxes"][:n][keep] * scale
        classes, scores = out["classes"][:n][keep], out["scores"][:n][keep]
        target = confined_path(out_dir, f"{stem}.png")
        atomic_write_bytes(target, tf.io.encode_png(draw_detections(image, boxes, classes, scores, names)).numpy())
        results.append({"image": spec, "drawn": target, "detections": [
            {"class": names[int(c)], "score": float(s), "box": [float(v) for v in b]}
            for b, c, s in zip(boxes, classes, scores)]})
    return results
