"""The ``cs231n-tf`` command line (entry point ``cs231n_tf.cli:main``); see :mod:`cs231n_tf.cli.main`.

The library never imports this package (a test enforces it): commands drive the library, not the
other way round.
"""

from cs231n_tf.cli.args import UsageError  # noqa: F401
from cs231n_tf.cli.main import COMMANDS, EXIT_NONFINITE, EXIT_USAGE, PROG, build_parser, main  # noqa: F401


def _train_config(args):
    """The train flags in ``args`` as a validated TrainConfig (kept for callers of the old module)."""
    from cs231n_tf.cli.train import train_config

    return train_config(args)
