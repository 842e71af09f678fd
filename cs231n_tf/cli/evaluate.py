"""``cs231n-tf evaluate``: a run's loss and accuracy on a split, as JSON."""

DESCRIPTION = "Loss and accuracy of a trained run on its test (or validation) split, as JSON."


def add_arguments(p):
    p.add_argument("--run", required=True, help="run directory written by `train`")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"], help="split to evaluate")
    p.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def run(args):
    import json

    from cs231n_tf.train.evaluate import evaluate_run

    print(json.dumps(evaluate_run(args.run, split=args.split, checkpoint=args.checkpoint), indent=2))
    return 0
