"""``cs231n-tf generate``: lecture 13's generative models: ``train`` one into --out, ``sample`` a PNG grid from a run.

``--model`` picks the recipe. GANs: ``gan`` (the course's loss, fully connected nets), ``lsgan``
(least squares, fully connected), ``dcgan`` (Radford et al.'s DCGAN at the data's size) and
``wgan_gp`` (Wasserstein loss with gradient penalty, DCGAN critic with layer norm); ``--arch``
overrides the GAN's networks (``fc``/``dc``: the course's 28x28 ones). Likelihood models: ``ae``
(conv autoencoder), ``vae`` (conv VAE, Bernoulli likelihood) and ``pixelcnn``. The train flags come
from the recipe's config (:class:`~cs231n_tf.generative.task.GANConfig`,
:class:`~cs231n_tf.generative.autoencoder.AutoencoderConfig`,
:class:`~cs231n_tf.generative.pixelcnn.PixelCNNConfig`); a flag of another family is a one-line
error. ``sample`` opens a run of any of these tasks and calls its library ``sample``; ``export``
writes its serving module (:mod:`cs231n_tf.generative.export`).
"""

from cs231n_tf.cli import args as cli_args
from cs231n_tf.cli.args import PROG, UsageError

DESCRIPTION = ("Lecture 13's generative models on the engine: train a GAN, LSGAN, DCGAN, WGAN-GP, autoencoder, VAE "
               "or PixelCNN, or write a grid of samples from a trained run.")
# GAN --model -> (loss, networks)
RECIPES = {"gan": ("gan", "fc"), "lsgan": ("lsgan", "fc"), "dcgan": ("gan", "dcgan"), "wgan_gp": ("wgan_gp", "dcgan")}
# --model -> the task that trains it
TASK_OF = {**{name: "gan" for name in RECIPES}, "ae": "autoencoder", "vae": "autoencoder", "pixelcnn": "pixelcnn"}
MODULES = {"gan": "cs231n_tf.generative.task", "autoencoder": "cs231n_tf.generative.autoencoder",
           "pixelcnn": "cs231n_tf.generative.pixelcnn"}
RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "steps_per_execution",
             "sample_every", "sample_count")
# Fields the families share with different defaults: the help names both.
SHARED_HELP = {
    "epochs": "passes over the training images (gan: 10; ae, vae, pixelcnn: 20)",
    "batch_size": "images per step (gan: 128 real and as many generated; ae, vae, pixelcnn: 64)",
    "data": "images: digits (embedded 8x8), digits28 (resized to 28x28), npz:PATH, folder:PATH or a tfds name "
            "(gan: digits28; ae, vae, pixelcnn: digits)",
    "lr": "Adam learning rate (gan: of both players, the course's 1e-3)",
    "filters": "ae/vae: filters of the first conv (32); pixelcnn: feature maps of every masked conv (64)",
}


def _module(task):
    import importlib

    return importlib.import_module(MODULES[task])


def _config_classes():
    from cs231n_tf.generative.autoencoder import AutoencoderConfig
    from cs231n_tf.generative.pixelcnn import PixelCNNConfig
    from cs231n_tf.generative.task import GANConfig

    return {"gan": GANConfig, "autoencoder": AutoencoderConfig, "pixelcnn": PixelCNNConfig}


def _flag_names(cls):
    return {f.name for f in cli_args.flag_fields(cls, skip=("model", "loss"))}


