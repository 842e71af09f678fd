"""``cs231n-tf``: train, evaluate, export and inspect models from the shell.

User mistakes (unknown model or data set, bad flag values, a missing or corrupt run directory)
print one line on stderr and exit with code 2; a run stopped by the NaN/Inf guard exits with 3.
"""

import argparse
import contextlib
import os
import sys

EXIT_USAGE = 2
EXIT_NONFINITE = 3
PROG = "cs231n-tf"


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes in one line (no usage dump) with exit code 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


@contextlib.contextmanager
def _quiet_stderr():
    """Mute file descriptor 2 while TensorFlow loads and probes for CUDA.

    TensorFlow's C++ runtime logs start-up chatter (absl banner, 'could not find cuda drivers')
    straight to fd 2 regardless of TF_CPP_MIN_LOG_LEVEL; muting just these phases keeps a user
    mistake to the single line this CLI promises. Python exceptions are reported after restoring.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _model_option(text):
    """``key=value`` with the value parsed as JSON when it can be (numbers, lists, booleans)."""
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _unit_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _step_list(text):
    try:
        steps = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated step numbers, e.g. 32000,48000, got {text!r}") from None
    if any(s < 1 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:])):
        raise argparse.ArgumentTypeError(f"expected strictly increasing positive step numbers, got {text!r}")
    return steps


def _name_list(text):
    return [s.strip() for s in text.split(",") if s.strip()]


# Train flags whose value may change when a run is resumed; any other flag must match the run.
_RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "steps_per_execution")


def _add_train_flags(p):
    g = p.add_argument_group("model and data")
    g.add_argument("--model", help="model name from `cs231n-tf models` (default: small_convnet)")
    g.add_argument("--model-option", action="append", type=_model_option, metavar="KEY=VALUE",
                   help="builder option, repeatable, e.g. --model-option dropout=0.5 --model-option hidden_dims=[64,32]")
    g.add_argument("--dataset", help="digits (default, embedded), mnist, fashion_mnist, cifar10, cifar100, folder:PATH, npz:PATH")
    g.add_argument("--data-dir", help="where tfds data sets live (default $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    g.add_argument("--validation-fraction", type=_non_negative_float, help="share of training data held out (default 0.1)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=_positive_int, help="number of epochs (default 30)")
    g.add_argument("--batch-size", type=_positive_int, help="global batch size, split over replicas (default 64)")
    g.add_argument("--optimizer", help="sgd, momentum, nesterov, adagrad, rmsprop, adam (default), adamw (Keras's); "
                                       "course_sgd, course_momentum, course_nesterov, course_adagrad, course_rmsprop, "
                                       "course_adam (the course's update rules)")
    g.add_argument("--lr", type=_positive_float, help="learning rate, the peak of any schedule (default 1e-3)")
    g.add_argument("--lr-schedule", choices=["constant", "step", "exponential", "cosine"],
                   help="learning-rate schedule over epochs*steps_per_epoch steps (default constant)")
    g.add_argument("--lr-decay-factor", type=_positive_float, help="step schedule: multiply the rate by this (default 0.1)")
    g.add_argument("--lr-decay-epochs", type=_positive_float,
                   help="step schedule: decay every this many epochs (default: at 50%% and 75%% of the run)")
    g.add_argument("--lr-boundaries", type=_step_list, metavar="STEP,STEP,...",
                   help="step schedule: decay at these optimizer steps, e.g. 32000,48000")
    g.add_argument("--lr-final", type=_non_negative_float,
                   help="exponential/cosine schedule: rate at the last step (default lr/100 and 0)")
    g.add_argument("--warmup-epochs", type=_non_negative_float, help="linear warm-up from 0 to --lr (default 0)")
    g.add_argument("--clip-norm", type=_positive_float, help="clip the gradient's global norm to this (tf.clip_by_global_norm)")
    g.add_argument("--clip-value", type=_positive_float, help="clip each gradient element to [-v, v]")
    g.add_argument("--weight-decay", type=_non_negative_float,
                   help="penalty strength wd on kernels, not biases/norms (default 0); see --penalty")
    g.add_argument("--penalty", choices=["l2", "l1", "elastic"],
                   help="l2: 0.5*wd*sum(w^2) (default); l1: wd*sum|w|; elastic: wd*(r*sum|w| + (1-r)*0.5*sum(w^2))")
    g.add_argument("--l1-ratio", type=_unit_float, help="elastic penalty: the L1 share r (default 0.5)")
    g.add_argument("--init", help="kernel initializer: small_random, large_random, xavier, he, xavier_uniform, "
                                  "he_uniform, ... or a Keras initializer name (default: the model's own)")
    g.add_argument("--augment", type=_name_list, metavar="NAME[:V],...",
                   help="training augmentation: flip, crop[:PAD] (default 4), resized_crop[:MIN_AREA], "
                        "color[:STRENGTH], pca_lighting[:SIGMA]; e.g. --augment flip,crop")
    g.add_argument("--preprocessing", choices=["channel", "mean_image"],
                   help="channel: per-channel mean/std (default); mean_image: subtract the per-pixel mean image")
    g.add_argument("--seed", type=_non_negative_int, help="random seed (default 0)")
    g.add_argument("--max-steps", type=_positive_int, help="stop after this many steps (resumable)")
    g = p.add_argument_group("run directory and checkpoints")
    g.add_argument("--out", help="run directory (default runs/<model>-<dataset>-<time>)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    g.add_argument("--checkpoint-every", type=_non_negative_int, help="also checkpoint every N steps (default: each epoch)")
    g.add_argument("--keep-checkpoints", type=_positive_int, help="checkpoints kept (default 3)")
    g.add_argument("--log-every", type=_positive_int, help="TensorBoard scalars every N steps (default 50)")
    g = p.add_argument_group("performance and devices")
    g.add_argument("--xla", action="store_true", default=None, help="compile the train step with XLA (jit_compile)")
    g.add_argument("--mixed-precision", choices=["none", "mixed_float16", "mixed_bfloat16"],
                   help="mixed precision policy (float16 uses dynamic loss scaling)")
    g.add_argument("--strategy", choices=["default", "one_device", "mirrored", "multi_worker", "tpu"],
                   help="tf.distribute strategy (multi_worker reads TF_CONFIG)")
    g.add_argument("--tpu", help="TPU address for --strategy tpu")
    g.add_argument("--steps-per-execution", type=_positive_int, help="train steps per tf.function call (default 1)")
    g.add_argument("--deterministic", action="store_true", default=None, help="enable TensorFlow op determinism")


# Commands that live beside the code they drive. Each module defines ``add_parser(subparsers)``
# (registering one sub-command with the helpers above) and ``run(args) -> int``; it must import only
# the standard library at module level so that `cs231n-tf --help` stays fast.
COMMAND_MODULES = {
    "search": "cs231n_tf.train.search_command",
    "finetune": "cs231n_tf.train.finetune_command",
    "compress": "cs231n_tf.compress.command",
}


def _command_module(name):
    import importlib

    target = COMMAND_MODULES[name]
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        # Only the command's own module (or its package) being absent means "not installed here".
        if exc.name is None or not (target == exc.name or target.startswith(exc.name + ".")):
            raise
        return None


def build_parser():
    parser = _Parser(prog=PROG, description="Stanford CS231n (2017) in TensorFlow: train, evaluate and ship models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("train", help="train a model (no flags: a small CNN on the embedded digits data)",
                       description="Train a model with the package's tf.function training loop. With no flags, trains "
                                   "small_convnet on the embedded digits data (about half a minute on 2 CPU cores).")
    _add_train_flags(p)
    p.add_argument("--sanity-check", action="store_true",
                   help="before training, run lecture 6's sanity checks (initial loss ~ ln C, loss rises with "
                        "regularisation, 50 examples overfit to 100%%); stop with exit code 3 if one fails")

    p = sub.add_parser("evaluate", help="evaluate a run's model on a split",
                       description="Loss and accuracy of a trained run on its test (or validation) split, as JSON.")
    p.add_argument("--run", required=True, help="run directory written by `train`")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--checkpoint", help="checkpoint path (default: the latest)")

    p = sub.add_parser("export", help="export a run as a SavedModel or .tflite",
                       description="Export a run, verify the export on the test split and write a report JSON beside it.")
    p.add_argument("--run", required=True, help="run directory written by `train`")
    p.add_argument("--format", default="saved_model", choices=["saved_model", "tflite"])
    p.add_argument("--quantize", default="none", choices=["none", "dynamic", "float16", "int8"],
                   help="TFLite post-training quantization (int8: full-integer, calibrated on training images)")
    p.add_argument("--out", help="output directory (default saved_models/<run name>/)")
    p.add_argument("--checkpoint", help="checkpoint path (default: the latest)")

    p = sub.add_parser("models", help="list the registered models",
                       description="List the model registry; --table prints the lecture 9 complexity comparison.")
    p.add_argument("--table", action="store_true", help="parameters, multiply-adds and activation memory of every builder")
    p.add_argument("--names", nargs="+", help="restrict --table to these models")
    p.add_argument("--out", default="experiments/out", help="where --table writes its PNG (default experiments/out)")

    p = sub.add_parser("datasets", help="list the data sets and whether they are available offline",
                       description="List data sets; --download fetches a tfds data set (needs network).")
    p.add_argument("--download", metavar="NAME", help="download and prepare this tfds data set")
    p.add_argument("--data-dir", help="tfds data directory")

    for name in COMMAND_MODULES:
        module = _command_module(name)
        if module is not None:
            module.add_parser(sub)
    return parser


def _train_config(args):
    from cs231n_tf.train.config import TrainConfig, load_run_config

    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("command", "out", "resume", "tpu", "sanity_check")}
    given.pop("model_option", None)
    if args.model_option:
        given["model_options"] = dict(args.model_option)
    if given.get("mixed_precision") == "none":
        given["mixed_precision"] = None
    if args.resume:
        if not args.out:
            raise UsageError(f"{PROG} train: --resume needs --out RUN_DIR (the run to continue)")
        saved = TrainConfig.from_json(load_run_config(args.out)["train"])
        conflicts = [k for k, v in given.items() if k not in _RESUMABLE and getattr(saved, k) != v]
        if conflicts:
            raise UsageError(f"{PROG} train: --resume keeps the run's settings; these differ from it: "
                             + ", ".join(f"{k} (run has {getattr(saved, k)!r})" for k in conflicts))
        for k in _RESUMABLE:
            if k in given:
                setattr(saved, k, given[k])
        return saved.validate()
    return TrainConfig(**given).validate()


def _cmd_train(args, strategy):
    from cs231n_tf.train.config import default_run_dir
    from cs231n_tf.train.trainer import Trainer

    config = _train_config(args)
    if getattr(args, "sanity_check", False):
        from cs231n_tf.train.sanity import sanity_check

        report = sanity_check(config, log=print)  # prints each check as it finishes
        if not report.passed:
            print(f"{PROG} train: sanity checks failed; not training (see above)", file=sys.stderr)
            return 3
    run_dir = args.out or default_run_dir(config)
    result = Trainer(config, run_dir, resume=args.resume, strategy=strategy).run()
    m = result.metrics
    print(f"done: test_accuracy={m['test_accuracy']:.4f} steps={m['steps']} wall={m['wall_seconds']:.1f}s "
          f"examples/s={m['examples_per_second']:.0f}")
    print(f"run directory: {result.run_dir}")
    return 0


def _cmd_evaluate(args):
    import json

    from cs231n_tf.train.evaluate import evaluate_run

    print(json.dumps(evaluate_run(args.run, split=args.split, checkpoint=args.checkpoint), indent=2))
    return 0


def _cmd_export(args):
    from cs231n_tf.export import export_run

    r = export_run(args.run, format=args.format, quantize=args.quantize, out=args.out, checkpoint=args.checkpoint)
    print(f"exported {r['format']} ({r['quantize']}) to {r['path']}: {r['size_bytes']} bytes, "
          f"accuracy {r['accuracy']:.4f} (Keras {r['keras_accuracy']:.4f}), max |diff| {r['max_abs_diff']:.3g}")
    print(f"report: {r['path'].rstrip('/')}.report.json")
    return 0


def _cmd_models(args):
    from cs231n_tf import models

    if args.table:
        from cs231n_tf.models import complexity

        rows = complexity.comparison_table(names=args.names)
        print(complexity.format_table(rows))
        print(complexity.vgg16_memory_note())
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "model_complexity.png")
        complexity.plot_comparison(rows, path)
        print(f"plot: {path}")
        return 0
    width = max(len(n) for n in models.list_models())
    for name in models.list_models():
        spec = models.get_spec(name)
        params = f"{spec.reference_params:>12,}" if spec.reference_params else " " * 12
        print(f"{name:<{width}}  {spec.family:<16} {params}  {spec.summary}")
    return 0


def _cmd_datasets(args):
    from cs231n_tf import data

    if args.download:
        from cs231n_tf.data import sources

        if args.download not in sources.TFDS_NAMES:
            raise UsageError(f"{PROG} datasets: --download takes one of {', '.join(sources.TFDS_NAMES)}, got {args.download!r}")
        raw = sources.load_tfds(args.download, data_dir=args.data_dir, download=True)
        print(f"{args.download}: {len(raw.x_train)} train, {len(raw.x_test)} test images in {raw.source}")
        return 0
    for name, kind, status in data.list_datasets(args.data_dir):
        print(f"{name:<14} {kind:<24} {status}")
    return 0


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        with _quiet_stderr():
            import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
            import tensorflow as tf

            strategy = None
            if args.command == "train" and args.strategy in ("multi_worker", "tpu"):
                # Must exist before any other op initialises the runtime.
                from cs231n_tf.train.strategies import make_strategy

                strategy = make_strategy(args.strategy, tpu=args.tpu)
            else:
                tf.config.list_logical_devices()
        from cs231n_tf.errors import Cs231nError, NonFiniteLossError

        try:
            if args.command == "train":
                return _cmd_train(args, strategy)
            if args.command in COMMAND_MODULES:
                return _command_module(args.command).run(args)
            return {"evaluate": _cmd_evaluate, "export": _cmd_export, "models": _cmd_models,
                    "datasets": _cmd_datasets}[args.command](args)
        except NonFiniteLossError as exc:
            print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
            return EXIT_NONFINITE
        except Cs231nError as exc:
            print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
