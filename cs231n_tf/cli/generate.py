"""``cs231n-tf generate``: GANs (lecture 13): ``train`` one into --out, ``sample`` a PNG grid from a run.

``--model`` picks the course's recipes: ``gan`` (the course's loss, fully connected nets),
``lsgan`` (least squares, fully connected), ``dcgan`` (Radford et al.'s DCGAN at the data's
size) and ``wgan_gp`` (Wasserstein loss with gradient penalty, DCGAN critic with layer norm);
``--arch`` overrides the networks (``fc``/``dc``: the course's 28x28 ones). The other train
flags come from :class:`~cs231n_tf.generative.task.GANConfig`; the work is
:func:`cs231n_tf.generative.task.train` and :func:`~cs231n_tf.generative.task.sample`.
"""

from cs231n_tf.cli import args as cli_args

DESCRIPTION = ("Generative adversarial networks on the engine (default data: the embedded digits resized to 28x28): "
               "train a GAN, LSGAN, DCGAN or WGAN-GP, or write a grid of samples from a trained run.")
# --model -> (loss, networks)
RECIPES = {"gan": ("gan", "fc"), "lsgan": ("lsgan", "fc"), "dcgan": ("gan", "dcgan"), "wgan_gp": ("wgan_gp", "dcgan")}
RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "steps_per_execution",
             "sample_every", "sample_count")


def add_arguments(p):
    from cs231n_tf.generative.task import MODELS, GANConfig

    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    train = verbs.add_parser("train", help="train a GAN into --out (or continue it with --resume)",
                             description="Train a GAN on the engine: checkpoints, exact resume, TensorBoard logs, "
                                         "d_loss/g_loss in metrics.json, sample grids in --out/samples/.")
    train.add_argument("--model", choices=sorted(RECIPES), default="gan",
                       help="recipe: gan, lsgan (course, fc nets), dcgan, wgan_gp (DCGAN nets)")
    train.add_argument("--arch", choices=MODELS, help="networks, overriding the recipe's (fc, dc: 28x28 only)")
    cli_args.add_config_flags(train, GANConfig, skip=("model", "loss"))
    g = train.add_argument_group("run directory")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    sample = verbs.add_parser("sample", help="write a PNG grid of a trained run's samples",
                              description="Generate --num images from a GAN run and write --out/samples.png.")
    sample.add_argument("--run", required=True, help="run directory written by `generate train`")
    sample.add_argument("--num", type=cli_args.positive_int, default=36, help="images to generate")
    sample.add_argument("--out", required=True, help="output directory for samples.png")
    sample.add_argument("--seed", type=cli_args.non_negative_int, default=0, help="noise seed")
    sample.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def train_config(args):
    from cs231n_tf.generative.task import GANConfig, load_run_config

    given = cli_args.config_values(GANConfig, args, skip=("model", "loss"))
    loss, arch = RECIPES[args.model]
    given.update(loss=loss, model=args.arch or arch)
    if args.resume:
        saved, _ = load_run_config(args.out)
        return cli_args.resumed_config(saved, given, RESUMABLE, "generate train")
    return GANConfig(**given).validate()


def run(args):
    if args.verb == "sample":
        from cs231n_tf.generative.task import sample

        print(sample(args.run, args.num, args.out, seed=args.seed, checkpoint=args.checkpoint))
        return 0

    from cs231n_tf.generative.task import train

    result = train(train_config(args), args.out, resume=args.resume, log=lambda message: print(message, flush=True))
    m = result.metrics
    last = m["history"][-1] if m["history"] else {}
    print(f"done: d_loss={last.get('train_d_loss', float('nan')):.4f} g_loss={last.get('train_g_loss', float('nan')):.4f} "
          f"steps={m['steps']} wall={m['wall_seconds']:.1f}s")
    print(f"run directory: {result.run_dir}")
    return 0