def add_arguments(p):
    from cs231n_tf.generative.task import MODELS

    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    train = verbs.add_parser("train", help="train a generative model into --out (or continue it with --resume)",
                             description="Train a generative model on the engine: checkpoints, exact resume, "
                                         "TensorBoard logs, metrics.json (frechet_distance for GANs, "
                                         "test_bits_per_dim for the VAE and PixelCNN), sample grids in --out/samples/.")
    train.add_argument("--model", choices=sorted(TASK_OF),
                       help="recipe: gan, lsgan (course, fc nets), dcgan, wgan_gp (DCGAN nets), ae, vae, pixelcnn "
                            "(default: gan; with --resume: the run's)")
    train.add_argument("--arch", choices=MODELS, help="GAN networks, overriding the recipe's (fc, dc: 28x28 only)")
    added = set()
    for cls in _config_classes().values():
        cli_args.add_config_flags(train, cls, skip=("model", "loss", *added), help_overrides=SHARED_HELP)
        added |= _flag_names(cls)
    g = train.add_argument_group("run directory")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    sample = verbs.add_parser("sample", help="write a PNG grid of a trained run's samples",
                              description="Generate --num images from a GAN, VAE or PixelCNN run and write "
                                          "--out/samples.png (a VAE also writes interpolation.png and, with a 2-D "
                                          "latent, manifold.png).")
    sample.add_argument("--run", required=True, help="run directory written by `generate train`")
    sample.add_argument("--num", type=cli_args.positive_int, default=36, help="images to generate")
    sample.add_argument("--out", required=True, help="output directory for samples.png")
    sample.add_argument("--seed", type=cli_args.non_negative_int, default=0, help="noise seed")
    sample.add_argument("--checkpoint", help="checkpoint path (default: the latest)")
    sample.add_argument("--neighbours", type=cli_args.non_negative_int, default=0, metavar="K",
                        help="also write neighbours.png: each sample beside its K nearest training images (default: 0)")
    export = verbs.add_parser("export", help="export a run's generator/decoder/conditionals (SavedModel, TFLite)",
                              description="Export a run's serving module, verified after reloading: a GAN's "
                                          "generator (noise -> images), an autoencoder's decoder (latent -> images), a "
                                          "PixelCNN's conditionals (levels -> log_probs).")
    export.add_argument("--run", required=True, help="run directory written by `generate train`")
    export.add_argument("--out", help="output directory (default: saved_models/<run name>/)")
    export.add_argument("--checkpoint", help="checkpoint path (default: the latest)")
    export.add_argument("--format", default="saved_model", choices=["saved_model", "tflite"],
                        help="saved_model: OUT/saved_model/; tflite: OUT/model.tflite (verified with LiteRT)")
    export.add_argument("--quantize", default="none", choices=["none", "dynamic", "float16"],
                        help="TFLite post-training quantization")


def train_config(args):
    """``(task name, validated config)`` from the train flags (and the run's config with --resume)."""
    from cs231n_tf.engine import rundir

    classes = _config_classes()
    if args.resume:
        task = rundir.require_task(args.out, tuple(classes))
        if args.model is not None and TASK_OF[args.model] != task:
            raise UsageError(f"{PROG} generate train: --model {args.model} cannot resume a {task!r} run")
    else:
        task = TASK_OF[args.model or "gan"]
    cls = classes[task]
    stray = sorted(name for cls_other in classes.values() for name in _flag_names(cls_other) - _flag_names(cls)
                   if getattr(args, name, None) is not None)
    if args.arch is not None and task != "gan":
        stray.insert(0, "arch")
    if stray:
        raise UsageError(f"{PROG} generate train: {', '.join('--' + s.replace('_', '-') for s in stray)} "
                         f"{'does' if len(stray) == 1 else 'do'} not apply to {task} models")
    given = cli_args.config_values(cls, args, skip=("model", "loss"))
    if task == "gan" and (args.model is not None or args.arch is not None or not args.resume):
        loss, arch = RECIPES[args.model or "gan"]
        given.update(loss=loss, model=args.arch or arch)
    elif task == "autoencoder" and args.model is not None:
        given.update(model=args.model)
    if args.resume:
        saved, _ = _module(task).load_run_config(args.out)
        return task, cli_args.resumed_config(saved, given, RESUMABLE, "generate train")
    return task, cls(**given).validate()


def run(args):
    from cs231n_tf.engine import rundir

    if args.verb == "export":
        from cs231n_tf.generative.export import export

        report = export(args.run, out=args.out, checkpoint=args.checkpoint, format=args.format,
                        quantize=args.quantize)
        print(f"exported {report['format']} to {report['path']}: {report['size_bytes']} bytes, "
              f"max |diff| {max(report['max_abs_diff'].values()):.3g}")
        print(f"report: {report['path'].rstrip('/')}.report.json")
        return 0

    if args.verb == "sample":
        task = rundir.require_task(args.run, tuple(MODULES))
        print(_module(task).sample(args.run, args.num, args.out, seed=args.seed, checkpoint=args.checkpoint,
                                   neighbours=args.neighbours))
        return 0

    task, config = train_config(args)
    result = _module(task).train(config, args.out, resume=args.resume, log=lambda message: print(message, flush=True))
    m = result.metrics
    last = m["history"][-1] if m["history"] else {}
    if task == "gan":
        shown = (f"d_loss={last.get('train_d_loss', float('nan')):.4f} "
                 f"g_loss={last.get('train_g_loss', float('nan')):.4f}")
    else:
        shown = f"loss={last.get('train_loss', float('nan')):.4f}" + "".join(
            f" {k}={m[k]:.4f}" for k in ("test_neg_elbo_nats", "test_bits_per_dim") if k in m)
    print(f"done: {shown} steps={m['steps']} wall={m['wall_seconds']:.1f}s")
    print(f"run directory: {result.run_dir}")
    return 0
