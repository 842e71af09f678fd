"""``cs231n-tf compress``: turn a trained run into a smaller ``.tflite`` and measure what it cost.

Stages, in this order, each followed by fine-tuning on the run's training split:
distillation from another run (``--distill-from``), low-rank factorisation (``--lowrank``),
Han et al.'s iterative magnitude pruning (``--prune``), weight clustering (``--clusters``); then
optionally Deep Compression's Huffman coding (``--huffman``), whose payload is decoded back into
the model that is exported; finally quantization (``--quantize``, post-training or QAT) and the
``.tflite`` export, measured with the LiteRT interpreter on the test split.

``--out`` receives ``model.tflite``, ``model.dcz`` (with ``--huffman``) and ``compression.json``.
The directory is assembled in a temporary sibling and renamed into place, and an existing
non-empty ``--out`` is replaced only if it is a previous compress output (has ``compression.json``).

Only the standard library is imported at module level (the CLI imports every command module).
"""

import argparse
import gzip
import os

from cs231n_tf.cli import _non_negative_int, _positive_float, _positive_int

REPORT = "compression.json"
TFLITE = "model.tflite"
PAYLOAD = "model.dcz"
QUANTIZE = ("none", "dynamic", "float16", "int8", "qat")


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def add_parser(subparsers):
    p = subparsers.add_parser(
        "compress", help="prune, cluster, Huffman-code, quantize or distill a run into a small .tflite",
        description="Compress a trained run (lecture 15) and write --out/model.tflite and --out/compression.json "
                    "with the accuracy and size before and after.")
    p.add_argument("--run", required=True, help="run directory written by `train`")
    p.add_argument("--out", required=True, help="output directory (replaced only if it holds a previous compress output)")
    p.add_argument("--prune", type=_number, metavar="SPARSITY", help="target fraction of zero weights in [0, 1)")
    p.add_argument("--prune-rounds", type=_positive_int, default=3, help="prune -> retrain rounds (default 3)")
    p.add_argument("--clusters", type=_integer, metavar="K", help="shared weight values per layer (k >= 2)")
    p.add_argument("--huffman", action="store_true",
                   help="Deep Compression: relative-indexed, Huffman-coded payload (model.dcz), decoded back for export")
    p.add_argument("--quantize", default="none", choices=QUANTIZE,
                   help="TFLite quantization: post-training dynamic/float16/int8, or quantization-aware training (qat)")
    p.add_argument("--lowrank", type=_number, metavar="ENERGY", help="SVD-factorise layers keeping this energy in (0, 1]")
    p.add_argument("--distill-from", metavar="RUN", help="teacher run: distil it into this run's model first")
    # Han et al. retrain to convergence after each pruning step; on the embedded digits a conv net
    # pruned to 80% needs about 6 epochs per round to recover (2 left small_convnet at 78%).
    p.add_argument("--finetune-epochs", type=_non_negative_int, default=6,
                   help="epochs of fine-tuning after each stage (default 6)")
    p.add_argument("--lr", type=_positive_float, default=1e-3,
                   help="fine-tuning learning rate (Adam; clustering uses lr / 10; default 1e-3)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="shuffling seed of the fine-tuning (default 0)")


def _check_args(args):
    """Reject impossible requests before anything is loaded."""
    from cs231n_tf.compress.clustering import check_clusters
    from cs231n_tf.compress.pruning import check_sparsity
    from cs231n_tf.errors import ConfigError

    if args.prune is not None:
        check_sparsity(args.prune, "--prune")
    if args.clusters is not None:
        check_clusters(args.clusters, "--clusters")
    if args.lowrank is not None and not 0.0 < args.lowrank <= 1.0:
        raise ConfigError(f"--lowrank must be a fraction of energy in (0, 1], got {args.lowrank!r}")
    needs_training = [flag for flag, on in (("--prune", args.prune), ("--distill-from", args.distill_from),
                                            ("--quantize qat", args.quantize == "qat")) if on]
    if needs_training and args.finetune_epochs == 0:
        raise ConfigError(f"{', '.join(needs_training)} train the model; --finetune-epochs must be >= 1")
    if args.huffman and args.quantize == "qat":
        raise ConfigError("--huffman with --quantize qat is not possible: QAT changes the weights after they are "
                          "Huffman-coded, so the payload would not describe the exported model")
    out = os.path.abspath(args.out)
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise ConfigError(f"--out {args.out!r} exists and is not a directory")
        if os.listdir(out) and not os.path.isfile(os.path.join(out, REPORT)):
            raise ConfigError(f"--out {args.out!r} is not empty and is not a previous compress output "
                              f"(no {REPORT}); choose another directory")
    for name, path in (("--run", args.run), ("--distill-from", args.distill_from)):
        if path and os.path.abspath(path) == out:
            raise ConfigError(f"--out must differ from {name}")
    return out


def _layer_table(model):
    from cs231n_tf.compress.clustering import cluster_report
    from cs231n_tf.compress.pruning import sparsity_report

    distinct = {r["name"]: r["distinct"] for r in cluster_report(model)}
    rows = sparsity_report(model)["layers"]
    for r in rows:
        r["distinct_values"] = distinct.get(r["name"])
    return rows


def run(args):
    out = _check_args(args)
    import numpy as np

    from cs231n_tf.compress import clustering, deep_compression, pruning
    from cs231n_tf.compress.quantization import keras_to_tflite, qat_to_tflite_int8, tflite_accuracy
    from cs231n_tf.errors import ConfigError
    from cs231n_tf.fileio import AtomicDirectory, atomic_write_bytes, atomic_write_json, confined_path
    from cs231n_tf.train.evaluate import load_run

    loaded = load_run(args.run, float32=True)
    info = loaded.run_config["data"]
    data = loaded.load_data()
    test_images = data.to_unit(data.arrays["x_test"]).numpy()
    test_labels = data.arrays["y_test"]
    representative = data.representative_images()
    original = loaded.model
    epochs, lr, seed = args.finetune_epochs, args.lr, args.seed

    train_ds = pruning.train_epochs(data, seed)

    def say(message):
        print(message, flush=True)

    report = {"run": loaded.run_dir, "checkpoint": loaded.checkpoint, "stages": [], "options": {
        "prune": args.prune, "prune_rounds": args.prune_rounds, "clusters": args.clusters, "huffman": args.huffman,
        "quantize": args.quantize, "lowrank": args.lowrank, "distill_from": args.distill_from,
        "finetune_epochs": epochs, "lr": lr, "seed": seed}}
    report["accuracy_before"] = pruning.accuracy(original, data)
    float_tflite = keras_to_tflite(original, info["mean"], info["std"])
    report["accuracy_before_tflite"] = tflite_accuracy(float_tflite, test_images, test_labels)
    report["float32_tflite_bytes"] = len(float_tflite)
    report["float32_weight_bytes"] = 4 * int(original.count_params())
    report["params_before"] = int(original.count_params())
    model = pruning.copy_model(original)

    if args.distill_from:
        from cs231n_tf.compress.distill import distill

        teacher_run = load_run(args.distill_from, float32=True)
        t_info = teacher_run.run_config["data"]
        if [t_info[k] for k in ("name", "image_shape", "num_classes")] != [info[k] for k in ("name", "image_shape",
                                                                                               "num_classes")]:
            raise ConfigError(f"--distill-from run {args.distill_from!r} was trained on {t_info['name']!r} "
                              f"{t_info['image_shape']}, this run on {info['name']!r} {info['image_shape']}")
        model = distill(teacher_run.model, model, train_ds, epochs, lr=lr)
        report["stages"].append({"stage": "distill", "teacher": teacher_run.run_dir,
                                 "teacher_accuracy": pruning.accuracy(teacher_run.model, data),
                                 "accuracy": pruning.accuracy(model, data)})
        say(f"distilled from {args.distill_from}: accuracy {report['stages'][-1]['accuracy']:.4f}")
    if args.lowrank is not None:
        from cs231n_tf.compress.lowrank import factorize

        model, lowrank_report = factorize(model, args.lowrank)
        pruning.fit(model, data, epochs, lr, seed)
        report["stages"].append({"stage": "lowrank", "report": lowrank_report.to_json(),
                                 "accuracy": pruning.accuracy(model, data)})
        say(f"low rank: {lowrank_report.params_before:,} -> {lowrank_report.params_after:,} parameters, "
            f"accuracy {report['stages'][-1]['accuracy']:.4f}")
    if args.prune is not None and args.prune > 0:
        model, history = pruning.iterative_prune(model, data, args.prune, args.prune_rounds, epochs, lr, seed, say)
        report["stages"].append({"stage": "prune", "rounds": history, "accuracy": pruning.accuracy(model, data)})
    if args.clusters is not None:
        wrapped = clustering.cluster(model, args.clusters, preserve_sparsity=bool(args.prune))
        clustering.fine_tune(wrapped, data, epochs, lr / 10, seed)
        model = clustering.strip_clustering(wrapped)
        report["stages"].append({"stage": "cluster", "clusters": args.clusters,
                                 "accuracy": pruning.accuracy(model, data)})
        say(f"clustered to {args.clusters} values per layer: accuracy {report['stages'][-1]['accuracy']:.4f}")

    blob = None
    if args.huffman:
        encoding = deep_compression.encode_weights(model)
        blob = encoding.blob
        decoded = deep_compression.load_weights(pruning.copy_model(model), blob)
        if not all(np.array_equal(a, b) for a, b in zip(decoded.get_weights(), model.get_weights())):
            raise RuntimeError("the Huffman payload does not decode to the encoded weights")
        model = decoded
        report["layers"] = encoding.rows
        report["accuracy_decoded"] = pruning.accuracy(model, data)
        say(f"Deep Compression payload: {len(blob):,} bytes ({encoding.compression_ratio:.1f}x the float32 weights)")
    else:
        report["layers"] = _layer_table(model)

    report["params_after"] = int(model.count_params())
    if args.quantize == "qat":
        from cs231n_tf.compress.quantization import quantization_aware_training

        preserve = {(True, True): "sparse_clusters", (True, False): "sparsity", (False, True): "clusters"}.get(
            (bool(args.prune), args.clusters is not None))
        model = quantization_aware_training(model, train_ds, epochs, lr / 10, preserve=preserve)
        report["stages"].append({"stage": "qat", "preserve": preserve, "accuracy": pruning.accuracy(model, data)})
        content = qat_to_tflite_int8(model, info["mean"], info["std"], representative)
    else:
        content = keras_to_tflite(model, info["mean"], info["std"], args.quantize,
                                  representative if args.quantize == "int8" else None)
    report["accuracy_tflite"] = tflite_accuracy(content, test_images, test_labels)
    # .tflite stores kernels densely; zeros and shared values pay off only once the file is compressed,
    # so the gzip size (how the tfmot guides measure pruning and clustering) is reported beside it.
    report["tflite_gzip_bytes"] = len(gzip.compress(content, mtime=0))
    report["tflite_bytes"] = len(content)

    if args.huffman:
        report["accuracy_after"] = report["accuracy_decoded"]
        report["size_bytes_before"] = report["float32_weight_bytes"]
        report["size_bytes_after"] = len(blob)
        report["size_basis"] = f"float32 weights / Huffman-coded payload ({PAYLOAD})"
    else:
        report["accuracy_after"] = report["accuracy_tflite"]
        report["size_bytes_before"] = report["float32_tflite_bytes"]
        report["size_bytes_after"] = len(content)
        report["size_basis"] = f"float32 .tflite of the original model / {TFLITE}"
    report["compression_ratio"] = report["size_bytes_before"] / report["size_bytes_after"]
    report["accuracy_lost_points"] = 100.0 * (report["accuracy_before"] - report["accuracy_after"])

    with AtomicDirectory(out) as staging:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700 directories; give the usual permissions
        atomic_write_bytes(confined_path(staging, TFLITE), content)
        if blob is not None:
            atomic_write_bytes(confined_path(staging, PAYLOAD), blob)
        report["files"] = {TFLITE: len(content), **({PAYLOAD: len(blob)} if blob is not None else {})}
        atomic_write_json(confined_path(staging, REPORT), report)
    say(f"accuracy {report['accuracy_before']:.4f} -> {report['accuracy_after']:.4f}, size "
        f"{report['size_bytes_before']:,} -> {report['size_bytes_after']:,} bytes "
        f"({report['compression_ratio']:.1f}x, {report['size_basis']})")
    say(f"wrote {os.path.join(out, TFLITE)} and {os.path.join(out, REPORT)}")
    return 0

