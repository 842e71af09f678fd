"""Lecture 15's quantization table for one CNN: size, accuracy and LiteRT latency of each variant.

    python experiments/quantization_table.py [--model small_convnet] [--epochs 15] [--runs 300]

Trains ``--model`` on the embedded ``digits`` with the package's ``train()``, then builds, in one
run, the ``.tflite`` variants

* float32, float16, dynamic-range and full-integer int8 (post-training, through the exporter's
  ``convert_tflite``; int8 calibrated on 200 training images);
* QAT int8: tfmot quantization-aware fine-tuning (``cs231n_tf.compress.quantization``) then int8;
* pruned + int8: tfmot magnitude pruning to ``--sparsity`` with fine-tuning, stripped, then
  prune-preserving QAT (PQAT) and int8;
* clustered + int8: tfmot weight clustering to ``--clusters`` centroids per layer with fine-tuning,
  stripped, then cluster-preserving QAT (CQAT) and int8;

and measures each with the LiteRT interpreter: file size (and gzip size, which is where pruning and
clustering pay off: a ``.tflite`` stores dense tensors), test accuracy, and the median latency of a
single-image inference at 1 and 2 threads. Prints a markdown table.
"""

import argparse
import gzip
import os
import platform
import sys
import tempfile
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

from cs231n_tf.compress import quantization as quant
from cs231n_tf.compress.distill import fine_tune
from cs231n_tf.train.trainer import train

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import tflite_latency_ms as latency_ms  # noqa: E402


def _copy(model):
    # tfmot's wrappers can rewire the layers of the model they are given (cluster_weights does);
    # hand them a copy so that the float model stays intact for the other rows.
    copy = tf.keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def pruned_model(model, epochs_of, sparsity, epochs, lr):
    """tfmot magnitude pruning at constant ``sparsity``, fine-tuned with ``model.fit`` as tfmot documents."""
    import tensorflow_model_optimization as tfmot

    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(_copy(model), pruning_schedule=schedule)
    wrapped.compile(tf.keras.optimizers.Adam(lr), tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for epoch in range(epochs):
        wrapped.fit(epochs_of(epoch), epochs=1, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def clustered_model(model, epochs_of, clusters, epochs, lr):
    import tensorflow_model_optimization as tfmot

    wrapped = tfmot.clustering.keras.cluster_weights(
        _copy(model), number_of_clusters=clusters,
        cluster_centroids_init=tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS)
    fine_tune(wrapped, epochs_of, epochs, lr)
    return tfmot.clustering.keras.strip_clustering(wrapped)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_convnet")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--clusters", type=int, default=16)
    parser.add_argument("--runs", type=int, default=300, help="timed single-image inferences per variant")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.time()

    run_dir = tempfile.mkdtemp(prefix="quant-table-")
    result = train(run_dir=run_dir, model=args.model, epochs=args.epochs, seed=args.seed, log_every=10_000,
                   lr=3e-3)
    model = result.model
    params = model.count_params()
    from cs231n_tf import data

    ds = data.load("digits", batch_size=64)
    info = ds.info
    epochs_of = lambda e: ds.train_epoch(100 + e, args.seed)  # noqa: E731
    images = ds.to_unit(ds.arrays["x_test"]).numpy()
    labels = ds.arrays["y_test"]
    rep = ds.representative_images(200)
    ft, lr = args.finetune_epochs, 1e-4

    variants = {}
    for q in ("none", "float16", "dynamic", "int8"):
        variants[{"none": "float32"}.get(q, q)] = quant.keras_to_tflite(model, info.mean, info.std, q,
                                                                         rep if q == "int8" else None)
    qat = quant.quantization_aware_training(model, epochs_of, ft, lr)
    variants["QAT int8"] = quant.qat_to_tflite_int8(qat, info.mean, info.std, rep)
    pruned = pruned_model(model, epochs_of, args.sparsity, ft, lr)
    pqat = quant.quantization_aware_training(pruned, epochs_of, 1, lr, preserve="sparsity")
    variants[f"pruned {args.sparsity:.0%} + PQAT int8"] = quant.qat_to_tflite_int8(pqat, info.mean, info.std, rep)
    clustered = clustered_model(model, epochs_of, args.clusters, ft, lr)
    cqat = quant.quantization_aware_training(clustered, epochs_of, 1, lr, preserve="clusters")
    variants[f"clustered k={args.clusters} + CQAT int8"] = quant.qat_to_tflite_int8(cqat, info.mean, info.std, rep)

    keras_acc = float(result.metrics["test_accuracy"])
    base = len(variants["float32"])
    one = images[:1]
    rows = []
    for name, content in variants.items():
        rows.append((name, len(content), len(gzip.compress(content, 9)), base / len(content),
                     quant.tflite_accuracy(content, images, labels),
                     latency_ms(content, one, 1, args.runs), latency_ms(content, one, 2, args.runs)))

    print(f"\nModel `{args.model}` ({params:,} parameters) trained {args.epochs} epochs on digits "
          f"(Keras test accuracy {keras_acc:.4f}, {len(labels)} test images); fine-tuning {ft} epoch(s) at lr {lr:g}.")
    print(f"Machine: {platform.machine()} {os.cpu_count()}-core CPU, Python {platform.python_version()}, "
          f"TF {tf.__version__}; latency = median of {args.runs} single-image LiteRT calls.\n")
    print("| variant | .tflite bytes | gzip bytes | x smaller | test accuracy | latency 1 thread (ms) "
          "| latency 2 threads (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, size, gz, ratio, acc, t1, t2 in rows:
        print(f"| {name} | {size:,} | {gz:,} | {ratio:.2f} | {acc:.4f} | {t1:.4f} | {t2:.4f} |")
    print(f"\nWall time: {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
