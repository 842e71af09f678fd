"""Export of a segmentation run: SavedModel and TFLite (float, int8), verified by mean IoU against Keras.

The artifact is written and first checked by the package's one export path
(:func:`cs231n_tf.export.export_module` for SavedModels, :func:`~cs231n_tf.export.export_signature_tflite`
for ``.tflite``: the largest output difference from the serving module on test images). Then the
written artifact itself segments the whole test split and its mean IoU, per-class IoU and pixel
accuracy are put in the report beside Keras's on the same images, with the share of pixels whose
label agrees; the report is rewritten with them. Signature ``serving_default``: ``images`` (float32
``[batch, H, W, 3]`` in [0, 1]) -> ``logits`` ``[batch, H, W, K]``, ``labels`` int32 ``[batch, H, W]``.
Max unpooling needs TensorFlow's ``MaxPoolWithArgmax``, which TFLite's builtin ops lack: such runs
export as SavedModels only.
"""

import os

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.export.exporter import TFLiteRunner, export_module, export_signature_tflite
from cs231n_tf.fileio import atomic_write_json, confined_path
from cs231n_tf.segmentation.metrics import iou_from_confusion
from cs231n_tf.segmentation.task import SegmentationServing, load_model, load_splits

QUANTIZE = ("none", "int8")
VERIFY_IMAGES = 8  # the exporter's own output comparison; the mIoU check uses the whole test split
CALIBRATION_IMAGES = 64


def _confusion(labels, predictions, k):
    valid = labels != 255
    index = labels[valid].astype(np.int64) * k + predictions[valid]
    return np.bincount(index, minlength=k * k).reshape(k, k)


def _scores(predict, images, masks, k, batch_size=16):
    labels = np.concatenate([np.asarray(predict(images[i:i + batch_size])) for i in range(0, len(images), batch_size)])
    iou, mean, accuracy = iou_from_confusion(_confusion(masks, labels, k))
    return labels, mean, [None if np.isnan(v) else float(v) for v in iou], accuracy


def export_segmentation(run_dir, format="saved_model", quantize="none", out=None, checkpoint=None,
                        saved_models_root="saved_models"):
    """Export a segmentation run as ``out/saved_model/`` or ``out/model_<quantize>.tflite``; returns the report.

    ``quantize``: ``none`` or ``int8`` (TFLite only; full-integer, calibrated on training images).
    The report (also in ``<artifact>.report.json``) has the exporter's ``max_abs_diff`` per output
    and ``mean_iou``, ``per_class_iou``, ``pixel_accuracy`` of the artifact on the test split,
    ``keras_mean_iou``..., ``label_agreement`` (share of pixels labelled as Keras does).
    """
    if format not in ("saved_model", "tflite"):
        raise ConfigError(f"format must be saved_model or tflite, got {format!r}")
    if quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if format == "saved_model" and quantize != "none":
        raise ConfigError(f"quantize={quantize!r} applies to TFLite only; SavedModels are exported in float")
    model, config, names = load_model(run_dir, checkpoint)
    if format == "tflite" and config.upsampling == "max_unpool":
        raise ConfigError("a max_unpool network needs TensorFlow's MaxPoolWithArgmax, which TFLite lacks: export it "
                          "as a saved_model")
    train, _, test = load_splits(config)
    images = test.images.astype(np.float32) / 255.0
    module = SegmentationServing(model, (config.image_size, config.image_size, 3))
    out = os.path.abspath(out or os.path.join(saved_models_root, os.path.basename(os.path.normpath(run_dir))))
    feed = {"images": images[:VERIFY_IMAGES]}
    if format == "saved_model":
        report = export_module(module, confined_path(out, "saved_model"), feed)
        served = tf.saved_model.load(report["path"]).signatures["serving_default"]

        def predict(x):
            return served(images=tf.constant(x))["labels"].numpy()
    else:
        calibration = [{"images": train.images[i:i + 1].astype(np.float32) / 255.0}
                       for i in range(min(CALIBRATION_IMAGES, len(train)))]
        report = export_signature_tflite(module, module.serve, confined_path(out, f"model_{quantize}.tflite"), feed,
                                         quantize=quantize, representative=calibration)
        runner = TFLiteRunner(model_path=report["path"])

        def predict(x):
            return runner(x)["labels"]
    k = len(names)
    keras_labels, keras_mean, keras_iou, keras_accuracy = _scores(
        lambda x: module.serve(tf.constant(x))["labels"].numpy(), images, test.masks, k)
    labels, mean, iou, accuracy = _scores(predict, images, test.masks, k)
    report.update({
        "mean_iou": mean, "per_class_iou": dict(zip(names, iou)), "pixel_accuracy": accuracy,
        "keras_mean_iou": keras_mean, "keras_per_class_iou": dict(zip(names, keras_iou)),
        "keras_pixel_accuracy": keras_accuracy, "label_agreement": float((labels == keras_labels).mean()),
        "verified_on": f"test split ({len(images)} images)", "run_dir": os.path.abspath(run_dir),
        "task": "segmentation",
    })
    atomic_write_json(report["path"].rstrip("/") + ".report.json", report)
    return report
