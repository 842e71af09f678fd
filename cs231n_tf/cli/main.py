"""``cs231n-tf``: train, evaluate, export, search and compress models from the shell.

The command table maps each command to its module and one line of help; a module is imported only
when its command runs (or its ``--help`` is asked for), and imports the library only inside ``run``,
so ``cs231n-tf --help`` lists every family without loading TensorFlow. A command module defines
``DESCRIPTION``, ``add_arguments(parser)`` and ``run(args) -> int``.

User mistakes (unknown model or data set, bad flag values, a missing or corrupt run directory)
print one line on stderr and exit with code 2; a run stopped by the NaN/Inf guard exits with 3.
"""

import contextlib
import importlib
import os
import sys

from cs231n_tf.cli.args import PROG, Parser, UsageError

EXIT_USAGE = 2
EXIT_NONFINITE = 3

# name -> (module, one-line help). Application families add their commands here.
COMMANDS = {
    "train": ("cs231n_tf.cli.train", "train a model (no flags: a small CNN on the embedded digits data)"),
    "evaluate": ("cs231n_tf.cli.evaluate", "evaluate a run's model on a split"),
    "export": ("cs231n_tf.cli.export", "export a run as a SavedModel or .tflite"),
    "search": ("cs231n_tf.cli.search", "hyperparameter search on an Optuna study (random, grid, TPE; coarse to fine)"),
    "predict": ("cs231n_tf.cli.predict", "top-k classes of image files, from a run or a pretrained model (efficientnet_lite0)"),
    "finetune": ("cs231n_tf.cli.finetune", "transfer a trained run to a new data set (new head, then fine-tune the top)"),
    "compress": ("cs231n_tf.cli.compress", "prune, cluster, Huffman-code, quantize or distill a run into a small .tflite"),
    "models": ("cs231n_tf.cli.models", "list the registered models"),
    "datasets": ("cs231n_tf.cli.datasets", "list the data sets and whether they are available offline"),
    "charrnn": ("cs231n_tf.cli.charrnn", "character-level language model: train on a text, sample from a run"),
    "caption": ("cs231n_tf.cli.caption", "image captioning with attention: train, evaluate (BLEU), predict, export"),
    "rl": ("cs231n_tf.cli.rl", "reinforcement learning on gymnasium: plan an MDP, train a DQN, evaluate a run"),
    "segment": ("cs231n_tf.cli.segment", "semantic segmentation: FCN/U-Net with every upsampling; train, evaluate (mIoU), predict, export"),
    "localize": ("cs231n_tf.cli.localize", "classification + localization: class and box (and keypoints) of one object; train, evaluate, predict"),
    "generate": ("cs231n_tf.cli.generate", "GANs (course GAN, LSGAN, DCGAN, WGAN-GP): train on digits, sample a PNG grid from a run"),
    "viz": ("cs231n_tf.cli.viz", "visualize a classifier: filters, activations, saliency, Grad-CAM, occlusion, class viz, fooling, DeepDream, inversion, t-SNE"),
    "style": ("cs231n_tf.cli.style", "style transfer: optimisation (Adam/L-BFGS), train a fast feed-forward stylizer, apply it"),
    "attack": ("cs231n_tf.cli.attack", "adversarial robustness (FGSM/PGD) of a run or efficientnet_lite0: table, curve, examples"),
    "detect": ("cs231n_tf.cli.detect", "object detection: single-shot detector with FPN and focal loss; train, evaluate (COCO AP), predict, export"),
}

# A run's task (config.json "task") -> the command family whose verbs open it; the generic
# `evaluate --run` and `export --run` hand such runs to that family's verb of the same name.
TASK_COMMANDS = {
    "caption": "caption",
    "segmentation": "segment",
    "localization": "localize",
    "charrnn": "charrnn",
    "gan": "generate",
    "fast_style": "style",
    "autoencoder": "generate",
    "pixelcnn": "generate",
    "rl_dqn": "rl",
    "rl_pg": "rl",
    "detection": "detect",
}


def forward_run(run_dir, verb, argv):
    """Run ``cs231n-tf FAMILY VERB --run RUN ARGV`` for a non-classification run; None for classification.

    Returns the exit code. A task whose family has no such verb is a one-line usage error that
    names the verbs it does have.
    """
    from cs231n_tf.engine import rundir

    task = rundir.task_name(run_dir)
    if task == "classification":
        return None
    family = TASK_COMMANDS.get(task)
    if family is None:
        raise UsageError(f"{PROG} {verb}: no command opens {task!r} runs")
    verbs = _verbs(family)
    if verb not in verbs:
        raise UsageError(f"{PROG} {verb}: a {task!r} run has no {verb}; its command is `{PROG} {family}` "
                         f"({'|'.join(verbs)})")
    return main([family, verb, "--run", run_dir, *argv])


def _verbs(family):
    import argparse

    parser = Parser(prog=f"{PROG} {family}")
    command_module(family).add_arguments(parser)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


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


def command_module(name):
    return importlib.import_module(COMMANDS[name][0])


def build_parser(commands=None):
    """The parser, with the arguments of ``commands`` (default: all) and a one-line entry for the rest."""
    parser = Parser(prog=PROG, description="Stanford CS231n (2017) in TensorFlow: train, evaluate and ship models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name, (_, help_text) in COMMANDS.items():
        if commands is not None and name not in commands:
            sub.add_parser(name, help=help_text)
            continue
        module = command_module(name)
        p = sub.add_parser(name, help=help_text, description=getattr(module, "DESCRIPTION", help_text))
        module.add_arguments(p)
    return parser


def _chosen(argv):
    for item in argv:
        if not item.startswith("-"):
            return item if item in COMMANDS else None
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        chosen = _chosen(argv)
        # A command module may import TensorFlow (its config dataclass lives in the library).
        with _quiet_stderr():
            parser = build_parser(commands=() if chosen is None else (chosen,))
        args = parser.parse_args(argv)
        module = command_module(args.command)
        with _quiet_stderr():
            import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
            import tensorflow as tf

            if getattr(module, "PREPARE_RUNTIME", None):
                module.PREPARE_RUNTIME(args)  # e.g. a multi-worker strategy, before any op runs
            else:
                tf.config.list_logical_devices()
        from cs231n_tf.errors import Cs231nError, NonFiniteLossError

        try:
            return module.run(args)
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
