"""SavedModel and TFLite export of a run, each verified before it is put in place.

The exported graph takes images in unit scale (stored pixels divided by the data set's
``pixel_max``, i.e. floats in [0, 1]) and applies the training split's per-channel normalisation
itself, so a phone or a server feeds plain images. Signature ``serving_default``:
``images: float32 [batch, H, W, C]`` -> ``logits``, ``probabilities`` (float32 ``[batch, classes]``).
For full-integer int8 TFLite the input and outputs are int8 with the scales in the model.

Every export is checked on the run's test split (LiteRT interpreter for ``.tflite``,
``tf.saved_model.load`` for SavedModels) against the Keras model, and a ``*.report.json`` with
``size_bytes``, ``max_abs_diff``, ``accuracy`` and ``keras_accuracy`` is written beside it.
Artifacts are built in a temporary path and renamed into place only after they verify.
"""

import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, ExportError
from cs231n_tf.fileio import AtomicDirectory, atomic_write_bytes, atomic_write_json, confined_path
from cs231n_tf.train.evaluate import load_run

FORMATS = ("saved_model", "tflite")
QUANTIZE = ("none", "dynamic", "float16", "int8")
SIGNATURE = "serving_default"


class ServingModule(tf.Module):
    """Normalisation + model + softmax behind one batch-polymorphic signature."""

    def __init__(self, model, mean, std, image_shape):
        super().__init__()
        self.model = model
        self.mean = tf.constant(np.asarray(mean, np.float32))
        self.std = tf.constant(np.asarray(std, np.float32))
        spec = tf.TensorSpec([None, *image_shape], tf.float32, name="images")
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, images):
        logits = tf.cast(self.model((images - self.mean) / self.std, training=False), tf.float32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}


def _size_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def write_saved_model(module, path):
    tf.saved_model.save(module, path, signatures={SIGNATURE: module.serve})


def convert_tflite(saved_model_dir, quantize="none", representative_images=None):
    """Convert a SavedModel's serving signature to TFLite bytes."""
    if quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[SIGNATURE])
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if representative_images is None or len(representative_images) == 0:
            raise ConfigError("int8 quantization needs representative images from the training split")
        images = np.asarray(representative_images, np.float32)

        def representative():
            for i in range(len(images)):
                yield {"images": images[i:i + 1]}

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises several unrelated types (ConverterError, ValueError...)
        raise ExportError(f"TFLite conversion ({quantize}) failed: {str(exc).splitlines()[0]}") from exc


class TFLiteRunner:
    """Runs a ``.tflite`` signature with the LiteRT interpreter, handling int8 (de)quantisation."""

    def __init__(self, model_content=None, model_path=None, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=model_content, model_path=model_path, num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()

    def __call__(self, images):
        detail = self.inputs["images"]
        x = np.asarray(images, np.float32)
        if detail["dtype"] != np.float32:
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])
        out = self.runner(images=x)
        result = {}
        for name, value in out.items():
            d = self.outputs[name]
            if d["dtype"] != np.float32:
                scale, zero = d["quantization"]
                value = (value.astype(np.float32) - zero) * scale
            result[name] = value
        return result


def _verify(predict, keras_logits, images, labels, batch_size=64):
    logits, probs = [], []
    for i in range(0, len(images), batch_size):
        out = predict(images[i:i + batch_size])
        logits.append(np.asarray(out["logits"]))
        probs.append(np.asarray(out["probabilities"]))
    logits, probs = np.concatenate(logits), np.concatenate(probs)
    keras_probs = tf.nn.softmax(keras_logits).numpy()
    return {
        "accuracy": float((logits.argmax(-1) == labels).mean()),
        "keras_accuracy": float((keras_logits.argmax(-1) == labels).mean()),
        "max_abs_diff": float(np.abs(logits - keras_logits).max()),
        "max_abs_diff_probabilities": float(np.abs(probs - keras_probs).max()),
        "prediction_agreement": float((logits.argmax(-1) == keras_logits.argmax(-1)).mean()),
        "examples": int(len(labels)),
    }


