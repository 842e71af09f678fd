"""``cs231n-tf evaluate``: a run's loss and accuracy on a split, as JSON."""

DESCRIPTION = ("Loss and accuracy of a trained run on its test (or validation) split, as JSON. A run of another "
               "task (caption, segment, ...) is evaluated by that family's own `evaluate`, with these flags.")


def add_arguments(p):
    p.add_argument("--run", required=True, help="run directory written by `train`")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"], help="split to evaluate")
    p.add_argument("--checkpoint", help="checkpoint path (default: the latest)")
    p.add_argument("--dataset", metavar="SPEC", help="score all of this data set (same format and classes as "
                   "the run's) instead of a split")


def run(args):
    import json

    from cs231n_tf.cli.main import forward_run
    from cs231n_tf.train.evaluate import evaluate_run

    flags = [f"--{name}={value}" for name, value, default in (
        ("split", args.split, "test"), ("checkpoint", args.checkpoint, None), ("dataset", args.dataset, None))
        if value != default]
    code = forward_run(args.run, "evaluate", flags)
    if code is not None:
        return code
    print(json.dumps(evaluate_run(args.run, split=args.split, checkpoint=args.checkpoint, dataset=args.dataset),
                     indent=2))
    return 0
