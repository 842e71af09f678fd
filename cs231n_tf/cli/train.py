"""``cs231n-tf train``: train a classifier on the engine; flags come from :class:`TrainConfig`'s fields."""

import sys

from cs231n_tf.cli import args as cli_args
from cs231n_tf.train.config import TrainConfig

DESCRIPTION = ("Train a model with the package's tf.function training loop. With no flags, trains small_convnet on "
               "the embedded digits data (about half a minute on 2 CPU cores).")
# Train flags whose value may change when a run is resumed; any other flag must match the run.
RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "steps_per_execution")


def add_train_flags(parser, help_overrides=None):
    """TrainConfig's flags plus --out, --resume and --tpu (shared with `search`)."""
    cli_args.add_config_flags(parser, TrainConfig, help_overrides=help_overrides)
    g = parser.add_argument_group("run directory")
    g.add_argument("--out", help="run directory (default runs/<model>-<dataset>-<time>)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    parser.add_argument("--tpu", help="TPU address for --strategy tpu")


def add_arguments(parser):
    add_train_flags(parser)
    parser.add_argument("--sanity-check", action="store_true",
                        help="before training, run lecture 6's sanity checks (initial loss ~ ln C, loss rises with "
                             "regularisation, 50 examples overfit to 100%%); stop with exit code 3 if one fails")


def train_config(args):
    """The train flags given in ``args`` as a validated TrainConfig (with --resume: the run's, updated)."""
    from cs231n_tf.train.config import load_run_config

    given = cli_args.config_values(TrainConfig, args)
    if getattr(args, "resume", False):
        if not args.out:
            raise cli_args.UsageError(f"{cli_args.PROG} train: --resume needs --out RUN_DIR (the run to continue)")
        saved = TrainConfig.from_json(load_run_config(args.out)["train"])
        return cli_args.resumed_config(saved, given, RESUMABLE, "train")
    return TrainConfig(**given).validate()


def PREPARE_RUNTIME(args):
    """Multi-worker and TPU strategies must exist before any other op initialises the runtime."""
    import tensorflow as tf

    args.strategy_object = None
    if args.strategy in ("multi_worker", "tpu"):
        from cs231n_tf.train.strategies import make_strategy

        args.strategy_object = make_strategy(args.strategy, tpu=args.tpu)
    else:
        tf.config.list_logical_devices()


def run(args):
    from cs231n_tf.train.config import default_run_dir
    from cs231n_tf.train.trainer import Trainer

    config = train_config(args)
    if args.sanity_check:
        from cs231n_tf.train.sanity import sanity_check

        report = sanity_check(config, log=print)  # prints each check as it finishes
        if not report.passed:
            print(f"{cli_args.PROG} train: sanity checks failed; not training (see above)", file=sys.stderr)
            return 3
    run_dir = args.out or default_run_dir(config)
    result = Trainer(config, run_dir, resume=args.resume, strategy=getattr(args, "strategy_object", None)).run()
    m = result.metrics
    print(f"done: test_accuracy={m['test_accuracy']:.4f} steps={m['steps']} wall={m['wall_seconds']:.1f}s "
          f"examples/s={m['examples_per_second']:.0f}")
    print(f"run directory: {result.run_dir}")
    return 0