def export_run(run_dir, format="saved_model", quantize="none", out=None, checkpoint=None, saved_models_root="saved_models"):
    """Export a run as ``format`` (``saved_model`` or ``tflite``); returns the report dict.

    ``out`` defaults to ``saved_models/<run name>/``. Writes ``out/saved_model/`` or
    ``out/model_<quantize>.tflite``, each with a ``.report.json`` beside it.
    """
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if format == "saved_model" and quantize != "none":
        raise ConfigError(f"quantize={quantize!r} applies to TFLite only; SavedModels are exported in float")
    run = load_run(run_dir, checkpoint, float32=True)
    out = os.path.abspath(out or os.path.join(saved_models_root, os.path.basename(os.path.normpath(run_dir))))
    os.makedirs(out, exist_ok=True)
    info = run.run_config["data"]
    data = run.load_data()
    images = data.to_unit(data.arrays["x_test"]).numpy()
    labels = data.arrays["y_test"]
    module = ServingModule(run.model, info["mean"], info["std"], info["image_shape"])
    keras_logits = np.concatenate([module.serve(images[i:i + 256])["logits"].numpy()
                                   for i in range(0, len(images), 256)])
    scratch = tempfile.mkdtemp(prefix=".tmp-export-", dir=out)
    try:
        saved_dir = os.path.join(scratch, "saved_model")
        write_saved_model(module, saved_dir)
        if format == "saved_model":
            target = confined_path(out, "saved_model")
            loaded = tf.saved_model.load(saved_dir).signatures[SIGNATURE]
            report = _verify(lambda x: {k: v.numpy() for k, v in loaded(images=tf.constant(x)).items()},
                             keras_logits, images, labels)
            with AtomicDirectory(target) as tmp:
                shutil.rmtree(tmp)
                shutil.copytree(saved_dir, tmp)
        else:
            target = confined_path(out, f"model_{quantize}.tflite")
            content = convert_tflite(saved_dir, quantize,
                                     data.representative_images() if quantize == "int8" else None)
            report = _verify(TFLiteRunner(model_content=content), keras_logits, images, labels)
            atomic_write_bytes(target, content)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.update({"format": format, "quantize": quantize, "path": target, "size_bytes": _size_bytes(target),
                   "run_dir": run.run_dir, "checkpoint": run.checkpoint, "signature": SIGNATURE,
                   "input": {"name": "images", "shape": [None, *info["image_shape"]], "scale": "pixels / "
                             f"{info['pixel_max']:g} (unit range)"}})
    atomic_write_json(target.rstrip("/") + ".report.json", report)
    return report


def export_module(module, path, inputs, signature=SIGNATURE):
    """Export any task's serving module as a SavedModel at ``path``, verified, with a report beside it.

    ``module`` is a ``tf.Module`` whose ``serve`` is a ``tf.function`` with an input signature
    (what :meth:`Task.serving_module` returns); ``inputs`` is ``{argument name: array}``, a batch
    to verify with. The SavedModel is written to a temporary directory, reloaded, its signature run
    on ``inputs`` and compared with ``module.serve`` itself; only then is it moved into place.
    Returns the report (``max_abs_diff`` per output, ``size_bytes``, ``path``...), also written to
    ``path.report.json``.
    """
    serve = getattr(module, "serve", None)
    if not isinstance(module, tf.Module) or serve is None:
        raise ExportError(f"a serving module must be a tf.Module with a `serve` tf.function, got {type(module).__name__}")
    if not isinstance(inputs, dict) or not inputs:
        raise ConfigError("inputs must be a non-empty dict {argument name: array}")
    feed = {k: tf.constant(v) for k, v in inputs.items()}
    expected = {k: v.numpy() for k, v in serve(**feed).items()}
    target = os.path.abspath(path)
    with AtomicDirectory(target) as tmp:
        shutil.rmtree(tmp)
        tf.saved_model.save(module, tmp, signatures={signature: serve})
        loaded = tf.saved_model.load(tmp).signatures[signature]
        got = {k: v.numpy() for k, v in loaded(**feed).items()}
        if set(got) != set(expected):
            raise ExportError(f"the exported signature returns {sorted(got)}, the module {sorted(expected)}")
        diffs = {k: float(np.abs(got[k].astype(np.float64) - expected[k].astype(np.float64)).max())
                 if got[k].size else 0.0 for k in expected}
    report = {"format": "saved_model", "path": target, "signature": signature, "size_bytes": _size_bytes(target),
              "max_abs_diff": diffs, "examples": int(len(next(iter(inputs.values())))),
              "inputs": {k: {"shape": [None, *np.shape(v)[1:]], "dtype": str(np.asarray(v).dtype)}
                         for k, v in inputs.items()},
              "outputs": {k: {"shape": [None, *v.shape[1:]], "dtype": str(v.dtype)} for k, v in expected.items()}}
    atomic_write_json(target.rstrip("/") + ".report.json", report)
    return report
