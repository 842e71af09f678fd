"""``cs231n-tf viz``: visualize a classifier (lecture 12) on image files; PNGs and a JSON into ``--out``.

The work is :func:`cs231n_tf.visualize.viz_report`.
"""

from cs231n_tf.cli import args as cli_args

DESCRIPTION = ("Visualize a trained run (--run) or a pretrained model (--model efficientnet_lite0) on image files "
               "or photo:NAME (chelsea, coffee, ...): first-layer filters, activation maps, saliency, SmoothGrad, "
               "guided backprop, Grad-CAM, occlusion sensitivity, fooling images. Writes PNGs and VERB.json "
               "into --out.")

HELP = {
    "filters": "the first convolution's kernels as an image grid",
    "activations": "feature maps of a layer (--layer; default the first with feature maps)",
    "saliency": "|d class score / d pixel|, max over channels (Simonyan et al.)",
    "smoothgrad": "saliency averaged over noisy copies (Smilkov et al.)",
    "guided": "guided backpropagation (Springenberg et al.)",
    "gradcam": "Grad-CAM on the last conv layer or --layer (Selvaraju et al.)",
    "occlusion": "drop of the class score under a sliding grey patch (Zeiler & Fergus)",
    "fool": "gradient ascent to --target; reports the L-inf/L2 change and steps",
}


def add_arguments(p):
    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    for verb, text in HELP.items():
        v = verbs.add_parser(verb, help=text, description=text)
        cli_args.add_source_arguments(v, "run directory written by `train` or `finetune`")
        if verb != "filters":
            v.add_argument("--image", action="append", required=True, metavar="PATH",
                           help="image file or photo:NAME (repeat for several)")
            v.add_argument("--target", type=cli_args.non_negative_int, required=verb == "fool",
                           help="class index to explain or to fool towards" +
                                ("" if verb == "fool" else "; unset: the predicted class"))
        if verb in ("filters", "activations", "gradcam"):
            v.add_argument("--layer", help="layer name (unset: " +
                           {"filters": "the first conv", "activations": "the first with feature maps",
                            "gradcam": "the last conv"}[verb] + ")")
        if verb == "smoothgrad":
            v.add_argument("--samples", type=cli_args.positive_int, default=16, help="noisy copies")
        if verb == "occlusion":
            v.add_argument("--patch", type=cli_args.positive_int, help="patch side (unset: 1/8 of the image)")
            v.add_argument("--stride", type=cli_args.positive_int, help="patch stride (unset: 1/16 of the image)")
        if verb == "fool":
            v.add_argument("--steps", type=cli_args.positive_int, default=100, help="maximum ascent steps")
            v.add_argument("--step-size", type=cli_args.positive_float, default=1.0,
                           help="L2 length of each step, in the model's input units")
        v.add_argument("--out", required=True, metavar="DIR", help="output directory")


def run(args):
    from cs231n_tf.visualize import viz_report

    out = viz_report(args.verb, args.out, getattr(args, "image", None) or (), run_dir=args.run, model=args.model,
                     weights=args.weights, layer=getattr(args, "layer", None), target=getattr(args, "target", None),
                     samples=getattr(args, "samples", 16), patch=getattr(args, "patch", None),
                     stride=getattr(args, "stride", None), max_steps=getattr(args, "steps", 100),
                     step_size=getattr(args, "step_size", 1.0))
    for row in out["images"]:
        extra = (f" fooled={row['fooled_prediction']} success={row['success']} steps={row['steps']} "
                 f"linf={row['linf']:.4g} l2={row['l2']:.4g}") if args.verb == "fool" else ""
        print(f"{row['image']}: predicted {row['predicted_name']} ({row['predicted']}), "
              f"{args.verb} of {row['class_name']} -> {row['png']}{extra}")
    print(f"wrote {args.out}/{args.verb}.json")
    return 0
