"""``cs231n-tf style``: neural style transfer (Gatys et al.; lecture 12) by optimising the image.

``transfer`` stylises ``--content`` like ``--style`` (paths or ``photo:NAME``) on the features of a
pretrained network (``--model efficientnet_lite0``) or a classification run (``--run DIR``), with
Adam or L-BFGS, and writes ``stylized.png`` and ``style_transfer.json`` (the loss history) into
``--out``. The work is :func:`cs231n_tf.visualize.style.transfer_files`.
"""

from cs231n_tf.cli import args as cli_args

DESCRIPTION = ("Style transfer (Gatys et al.): optimise an image with Adam or L-BFGS so its features match a "
               "content image and its Gram matrices a style image; --content-weight 0 synthesises texture.")


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


def run(args):
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
