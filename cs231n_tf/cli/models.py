"""``cs231n-tf models``: the model registry, and lecture 9's complexity table."""

import os

DESCRIPTION = "List the model registry; --table prints the lecture 9 complexity comparison."


def add_arguments(p):
    p.add_argument("--table", action="store_true", help="parameters, multiply-adds and activation memory of every builder")
    p.add_argument("--names", nargs="+", help="restrict --table to these models")
    p.add_argument("--out", default="experiments/out", help="where --table writes its PNG")


def run(args):
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
        weights = f"  [weights: {', '.join(spec.pretrained)}]" if spec.pretrained else ""
        print(f"{name:<{width}}  {spec.family:<16} {params}  {spec.summary}{weights}")
    return 0
