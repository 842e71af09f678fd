"""``cs231n-tf style``: neural style transfer (Gatys et al.; lecture 12) by optimising the image.

``transfer`` stylises ``--content`` like ``--style`` (paths or ``photo:NAME``) on the features of a
pretrained network (``--model efficientnet_lite0``) or a classification run (``--run DIR``), with
Adam or L-BFGS, and writes ``stylized.png`` and ``style_transfer.json`` (the loss history) into
``--out``. The work is :func:`cs231n_tf.visualize.style.transfer_files`.

``train-fast`` trains Johnson et al.'s feed-forward network against one ``--style`` image on the
engine (flags from :class:`~cs231n_tf.visualize.fast_style.FastStyleConfig`; ``--resume``), ``apply``
stylises an image in one pass with a run, ``export`` writes a run as a verified SavedModel or
``.tflite`` (:mod:`cs231n_tf.visualize.fast_style`).
"""

from cs231n_tf.cli import args as cli_args

DESCRIPTION = ("Style transfer (Gatys et al.): optimise an image with Adam or L-BFGS so its features match a "
               "content image and its Gram matrices a style image; --content-weight 0 synthesises texture. "
               "Fast style transfer (Johnson et al.): train a network that stylises in one pass, apply it, export it.")
RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "steps_per_execution")


def add_arguments(p):
    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    t = verbs.add_parser("transfer", help="stylise one image by optimisation; PNG + JSON of losses into --out",
                         description="Neural style transfer on a pretrained network's or a run's features.")
    t.add_argument("--content", required=True, help="content image: a file path or photo:NAME")
    t.add_argument("--style", required=True, help="style image: a file path or photo:NAME")
    t.add_argument("--out", required=True, help="output directory")
    cli_args.add_source_arguments(t, "classification run directory whose network gives the features")
    t.add_argument("--image-size", type=cli_args.positive_int, default=192,
                   help="with --model: square size the images are resized to")
    t.add_argument("--optimizer", choices=("adam", "lbfgs"), default="adam", help="what updates the image")
    t.add_argument("--steps", type=cli_args.positive_int, default=100, help="Adam steps or L-BFGS iterations")
    t.add_argument("--learning-rate", type=cli_args.positive_float, default=0.05, help="Adam's learning rate")
    t.add_argument("--content-layer", help="layer whose features match the content (default: the network's)")
    t.add_argument("--style-layers", type=cli_args.name_list, help="comma-separated layers for the Gram matrices")
    t.add_argument("--style-weights", type=lambda s: [cli_args.positive_float(v) for v in cli_args.name_list(s)],
                   help="comma-separated weights, one per style layer (default: 1 each)")
    t.add_argument("--content-weight", type=cli_args.non_negative_float, default=1e-2,
                   help="content loss weight (0: texture synthesis)")
    t.add_argument("--tv-weight", type=cli_args.non_negative_float, default=1e-3, help="total-variation weight")
    t.add_argument("--init", choices=("content", "random"), default="content", help="starting image")
    t.add_argument("--log-every", type=cli_args.positive_int, default=10, help="steps between history entries")

    from cs231n_tf.visualize.fast_style import QUANTIZE, FastStyleConfig

    f = verbs.add_parser("train-fast", help="train a fast style network against --style into --out (or --resume it)",
                         description="Fast style transfer (Johnson et al.): train a transformation network on crops "
                                     "of the shipped photos with perceptual losses on a pretrained network.")
    cli_args.add_config_flags(f, FastStyleConfig)
    g = f.add_argument_group("run directory")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    a = verbs.add_parser("apply", help="stylise an image in one pass with a train-fast run",
                         description="Write OUT/<name>_stylized.png and OUT/apply.json.")
    a.add_argument("--run", required=True, help="run directory written by `style train-fast`")
    a.add_argument("--image", required=True, help="image file or photo:NAME")
    a.add_argument("--out", required=True, help="output directory")
    a.add_argument("--max-side", type=cli_args.positive_int, default=1024, help="shrink larger images to this side")
    a.add_argument("--checkpoint", help="checkpoint path (default: the latest)")
    e = verbs.add_parser("export", help="export a train-fast run as a verified SavedModel or .tflite",
                         description="Export a run's network at its training size (images in [0, 1] -> stylized), "
                                     "verified on the shipped photos; the report has the max pixel difference.")
    e.add_argument("--run", required=True, help="run directory written by `style train-fast`")
    e.add_argument("--format", default="saved_model", choices=["saved_model", "tflite"], help="artifact format")
    e.add_argument("--quantize", default="none", choices=QUANTIZE, help="TFLite quantization")
    e.add_argument("--out", metavar="DIR", help="output directory (default: saved_models/<run name>)")
    e.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def train_config(args):
    from cs231n_tf.visualize.fast_style import FastStyleConfig, load_run_config

    given = cli_args.config_values(FastStyleConfig, args)
    if args.resume:
        return cli_args.resumed_config(load_run_config(args.out), given, RESUMABLE, "style train-fast")
    return FastStyleConfig(**given).validate()


def run(args):
    if args.verb != "transfer":
        return _fast(args)
    from cs231n_tf.visualize.style import load_network, transfer_files

    network = load_network(model=args.model, run_dir=args.run, weights=args.weights, image_size=args.image_size)
    report = transfer_files(args.content, args.style, args.out, network, content_layer=args.content_layer,
                            style_layers=args.style_layers, style_weights=args.style_weights,
                            content_weight=args.content_weight, tv_weight=args.tv_weight, optimizer=args.optimizer,
                            steps=args.steps, learning_rate=args.learning_rate, init=args.init,
                            log_every=args.log_every)
    first, last = report["history"][0], report["history"][-1]
    print(f"done: total {first['total']:.4g} -> {last['total']:.4g} (content {last['content']:.4g}, "
          f"style {last['style']:.4g}, tv {last['tv']:.4g}) in {last['seconds']:.1f}s")
    print(f"wrote {report['image']}")
    return 0


def _fast(args):
    from cs231n_tf.visualize import fast_style

    if args.verb == "apply":
        r = fast_style.stylize_file(args.run, args.image, args.out, checkpoint=args.checkpoint, max_side=args.max_side)
        print(f"stylized {r['image']} ({r['size'][0]}x{r['size'][1]}) in {r['seconds']:.3f}s -> {r['stylized']}")
        return 0
    if args.verb == "export":
        r = fast_style.export_fast_style(args.run, format=args.format, quantize=args.quantize, out=args.out,
                                         checkpoint=args.checkpoint)
        print(f"exported {r['format']} to {r['path']}: {r['size_bytes']} bytes, max |pixel diff| "
              f"{r['max_abs_pixel_diff']:.3g} on {r['examples']} images")
        print(f"report: {r['path'].rstrip('/')}.report.json")
        return 0
    result = fast_style.train(train_config(args), args.out, resume=args.resume,
                              log=lambda message: print(message, flush=True))
    last = result.metrics["history"][-1] if result.metrics["history"] else {}
    loss = {k: last.get(f"train_{k}", float("nan")) for k in ("loss", "content", "style", "tv")}
    print(f"done: loss={loss['loss']:.4g} (content {loss['content']:.4g}, style {loss['style']:.4g}, "
          f"tv {loss['tv']:.4g}) "
          f"steps={result.metrics['steps']} wall={result.metrics['wall_seconds']:.1f}s")
    print(f"run directory: {result.run_dir}")
    return 0
