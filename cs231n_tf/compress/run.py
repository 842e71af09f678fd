"""The compression pipeline as a library function: :class:`CompressConfig` and :func:`compress_run`.

Stages, in this order, each followed by fine-tuning on the run's training split: distillation from
another run (``distill_from``), low-rank factorisation (``lowrank``), Han et al.'s iterative
magnitude pruning (``prune``), weight clustering (``clusters``); then optionally Deep Compression's
Huffman coding (``huffman``), whose payload is decoded back into the model that is exported;
finally quantization (``quantize``, post-training or QAT) and the ``.tflite`` export, measured with
the LiteRT interpreter on the test split.

``out`` receives ``model.tflite``, ``model.dcz`` (with ``huffman``) and ``compression.json``. The
directory is assembled in a temporary sibling and renamed into place, and an existing non-empty
``out`` is replaced only if it is a previous compress output (has ``compression.json``).

Only the standard library is imported at module level (the CLI imports every command module).
"""

import dataclasses
import gzip
import os

REPORT = "compression.json"
TFLITE = "model.tflite"
PAYLOAD = "model.dcz"
QUANTIZE = ("none", "dynamic", "float16", "int8", "qat")


@dataclasses.dataclass
class CompressConfig:
    """What :func:`compress_run` does to a run; the defaults change nothing but fine-tune nothing either."""

    prune: float = dataclasses.field(default=None, metadata={
        "help": "target fraction of zero weights in [0, 1)"})
    prune_rounds: int = dataclasses.field(default=3, metadata={"help": "prune -> retrain rounds"})
    clusters: int = dataclasses.field(default=None, metadata={
        "help": "shared weight values per layer (k >= 2)"})
    huffman: bool = dataclasses.field(default=False, metadata={
        "help": "Deep Compression: relative-indexed, Huffman-coded payload (model.dcz), decoded back for export"})
    quantize: str = dataclasses.field(default="none", metadata={
        "choices": QUANTIZE,
        "help": "TFLite quantization: post-training dynamic/float16/int8, or quantization-aware training (qat)"})
    lowrank: float = dataclasses.field(default=None, metadata={
        "help": "SVD-factorise layers keeping this energy in (0, 1]"})
    distill_from: str = dataclasses.field(default=None, metadata={
        "help": "teacher run: distil it into this run's model first"})
    # Han et al. retrain to convergence after each pruning step; on the embedded digits a conv net
    # pruned to 80% needs about 6 epochs per round to recover (2 left small_convnet at 78%).
    finetune_epochs: int = dataclasses.field(default=6, metadata={
        "help": "epochs of fine-tuning after each stage"})
    lr: float = dataclasses.field(default=1e-3, metadata={
        "help": "fine-tuning learning rate (Adam; clustering uses lr / 10)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "shuffling seed of the fine-tuning"})

    def validate(self):
        """Reject impossible requests before anything is loaded; returns ``self``."""
        import numbers

        from cs231n_tf.errors import ConfigError
        from cs231n_tf.validation import one_of, positive_int, positive_number

        # pruning and clustering import tensorflow-model-optimization: only when their value is set.
        if self.prune is not None:
            from cs231n_tf.compress.pruning import check_sparsity

            if isinstance(self.prune, bool) or not isinstance(self.prune, numbers.Real):
                raise ConfigError(f"prune must be a number in [0, 1), got {self.prune!r}")
            check_sparsity(self.prune, "prune")
        positive_int("prune_rounds", self.prune_rounds)
        if self.clusters is not None:
            from cs231n_tf.compress.clustering import check_clusters

            check_clusters(self.clusters, "clusters")
        if not isinstance(self.huffman, bool):
            raise ConfigError(f"huffman must be True or False, got {self.huffman!r}")
        one_of("quantize", self.quantize, QUANTIZE)
        if self.lowrank is not None and not 0.0 < positive_number("lowrank", self.lowrank) <= 1.0:
            raise ConfigError(f"lowrank must be a fraction of energy in (0, 1], got {self.lowrank!r}")
        if self.distill_from is not None and not isinstance(self.distill_from, (str, os.PathLike)):
            raise ConfigError(f"distill_from must be a run directory path, got {self.distill_from!r}")
        positive_int("finetune_epochs", self.finetune_epochs, allow_zero=True)
        positive_number("lr", self.lr)
        positive_int("seed", self.seed, allow_zero=True)
        needs_training = [name for name, on in (("prune", self.prune), ("distill_from", self.distill_from),
                                                ("quantize='qat'", self.quantize == "qat")) if on]
        if needs_training and self.finetune_epochs == 0:
            raise ConfigError(f"{', '.join(needs_training)} train the model; finetune_epochs must be >= 1")
        if self.huffman and self.quantize == "qat":
            raise ConfigError("huffman with quantize='qat' is not possible: QAT changes the weights after they are "
                              "Huffman-coded, so the payload would not describe the exported model")
        return self

    def to_json(self):
        """The fields as a JSON-ready dict (``distill_from`` as a plain string)."""
        data = dataclasses.asdict(self)
        if data["distill_from"] is not None:
            data["distill_from"] = os.fspath(data["distill_from"])
        return data


def _check_out(run_dir, config, out):
    """``out`` as an absolute path, refusing a directory that is not a previous compress output."""
    from cs231n_tf.errors import ConfigError

    shown = os.fspath(out)
    out = os.path.abspath(out)
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise ConfigError(f"out {shown!r} exists and is not a directory")
        if os.listdir(out) and not os.path.isfile(os.path.join(out, REPORT)):
            raise ConfigError(f"out {shown!r} is not empty and is not a previous compress output "
                              f"(no {REPORT}); choose another directory")
    for name, path in (("run_dir", run_dir), ("distill_from", config.distill_from)):
        if path and os.path.abspath(path) == out:
            raise ConfigError(f"out must differ from {name}")
    return out


def _layer_table(model):
    from cs231n_tf.compress.clustering import cluster_report
    from cs231n_tf.compress.pruning import sparsity_report

    distinct = {r["name"]: r["distinct"] for r in cluster_report(model)}
    rows = sparsity_report(model)["layers"]
    for r in rows:
        r["distinct_values"] = distinct.get(r["name"])
    return rows


def compress_run(run_dir, config, out, log=print):
    """Compress the trained run in ``run_dir`` as ``config`` asks and write ``out``; returns the report.

    ``out`` receives ``model.tflite``, ``model.dcz`` (with ``config.huffman``) and
    ``compression.json`` (the returned dict). ``log`` receives one line per finished stage.
    Impossible requests raise :class:`~cs231n_tf.errors.ConfigError` before anything is loaded.
    """
    if config is None:
        config = CompressConfig()
    if not isinstance(config, CompressConfig):
        from cs231n_tf.errors import InputTypeError

        raise InputTypeError(f"config must be a CompressConfig, got {type(config).__name__}")
    config.validate()
    out = _check_out(run_dir, config, out)
    import numpy as np

    from cs231n_tf.compress import clustering, deep_compression, pruning
    from cs231n_tf.compress.quantization import keras_to_tflite, qat_to_tflite_int8, tflite_accuracy
    from cs231n_tf.errors import ConfigError
    from cs231n_tf.fileio import AtomicDirectory, atomic_write_bytes, atomic_write_json, confined_path
    from cs231n_tf.train.evaluate import load_run

    loaded = load_run(run_dir, float32=True)
    info = loaded.run_config["data"]
    data = loaded.load_data()
    test_images = data.to_unit(data.arrays["x_test"]).numpy()
    test_labels = data.arrays["y_test"]
    representative = data.representative_images()
    original = loaded.model
    epochs, lr, seed = config.finetune_epochs, config.lr, config.seed

    train_ds = pruning.train_epochs(data, seed)

    report = {"run": loaded.run_dir, "checkpoint": loaded.checkpoint, "stages": [], "options": config.to_json()}
    report["accuracy_before"] = pruning.accuracy(original, data)
    float_tflite = keras_to_tflite(original, info["mean"], info["std"])
    report["accuracy_before_tflite"] = tflite_accuracy(float_tflite, test_images, test_labels)
    report["float32_tflite_bytes"] = len(float_tflite)
    report["float32_weight_bytes"] = 4 * int(original.count_params())
    report["params_before"] = int(original.count_params())
    model = pruning.copy_model(original)

    if config.distill_from:
        from cs231n_tf.compress.distill import distill

        teacher_run = load_run(config.distill_from, float32=True)
        t_info = teacher_run.run_config["data"]
        if [t_info[k] for k in ("name", "image_shape", "num_classes")] != [info[k] for k in ("name", "image_shape",
                                                                                               "num_classes")]:
            raise ConfigError(f"distill_from run {os.fspath(config.distill_from)!r} was trained on "
                              f"{t_info['name']!r} {t_info['image_shape']}, this run on {info['name']!r} "
                              f"{info['image_shape']}")
        model = distill(teacher_run.model, model, train_ds, epochs, lr=lr)
        report["stages"].append({"stage": "distill", "teacher": teacher_run.run_dir,
                                 "teacher_accuracy": pruning.accuracy(teacher_run.model, data),
                                 "accuracy": pruning.accuracy(model, data)})
        log(f"distilled from {os.fspath(config.distill_from)}: accuracy {report['stages'][-1]['accuracy']:.4f}")
    if config.lowrank is not None:
        from cs231n_tf.compress.lowrank import factorize

        model, lowrank_report = factorize(model, config.lowrank)
        pruning.fit(model, data, epochs, lr, seed)
        report["stages"].append({"stage": "lowrank", "report": lowrank_report.to_json(),
                                 "accuracy": pruning.accuracy(model, data)})
        log(f"low rank: {lowrank_report.params_before:,} -> {lowrank_report.params_after:,} parameters, "
            f"accuracy {report['stages'][-1]['accuracy']:.4f}")
    if config.prune is not None and config.prune > 0:
        model, history = pruning.iterative_prune(model, data, config.prune, config.prune_rounds, epochs, lr, seed,
                                                 log)
        report["stages"].append({"stage": "prune", "rounds": history, "accuracy": pruning.accuracy(model, data)})
    if config.clusters is not None:
        wrapped = clustering.cluster(model, config.clusters, preserve_sparsity=bool(config.prune))
        clustering.fine_tune(wrapped, data, epochs, lr / 10, seed)
        model = clustering.strip_clustering(wrapped)
        report["stages"].append({"stage": "cluster", "clusters": config.clusters,
                                 "accuracy": pruning.accuracy(model, data)})
        log(f"clustered to {config.clusters} values per layer: accuracy {report['stages'][-1]['accuracy']:.4f}")

    blob = None
    if config.huffman:
        encoding = deep_compression.encode_weights(model)
        blob = encoding.blob
        decoded = deep_compression.load_weights(pruning.copy_model(model), blob)
        if not all(np.array_equal(a, b) for a, b in zip(decoded.get_weights(), model.get_weights())):
            raise RuntimeError("the Huffman payload does not decode to the encoded weights")
        model = decoded
        report["layers"] = encoding.rows
        report["accuracy_decoded"] = pruning.accuracy(model, data)
        log(f"Deep Compression payload: {len(blob):,} bytes ({encoding.compression_ratio:.1f}x the float32 weights)")
    else:
        report["layers"] = _layer_table(model)

    report["params_after"] = int(model.count_params())
    if config.quantize == "qat":
        from cs231n_tf.compress.quantization import quantization_aware_training

        preserve = {(True, True): "sparse_clusters", (True, False): "sparsity", (False, True): "clusters"}.get(
            (bool(config.prune), config.clusters is not None))
        model = quantization_aware_training(model, train_ds, epochs, lr / 10, preserve=preserve)
        report["stages"].append({"stage": "qat", "preserve": preserve, "accuracy": pruning.accuracy(model, data)})
        content = qat_to_tflite_int8(model, info["mean"], info["std"], representative)
    else:
        content = keras_to_tflite(model, info["mean"], info["std"], config.quantize,
                                  representative if config.quantize == "int8" else None)
    report["accuracy_tflite"] = tflite_accuracy(content, test_images, test_labels)
    # .tflite stores kernels densely; zeros and shared values pay off only once the file is compressed,
    # so the gzip size (how the tfmot guides measure pruning and clustering) is reported beside it.
    report["tflite_gzip_bytes"] = len(gzip.compress(content, mtime=0))
    report["tflite_bytes"] = len(content)

    if config.huffman:
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
    return report
