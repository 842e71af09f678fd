"""Export of a detection run: SavedModel (batched, NMS inside) and TFLite (float, int8; NMS inside), verified by AP.

The artifact is written and first checked by the package's one export path
(:func:`cs231n_tf.export.export_module` for SavedModels, :func:`~cs231n_tf.export.export_signature_tflite`
for ``.tflite``: the largest output difference from the serving module on test images). Then the
written artifact itself detects on the whole test split and its COCO metrics are put in the
report beside the Keras model's (``keras_AP``...), and the report is rewritten with them.

- SavedModel, signature ``serving_default``: ``images`` float32 ``[N, H, W, 3]`` in [0, 1] ->
  ``boxes`` ``[N, K, 4]`` (pixels ``[ymin, xmin, ymax, xmax]``), ``classes`` int32, ``scores``,
  ``num_detections`` int32 ``[N]``; batched class-aware NMS (``combined_non_max_suppression``).
- TFLite: the serving module's ``serve_single`` (one image ``[1, H, W, 3]``, the same outputs with a
  batch axis of 1): TFLite has no combined NMS builtin, so the post-processing inside the model is
  one padded ``non_max_suppression`` (TFLite's builtin NMS op) per class followed by ``top_k``, the
  same rule (:func:`cs231n_tf.detection.ssd.postprocess_single`). Its Keras reference is that same
  function run by TensorFlow. int8 is full-integer (calibrated on training images) for the network;
  the NMS op itself runs in float.
"""

import os

import numpy as np
import tensorflow as tf

from cs231n_tf.detection.task import (DetectionServing, anchors_of, coco_metrics, detections_list, load_model,
                                      load_splits, predict_detections)
from cs231n_tf.errors import ConfigError
from cs231n_tf.export.exporter import TFLiteRunner, export_module, export_signature_tflite
from cs231n_tf.fileio import atomic_write_json, confined_path

QUANTIZE = ("none", "int8")
VERIFY_IMAGES = 8  # the exporter's own output comparison; the AP check uses the whole test split
CALIBRATION_IMAGES = 64
KEYS = ("boxes", "classes", "scores", "num_detections")


def _one_by_one(run_one, images):
    """Detections of ``images`` (uint8) from ``run_one(unit image [1, H, W, 3]) -> dict``, image by image."""
    out = {k: [] for k in KEYS}
    for image in images:
        result = run_one(np.asarray(image, np.float32)[None] / 255.0)
        for k in KEYS:
            out[k].append(np.asarray(result[k]))
    return detections_list(*(np.concatenate(out[k]) for k in KEYS))


def _prefixed(prefix, metrics):
    return {f"{prefix}{k}": v for k, v in metrics.items()}


def export_detection(run_dir, format="saved_model", quantize="none", out=None, checkpoint=None,
                     saved_models_root="saved_models"):
    """Export a detection run as ``out/saved_model/`` or ``out/model_<quantize>.tflite``; returns the report.

    The report (also in ``<artifact>.report.json``) has the exporter's ``max_abs_diff`` per output
    and the COCO metrics (``AP``, ``AP50``...) of the artifact on the test split beside Keras's
    (``keras_AP``...) under the same post-processing.
    """
    if format not in ("saved_model", "tflite"):
        raise ConfigError(f"format must be saved_model or tflite, got {format!r}")
    if quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if format == "saved_model" and quantize != "none":
        raise ConfigError(f"quantize={quantize!r} applies to TFLite only; SavedModels are exported in float")
    model, config, names = load_model(run_dir, checkpoint)
    train, _, test = load_splits(config)
    images = np.stack(test.images)
    unit = images.astype(np.float32) / 255.0
    module = DetectionServing(model, config, anchors_of(config))
    out = os.path.abspath(out or os.path.join(saved_models_root, os.path.basename(os.path.normpath(run_dir))))
    k = len(names)
    if format == "saved_model":
        report = export_module(module, confined_path(out, "saved_model"), {"images": unit[:VERIFY_IMAGES]})
        served = tf.saved_model.load(report["path"]).signatures["serving_default"]
        got = predict_detections(lambda x: served(images=tf.constant(x)), images)
        keras = predict_detections(module, images)
        post = "batched combined_non_max_suppression"
    else:
        calibration = [{"images": train.images[i][None].astype(np.float32) / 255.0}
                       for i in range(min(CALIBRATION_IMAGES, len(train)))]
        report = export_signature_tflite(module, module.serve_single, confined_path(out, f"model_{quantize}.tflite"),
                                         {"images": unit[:1]}, quantize=quantize, representative=calibration)
        runner = TFLiteRunner(model_path=report["path"])
        got = _one_by_one(runner, images)
        keras = _one_by_one(lambda x: module.serve_single(tf.constant(x)), images)
        post = "per-class TFLite NMS + top_k, one image per call"
    report.update({
        **coco_metrics(test, got, k), **_prefixed("keras_", coco_metrics(test, keras, k)),
        "detections": int(sum(len(d["scores"]) for d in got)),
        "keras_detections": int(sum(len(d["scores"]) for d in keras)),
        "postprocessing": post, "verified_on": f"test split ({len(images)} images)",
        "run_dir": os.path.abspath(run_dir), "task": "detection", "class_names": list(names),
    })
    atomic_write_json(report["path"].rstrip("/") + ".report.json", report)
    return report
