"""SavedModel and TFLite export of a run, each verified before it is put in place.

The exported graph takes images in unit scale (stored pixels divided by the data set's
``pixel_max``, i.e. floats in [0, 1]) and applies the training split's per-channel normalisation
itself, so a phone or a server feeds plain images. Signature ``serving_default``:
``images: float32 [batch, H, W, C]`` -> ``logits``, ``probabilities`` (float32 ``[batch, classes]``).
For full-integer int8 TFLite the input and outputs are int8 with the scales in the model.

Every export of a run is checked on the run's test split (LiteRT interpreter for ``.tflite``,
``tf.saved_model.load`` for SavedModels) against the Keras model, and a ``*.report.json`` with
``size_bytes``, ``max_abs_diff``, ``accuracy`` and ``keras_accuracy`` is written beside it.
Pretrained models (:func:`export_pretrained`) are checked on the photos shipped in installed
packages and augmented crops of them (``accuracy`` is absent: there are no labels). Artifacts are
built in a temporary path and renamed into place only after they verify.
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


def convert_tflite(saved_model_dir, quantize="none", representative_images=None, signature=SIGNATURE):
    """Convert the SavedModel's ``signature`` to TFLite bytes.

    ``representative_images`` (int8 only): images for the ``images`` input, or a list of
    ``{input name: array}`` batches for a signature with other inputs.
    """
    if quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[signature])
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if representative_images is None or len(representative_images) == 0:
            raise ConfigError("int8 quantization needs representative images from the training split")
        if isinstance(representative_images[0], dict):
            feeds = list(representative_images)
        else:
            images = np.asarray(representative_images, np.float32)
            feeds = [{"images": images[i:i + 1]} for i in range(len(images))]

        def representative():
            yield from feeds

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises several unrelated types (ConverterError, ValueError...)
        raise ExportError(f"TFLite conversion ({quantize}) failed: {str(exc).splitlines()[0]}") from exc


class TFLiteRunner:
    """Runs a ``.tflite`` signature with the LiteRT interpreter, handling int8 (de)quantisation.

    ``runner(images)`` feeds a classifier's ``images``; ``runner.run(**inputs)`` any signature's
    named inputs. Float inputs of a quantised model are quantised with the model's scales; integer
    inputs (token ids) are passed as they are.
    """

    def __init__(self, model_content=None, model_path=None, num_threads=None, signature=SIGNATURE):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=model_content, model_path=model_path, num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner(signature)
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()

    def __call__(self, images):
        return self.run(images=images)

    def _feed(self, name, value):
        detail = self.inputs[name]
        x = np.asarray(value)
        scale, zero = detail["quantization"]
        if np.issubdtype(x.dtype, np.floating) and detail["dtype"] != np.float32 and scale:
            info = np.iinfo(detail["dtype"])
            return np.clip(np.round(x.astype(np.float32) / scale + zero), info.min, info.max).astype(detail["dtype"])
        return x.astype(detail["dtype"])

    def run(self, **inputs):
        unknown = sorted(set(inputs) - set(self.inputs))
        if unknown:
            raise ConfigError(f"the TFLite signature has no input(s) {', '.join(unknown)}; it takes "
                              f"{', '.join(sorted(self.inputs))}")
        out = self.runner(**{name: self._feed(name, value) for name, value in inputs.items()})
        result = {}
        for name, value in out.items():
            scale, zero = self.outputs[name]["quantization"]
            if scale:  # a quantised output (integer outputs such as token ids have no scale)
                value = (value.astype(np.float32) - zero) * scale
            result[name] = value
        return result


def _verify(predict, keras_logits, images, labels=None, batch_size=64):
    """Compare an export's outputs with the Keras model's on ``images`` (accuracy too with ``labels``)."""
    logits, probs = [], []
    for i in range(0, len(images), batch_size):
        out = predict(images[i:i + batch_size])
        logits.append(np.asarray(out["logits"]))
        probs.append(np.asarray(out["probabilities"]))
    logits, probs = np.concatenate(logits), np.concatenate(probs)
    keras_probs = tf.nn.softmax(keras_logits).numpy()
    report = {
        "max_abs_diff": float(np.abs(logits - keras_logits).max()),
        "max_abs_diff_probabilities": float(np.abs(probs - keras_probs).max()),
        "prediction_agreement": float((logits.argmax(-1) == keras_logits.argmax(-1)).mean()),
        "examples": int(len(images)),
    }
    if labels is not None:
        report["accuracy"] = float((logits.argmax(-1) == labels).mean())
        report["keras_accuracy"] = float((keras_logits.argmax(-1) == labels).mean())
    return report


def _check_format(format, quantize):
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if format == "saved_model" and quantize != "none":
        raise ConfigError(f"quantize={quantize!r} applies to TFLite only; SavedModels are exported in float")


def _export_verified(module, format, quantize, out, images, labels=None, representative=None):
    """Write ``module`` as ``out/saved_model/`` or ``out/model_<quantize>.tflite``, verified on ``images``.

    The artifact is built in a scratch directory inside ``out`` and moved into place only after
    its outputs were compared with the Keras model's. Returns the report (not yet written). The
    public entry points have checked ``format`` and ``quantize`` before loading anything.
    """
    os.makedirs(out, exist_ok=True)
    keras_logits = np.concatenate([module.serve(images[i:i + 64])["logits"].numpy()
                                   for i in range(0, len(images), 64)])
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
            content = convert_tflite(saved_dir, quantize, representative if quantize == "int8" else None)
            report = _verify(TFLiteRunner(model_content=content), keras_logits, images, labels)
            atomic_write_bytes(target, content)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.update({"format": format, "quantize": quantize, "path": target, "size_bytes": _size_bytes(target),
                   "signature": SIGNATURE})
    return report


def export_run(run_dir, format="saved_model", quantize="none", out=None, checkpoint=None, saved_models_root="saved_models"):
    """Export a run as ``format`` (``saved_model`` or ``tflite``); returns the report dict.

    ``out`` defaults to ``saved_models/<run name>/``. Writes ``out/saved_model/`` or
    ``out/model_<quantize>.tflite``, each verified on the run's test split, with a ``.report.json``
    beside it.
    """
    _check_format(format, quantize)
    run = load_run(run_dir, checkpoint, float32=True)
    out = os.path.abspath(out or os.path.join(saved_models_root, os.path.basename(os.path.normpath(run_dir))))
    info = run.run_config["data"]
    data = run.load_data()
    images = data.to_unit(data.arrays["x_test"]).numpy()
    module = ServingModule(run.model, info["mean"], info["std"], info["image_shape"])
    report = _export_verified(module, format, quantize, out, images, data.arrays["y_test"],
                              data.representative_images() if quantize == "int8" else None)
    report.update({"run_dir": run.run_dir, "checkpoint": run.checkpoint,
                   "input": {"name": "images", "shape": [None, *info["image_shape"]], "scale": "pixels / "
                             f"{info['pixel_max']:g} (unit range)"}})
    atomic_write_json(report["path"].rstrip("/") + ".report.json", report)
    return report


def pretrained_images(size, augmented=9, seed=0):
    """Unit-scale ``(N, size, size, 3)`` images from the shipped photos: each photo's evaluation crop
    followed by ``augmented`` random resized crops (8%..100% of the area, aspect 3/4..4/3, random
    flips) of it. What exports of pretrained models are verified on, and (another seed) calibrated with.
    """
    from cs231n_tf.data.photos import load_photo, photo_names
    from cs231n_tf.models.imagenet import center_crop_resize

    rng = np.random.default_rng(seed)
    out = []
    for name in photo_names():
        photo = load_photo(name)
        h, w = photo.shape[:2]
        out.append(center_crop_resize(photo, size).numpy() / 255.0)
        for _ in range(augmented):
            for _attempt in range(10):
                area = rng.uniform(0.08, 1.0) * h * w
                aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
                ch, cw = int(round(np.sqrt(area / aspect))), int(round(np.sqrt(area * aspect)))
                if 0 < ch <= h and 0 < cw <= w:
                    break
            else:
                ch, cw = min(h, w), min(h, w)
            top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            crop = tf.image.resize(photo[top:top + ch, left:left + cw].astype(np.float32), (size, size),
                                   method="bicubic").numpy()
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            out.append(np.clip(crop, 0, 255) / 255.0)
    return np.stack(out).astype(np.float32)


def export_pretrained(model, weights="imagenet", format="saved_model", quantize="none", out=None,
                      image_size=None, saved_models_root="saved_models"):
    """Export a pretrained registry model (``efficientnet_lite0``) as a verified SavedModel or ``.tflite``.

    The serving signature is the runs' one (unit-scale images in, logits and probabilities out,
    the weights' normalisation inside). The export is verified on the shipped photos and augmented
    crops of them (:func:`pretrained_images`: top-1 agreement and max logit difference with
    Keras); int8 calibrates on other crops of the same photos (ImageNet itself is not here).
    Writes ``out/saved_model/`` or ``out/model_<quantize>.tflite`` with a ``.report.json``.
    """
    from cs231n_tf import validation
    from cs231n_tf.models import build
    from cs231n_tf.models.registry import pretrained_spec

    _check_format(format, quantize)
    spec = pretrained_spec(model, weights)
    size = spec.canonical_input_shape[0] if image_size is None else validation.positive_int("image_size", image_size)
    shape = (size, size, spec.canonical_input_shape[-1])
    net = build(model, input_shape=shape, weights=weights)
    out = os.path.abspath(out or os.path.join(saved_models_root, f"{model}_{weights}"))
    module = ServingModule(net, *spec.input_stats, shape)
    images = pretrained_images(size)
    report = _export_verified(module, format, quantize, out, images,
                              representative=pretrained_images(size, seed=1) if quantize == "int8" else None)
    report.update({"model": model, "weights": weights, "verified_on": "shipped photos + augmented crops",
                   "input": {"name": "images", "shape": [None, *shape], "scale": "pixels / 255 (unit range)"}})
    atomic_write_json(report["path"].rstrip("/") + ".report.json", report)
    return report


def _outputs(fn, feed):
    out = fn(**feed)
    if not isinstance(out, dict):  # a single tensor: what its SavedModel signature calls it
        out = {"output_0": out}
    return {k: v.numpy() for k, v in out.items()}


def _max_diffs(got, expected):
    if set(got) != set(expected):
        raise ExportError(f"the exported signature returns {sorted(got)}, the module {sorted(expected)}")
    def diff(a, b):
        if not a.size:
            return 0.0
        if a.dtype.kind in "OSU":  # strings (captions, labels): how many differ
            return float(np.sum(a != b))
        return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())

    return {k: diff(got[k], expected[k]) for k in expected}


def _io(inputs, outputs):
    return {"inputs": {k: {"shape": [None, *np.shape(v)[1:]], "dtype": str(np.asarray(v).dtype)}
                       for k, v in inputs.items()},
            "outputs": {k: {"shape": [None, *v.shape[1:]], "dtype": str(v.dtype)} for k, v in outputs.items()}}


def _check_signatures(module, inputs, signature, signatures):
    if not isinstance(module, tf.Module):
        raise ExportError(f"a serving module must be a tf.Module, got {type(module).__name__}")
    if signatures is None:
        serve = getattr(module, "serve", None)
        if serve is None:
            raise ExportError(f"a serving module must be a tf.Module with a `serve` tf.function, "
                              f"got {type(module).__name__}")
        signatures = {signature: (serve, inputs)}
    if not isinstance(signatures, dict) or not signatures:
        raise ConfigError("signatures must be a non-empty dict {name: (tf.function, {argument name: array})}")
    for name, (_, feed) in signatures.items():
        if not isinstance(feed, dict) or not feed:
            raise ConfigError(f"signature {name!r} needs a non-empty dict {{argument name: array}} to verify with")
    return signatures


def export_module(module, path, inputs=None, signature=SIGNATURE, signatures=None):
    """Export any task's serving module as a SavedModel at ``path``, verified, with a report beside it.

    ``module`` is a ``tf.Module`` whose ``serve`` is a ``tf.function`` with an input signature
    (what :meth:`Task.serving_module` returns); ``inputs`` is ``{argument name: array}``, a batch
    to verify with. A module with several signatures passes ``signatures={name: (tf.function,
    inputs)}`` instead (``serving_default`` among them for TF Serving's default). The SavedModel
    is written to a temporary directory, reloaded, every signature run on its inputs and compared
    with the module's own function; only then is it moved into place. Returns the report
    (``max_abs_diff`` per output, per signature when there are several, ``size_bytes``,
    ``path``...), also written to ``path.report.json``.
    """
    single = signatures is None
    signatures = _check_signatures(module, inputs, signature, signatures)
    feeds = {name: {k: tf.constant(v) for k, v in feed.items()} for name, (_, feed) in signatures.items()}
    expected = {name: _outputs(fn, feeds[name]) for name, (fn, _) in signatures.items()}
    target = os.path.abspath(path)
    with AtomicDirectory(target) as tmp:
        shutil.rmtree(tmp)
        tf.saved_model.save(module, tmp, signatures={name: fn for name, (fn, _) in signatures.items()})
        loaded = tf.saved_model.load(tmp).signatures
        diffs = {name: _max_diffs(_outputs(loaded[name], feeds[name]), expected[name]) for name in signatures}
    report = {"format": "saved_model", "path": target, "size_bytes": _size_bytes(target)}
    if single:
        (name,) = signatures
        feed = signatures[name][1]
        report.update({"signature": name, "max_abs_diff": diffs[name],
                       "examples": int(len(next(iter(feed.values())))), **_io(feed, expected[name])})
    else:
        report["signatures"] = {name: {"max_abs_diff": diffs[name], **_io(feed, expected[name])}
                                for name, (_, feed) in signatures.items()}
    atomic_write_json(target.rstrip("/") + ".report.json", report)
    return report


def export_signature_tflite(module, fn, path, inputs, quantize="none", representative=None, name="serving_default"):
    """One signature of a serving module as a verified ``.tflite`` at ``path`` (a decoder step, a generator).

    ``fn`` is the module's ``tf.function`` (with an input signature); ``inputs`` ``{argument name:
    array}`` a batch to verify with; ``representative`` (int8) a list of such dicts. The model is
    converted through :func:`convert_tflite`, run with the LiteRT interpreter and compared with
    ``fn`` before it is written; the report (``max_abs_diff`` per output, ``size_bytes``) is
    returned and written to ``path.report.json``.
    """
    if quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if not isinstance(inputs, dict) or not inputs:
        raise ConfigError("inputs must be a non-empty dict {argument name: array}")
    target = os.path.abspath(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    expected = _outputs(fn, {k: tf.constant(v) for k, v in inputs.items()})
    scratch = tempfile.mkdtemp(prefix=".tmp-export-", dir=os.path.dirname(target))
    try:
        saved_dir = os.path.join(scratch, "saved_model")
        tf.saved_model.save(module, saved_dir, signatures={name: fn})
        content = convert_tflite(saved_dir, quantize, representative if quantize == "int8" else None, signature=name)
        got = TFLiteRunner(model_content=content, signature=name).run(**inputs)
        diffs = _max_diffs({k: np.asarray(v) for k, v in got.items()}, expected)
        atomic_write_bytes(target, content)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = {"format": "tflite", "quantize": quantize, "path": target, "signature": name,
              "size_bytes": _size_bytes(target), "max_abs_diff": diffs,
              "examples": int(len(next(iter(inputs.values())))), **_io(inputs, expected)}
    atomic_write_json(target + ".report.json", report)
    return report
