"""``cs231n-tf datasets``: the data sets and whether they are available offline."""

from cs231n_tf.cli.args import PROG, UsageError

DESCRIPTION = "List data sets; --download fetches a tfds data set (needs network)."


def add_arguments(p):
    p.add_argument("--download", metavar="NAME", help="download and prepare this tfds data set")
    p.add_argument("--data-dir", help="tfds data directory")


def run(args):
    from cs231n_tf import data

    if args.download:
        from cs231n_tf.data import sources

        if args.download not in sources.TFDS_NAMES:
            raise UsageError(f"{PROG} datasets: --download takes one of {', '.join(sources.TFDS_NAMES)}, "
                             f"got {args.download!r}")
        raw = sources.load_tfds(args.download, data_dir=args.data_dir, download=True)
        print(f"{args.download}: {len(raw.x_train)} train, {len(raw.x_test)} test images in {raw.source}")
        return 0
    for name, kind, status in data.list_datasets(args.data_dir):
        print(f"{name:<14} {kind:<24} {status}")
    return 0
