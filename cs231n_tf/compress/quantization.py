"""Quantization for deployment: post-training TFLite quantization and quantization-aware training.

* Post-training (:func:`keras_to_tflite`): float32, float16, dynamic-range and full-integer int8
  TFLite through :func:`cs231n_tf.export.exporter.convert_tflite`; the model is wrapped in the
  exporter's :class:`~cs231n_tf.export.exporter.ServingModule`, so the ``.tflite`` takes unit-scale
  images and normalises them itself, exactly like ``cs231n-tf export``.
* Quantization-aware training (:func:`quantization_aware_training`): tensorflow-model-optimization's
  ``quantize_model`` inserts fake-quantization (Jacob et al., 2018, "Quantization and training of
  neural networks for efficient integer-arithmetic-only inference") and the model is fine-tuned
  with it; :func:`qat_to_tflite_int8` converts the result to an int8 ``.tflite``.
* Collaborative optimisation (``preserve=``): tfmot's prune-preserving (PQAT), cluster-preserving
  (CQAT) and sparsity-and-cluster-preserving (PCQAT) schemes from ``tfmot.experimental.combine``,
  which keep the zeros / the shared weight values of a pruned / clustered model through QAT.

:func:`compare_with_keras` runs a ``.tflite`` with LiteRT against the Keras model on the same images.
"""

import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.compress.distill import check_model
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.tasks.classification import epoch_losses, train_model
from cs231n_tf.export import exporter
from cs231n_tf.export.exporter import QUANTIZE, ServingModule, TFLiteRunner, write_saved_model

PRESERVE = (None, "sparsity", "clusters", "sparse_clusters")


def keras_to_tflite(model, mean, std, quantize="none", representative_images=None):
    """TFLite bytes of ``model`` behind the exporter's serving signature (unit-scale images in).

    ``mean``/``std`` are the training split's per-channel statistics (``DataSplits.info``);
    ``quantize`` is one of ``none``, ``dynamic``, ``float16``, ``int8`` (int8 needs unit-scale
    ``representative_images`` from the training split, e.g. ``DataSplits.representative_images()``).
    """
    check_model(model)
    if quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    module = ServingModule(model, mean, std, tuple(model.input_shape[1:]))
    scratch = tempfile.mkdtemp(prefix="cs231n-tflite-")
    try:
        saved = os.path.join(scratch, "saved_model")
        write_saved_model(module, saved)
        return exporter.convert_tflite(saved, quantize, representative_images)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_quantizable(model):
    check_model(model)
    if not getattr(model, "_is_graph_network", False) and not isinstance(model, tf.keras.Sequential):
        raise InputTypeError(f"quantization-aware training needs a functional or Sequential Keras model; "
                             f"{model.name!r} is subclassed")
    nested = [layer.name for layer in model.layers if isinstance(layer, tf.keras.Model)]
    if nested:
        raise ConfigError(f"tfmot cannot quantize models nested inside a model: {', '.join(nested)}")
    wrapped = [layer.name for layer in model.layers
               if type(layer).__name__ in ("PruneLowMagnitude", "ClusterWeights", "ClusterWeightsMHA")]
    if wrapped:
        raise ConfigError(f"layer(s) {', '.join(wrapped)} still carry pruning/clustering wrappers; call "
                          "tfmot.sparsity.keras.strip_pruning / tfmot.clustering.keras.strip_clustering first")
    # tfmot only knows Keras's own layers; its error for others names the class, not the layer.
    custom = [f"{layer.name} ({type(layer).__name__})" for layer in model.layers
              if not type(layer).__module__.startswith(("tf_keras.", "keras."))]
    if custom:
        raise ConfigError(f"tfmot's 8-bit scheme has no recipe for custom layer(s) {', '.join(custom)}; give "
                          "them a QuantizeConfig via tfmot.quantization.keras.quantize_annotate_layer or "
                          "replace them with built-in Keras layers")


def _kernel_layers(model):
    return [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]


def _check_preservable(model, preserve):
    """Refuse the combinations where tfmot 0.8 would silently not preserve anything."""
    layers = _kernel_layers(model)
    if preserve in ("clusters", "sparse_clusters"):
        # tfmot treats a kernel with more than 1024 distinct values as not clustered and skips it.
        if layers and all(np.unique(layer.kernel.numpy()).size > 1024 for layer in layers):
            raise ConfigError(f"preserve={preserve!r} needs a clustered model (at most 1024 distinct values "
                              "per kernel); cluster it with tfmot.clustering.keras.cluster_weights and "
                              "strip_clustering first")
    if preserve in ("sparsity", "sparse_clusters"):
        dense = [layer.name for layer in layers if not np.any(layer.kernel.numpy() == 0)]
        if preserve == "sparse_clusters" and dense:
            # tfmot 0.8 shares one weight quantizer per layer type; a layer without zeros switches
            # sparsity preservation off for every layer, so the zeros would be lost unnoticed.
            raise ConfigError("preserve='sparse_clusters' (PCQAT) needs zeros in every Dense/Conv kernel; "
                              f"layer(s) {', '.join(dense)} have none. Prune every layer, or use 'clusters'")
        if len(dense) == len(layers):
            raise ConfigError(f"preserve={preserve!r} needs a pruned model, but no kernel has zeros; prune with "
                              "tfmot.sparsity.keras.prune_low_magnitude and strip_pruning first")


