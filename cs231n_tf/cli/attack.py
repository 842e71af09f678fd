"""``cs231n-tf attack``: robust accuracy of a run or a pretrained model under FGSM/PGD at several eps."""

from cs231n_tf.cli import args as args_lib

DESCRIPTION = ("adversarial robustness of a run or pretrained model: robustness.json/.md, a curve PNG and "
               "clean/perturbation/adversarial triplets")


def add_arguments(parser):
    args_lib.add_source_arguments(parser, "run directory to attack (on its test split or --dataset)")
    parser.add_argument("--method", default="fgsm", choices=("fgsm", "pgd", "linear", "transfer"),
                        help="attack (default: fgsm; linear and transfer are not available from the command line yet)")
    parser.add_argument("--eps", default="0.1,0.2,0.3", help="comma-separated eps in pixel units of [0, 1]")
    parser.add_argument("--steps", type=args_lib.positive_int, default=10, help="PGD iterations")
    parser.add_argument("--limit", type=args_lib.positive_int, default=512, help="attack at most this many examples")
    parser.add_argument("--dataset", help="with --run: a data set spec of the same format")
    parser.add_argument("--out", required=True, help="output directory")


def run(args):
    from cs231n_tf.adversarial.report import attack_report
    from cs231n_tf.errors import ConfigError

    try:
        eps = [float(e) for e in args_lib.name_list(args.eps)]
    except ValueError:
        raise ConfigError(f"eps must be comma-separated numbers, got {args.eps!r}") from None
    curve = attack_report(args.out, run_dir=args.run, model=args.model, weights=args.weights, method=args.method,
                          eps_list=eps, dataset=args.dataset, limit=args.limit, steps=args.steps)
    for c in curve:
        print(f"eps={c['eps']:g} accuracy={c['accuracy']:.4f}")
    return 0
