"""Export a generative run's serving module: SavedModel or TFLite, verified by the package's exporter.

What is exported is each task's serving module: a GAN's generator (``noise -> images``), an
autoencoder's decoder (``latent -> Bernoulli means``) and a PixelCNN's conditionals (``levels ->
log_probs``: one pass scores an image; sampling stays sequential on the caller's side). Verified
with :func:`cs231n_tf.export.export_module` / :func:`~cs231n_tf.export.exporter.export_signature_tflite`
on a fixed batch (the same noise gives the same samples as the run).
"""

import os

import numpy as np

from cs231n_tf.engine import rundir
from cs231n_tf.errors import ConfigError
from cs231n_tf.export import export_module
from cs231n_tf.export.exporter import export_signature_tflite

TASKS = ("gan", "autoencoder", "pixelcnn")


def serving_module(run_dir, checkpoint=None, examples=8):
    """``(module, inputs)``: the run's serving module and a fixed batch ``{argument: array}`` to verify it on."""
    task = rundir.require_task(run_dir, TASKS)
    rng = np.random.default_rng(0)
    if task == "gan":
        from cs231n_tf.generative import gan
        from cs231n_tf.generative.task import load_generator

        module = load_generator(run_dir, checkpoint)
        dim = int(module.serve.input_signature[0].shape[-1])
        return module, {"noise": gan.sample_noise(examples, dim, seed=0).numpy()}
    if task == "autoencoder":
        from cs231n_tf.generative.autoencoder import DecoderModule, load_models

        config, _, decoder = load_models(run_dir, checkpoint)
        return DecoderModule(decoder, config.latent_dim), {
            "latent": rng.standard_normal((examples, config.latent_dim)).astype(np.float32)}
    from cs231n_tf.generative.pixelcnn import ConditionalsModule, load_model

    config, model = load_model(run_dir, checkpoint)
    levels = rng.integers(0, config.levels, (examples, *model.input_shape[1:])).astype(np.float32)
    return ConditionalsModule(model), {"levels": levels}


def export(run_dir, out=None, checkpoint=None, format="saved_model", quantize="none", saved_models_root="saved_models"):
    """``out/saved_model/`` or (``format="tflite"``, ``quantize`` none/dynamic/float16) ``out/model.tflite``,
    verified; default ``out``: ``saved_models/<run name>/``. Returns the report (also beside the artifact)."""
    if format not in ("saved_model", "tflite"):
        raise ConfigError(f"format must be saved_model or tflite, got {format!r}")
    if quantize != "none" and format != "tflite":
        raise ConfigError("--quantize applies to --format tflite only")
    module, inputs = serving_module(run_dir, checkpoint)
    out = os.path.abspath(out or os.path.join(saved_models_root, os.path.basename(os.path.normpath(run_dir))))
    if format == "saved_model":
        return export_module(module, os.path.join(out, "saved_model"), inputs)
    return export_signature_tflite(module, module.serve, os.path.join(out, "model.tflite"), inputs, quantize)