def quantize(model, preserve=None):
    """The fake-quantized (not yet trained) copy of ``model``.

    ``preserve`` selects the scheme: ``None`` (tfmot's default 8-bit scheme), ``"sparsity"``
    (PQAT, for a pruned model whose pruning wrappers were stripped), ``"clusters"`` (CQAT, for a
    stripped clustered model) or ``"sparse_clusters"`` (PCQAT, for a pruned then clustered model;
    with tfmot 0.8 every Dense/Conv kernel must then hold zeros). Requests tfmot would accept but
    silently not honour (preserving the sparsity of a dense model, the clusters of an unclustered
    one) raise :class:`ConfigError`.
    """
    if preserve not in PRESERVE:
        raise ConfigError(f"preserve must be one of None, 'sparsity', 'clusters', 'sparse_clusters', got {preserve!r}")
    _check_quantizable(model)
    _check_preservable(model, preserve)
    import tensorflow_model_optimization as tfmot  # slow to import; only needed here
    try:
        if preserve is None:
            return tfmot.quantization.keras.quantize_model(model)
        schemes = {
            "sparsity": tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme,
            "clusters": tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme,
            "sparse_clusters": lambda: tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(
                preserve_sparsity=True),
        }
        annotated = tfmot.quantization.keras.quantize_annotate_model(model)
        return tfmot.quantization.keras.quantize_apply(annotated, schemes[preserve]())
    except (ValueError, RuntimeError, TypeError) as exc:
        # tfmot names the offending layer ("Layer fc:<class ...> is not supported...").
        raise ConfigError(f"tfmot cannot quantize {model.name!r} (preserve={preserve!r}): "
                          f"{str(exc).splitlines()[0]}") from exc


def quantization_aware_training(model, train_ds, epochs, lr, preserve=None, history=None, **settings):
    """Fine-tune a fake-quantized copy of ``model`` and return it, ready for int8 TFLite.

    ``train_ds`` yields ``(normalised images, integer labels)`` batches (or is a callable
    ``epoch -> dataset``); training is Adam at ``lr`` on the cross-entropy, on the engine (``settings``: engine settings). ``preserve`` as in
    :func:`quantize`. ``history`` (a list) receives each epoch's mean loss. Convert the result with
    :func:`qat_to_tflite_int8`.
    """
    validation.positive_int("epochs", epochs)
    validation.positive_number("lr", lr)
    qat = quantize(model, preserve)
    result = train_model(qat, train_ds, epochs, tf.keras.optimizers.Adam(lr), **settings)
    if history is not None:
        history.extend(epoch_losses(result))
    return qat


def qat_to_tflite_int8(qat_model, mean, std, representative_images):
    """Full-integer int8 TFLite bytes of a model from :func:`quantization_aware_training`.

    The weights and activation ranges come from the fake-quantization nodes; the representative
    images only calibrate the input normalisation in front of the first quantized layer.
    """
    return keras_to_tflite(qat_model, mean, std, "int8", representative_images)


def compare_with_keras(tflite_content, model, mean, std, unit_images, labels=None, num_threads=None,
                       batch_size=64):
    """Run ``tflite_content`` with LiteRT and ``model`` (Keras) on the same unit-scale images.

    Returns ``max_abs_diff`` of the logits, ``prediction_agreement`` (same argmax), and, with
    ``labels``, ``accuracy`` and ``keras_accuracy``.
    """
    runner = TFLiteRunner(model_content=tflite_content, num_threads=num_threads)
    module = ServingModule(model, mean, std, tuple(model.input_shape[1:]))
    images = np.asarray(unit_images, np.float32)
    lite, keras = [], []
    for i in range(0, len(images), batch_size):
        lite.append(runner(images[i:i + batch_size])["logits"])
        keras.append(module.serve(tf.constant(images[i:i + batch_size]))["logits"].numpy())
    lite, keras = np.concatenate(lite), np.concatenate(keras)
    out = {"max_abs_diff": float(np.abs(lite - keras).max()),
           "prediction_agreement": float((lite.argmax(-1) == keras.argmax(-1)).mean())}
    if labels is not None:
        labels = np.asarray(labels)
        out["accuracy"] = float((lite.argmax(-1) == labels).mean())
        out["keras_accuracy"] = float((keras.argmax(-1) == labels).mean())
    return out


def tflite_accuracy(tflite_content, unit_images, labels, num_threads=None, batch_size=64):
    """Top-1 accuracy of a ``.tflite`` (LiteRT interpreter) on unit-scale images."""
    runner = TFLiteRunner(model_content=tflite_content, num_threads=num_threads)
    images = np.asarray(unit_images, np.float32)
    preds = np.concatenate([runner(images[i:i + batch_size])["logits"].argmax(-1)
                            for i in range(0, len(images), batch_size)])
    return float((preds == np.asarray(labels)).mean())
