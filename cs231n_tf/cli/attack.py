"""``cs231n-tf attack``: robust accuracy of a run or a pretrained model at several eps.

White box: FGSM, PGD, and the linear attack on a linear classifier; black box: Papernot et al.'s
substitute (transfer) attack on a run. The work is :func:`cs231n_tf.adversarial.report.attack_report`.
"""

from cs231n_tf.cli import args as args_lib

DESCRIPTION = ("adversarial robustness of a run or pretrained model: robustness.json/.md, a curve PNG and "
               "clean/perturbation/adversarial triplets")


def add_arguments(parser):
    args_lib.add_source_arguments(parser, "run directory to attack (on its test split or --dataset)")
    parser.add_argument("--method", default="fgsm", choices=("fgsm", "pgd", "linear", "transfer"),
                        help="fgsm, pgd (white box), linear (a linear classifier's weight templates) or transfer "
                             "(black box: Papernot et al.'s substitute attack on a run; default: fgsm)")
    parser.add_argument("--eps", default="0.1,0.2,0.3", help="comma-separated eps in pixel units of [0, 1]")
    parser.add_argument("--steps", type=args_lib.positive_int, default=10, help="PGD iterations")
    parser.add_argument("--limit", type=args_lib.positive_int, default=512, help="attack at most this many examples")
    parser.add_argument("--dataset", help="with --run: a data set spec of the same format")
    parser.add_argument("--target", type=args_lib.non_negative_int,
                        help="linear: the class to push towards (unset: each example's runner-up class)")
    transfer = parser.add_argument_group("transfer attack")
    transfer.add_argument("--substitute", type=args_lib.name_list, default=["two_layer_net"],
                          help="registry model(s) trained as the substitute; several = an ensemble (Liu et al.)")
    transfer.add_argument("--rounds", type=args_lib.positive_int, default=4,
                          help="substitute training rounds (queries double each round)")
    transfer.add_argument("--seed-size", type=args_lib.positive_int, default=150,
                          help="test images the attacker starts from (not attacked)")
    parser.add_argument("--out", required=True, help="output directory")


def run(args):
    from cs231n_tf.adversarial.report import attack_report
    from cs231n_tf.errors import ConfigError

    try:
        eps = [float(e) for e in args_lib.name_list(args.eps)]
    except ValueError:
        raise ConfigError(f"eps must be comma-separated numbers, got {args.eps!r}") from None
    curve = attack_report(args.out, run_dir=args.run, model=args.model, weights=args.weights, method=args.method,
                          eps_list=eps, dataset=args.dataset, limit=args.limit, steps=args.steps,
                          target=args.target, substitutes=args.substitute, rounds=args.rounds,
                          seed_size=args.seed_size, log=print)
    for c in curve:
        print(f"eps={c['eps']:g} accuracy={c['accuracy']:.4f}")
    return 0
