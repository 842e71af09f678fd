"""``cs231n-tf viz``: visualize a classifier (lecture 12) on image files; PNGs and a JSON into ``--out``.

The work is :func:`cs231n_tf.visualize.viz_report`.
"""

from cs231n_tf.cli import args as cli_args

DESCRIPTION = ("Visualize a trained run (--run) or a pretrained model (--model efficientnet_lite0) on image files "
               "or photo:NAME (chelsea, coffee, ...): first-layer filters, activation maps, saliency, SmoothGrad, "
               "guided backprop, Grad-CAM, occlusion sensitivity, fooling images, class visualization, DeepDream, "
               "feature inversion; nearest neighbours, PCA and t-SNE of the features over a data set. Writes PNGs "
               "and VERB.json into --out.")

HELP = {
    "filters": "the first convolution's kernels as an image grid",
    "activations": "feature maps of a layer (--layer; default the first with feature maps)",
    "saliency": "|d class score / d pixel|, max over channels (Simonyan et al.)",
    "smoothgrad": "saliency averaged over noisy copies (Smilkov et al.)",
    "guided": "guided backpropagation (Springenberg et al.)",
    "gradcam": "Grad-CAM on the last conv layer or --layer (Selvaraju et al.)",
    "occlusion": "drop of the class score under a sliding grey patch (Zeiler & Fergus)",
    "fool": "gradient ascent to --target; reports the L-inf/L2 change and steps",
    "classviz": "an image the network scores as --target: regularised gradient ascent (Simonyan et al.)",
    "dream": "DeepDream: amplify a layer's activations, octaves and jitter (Mordvintsev et al.)",
    "invert": "reconstruct each image from a layer's features with a TV prior (Mahendran & Vedaldi)",
    "neighbors": "nearest neighbours in pixel space vs feature space over --dataset",
    "pca": "PCA of the last layer's features over --dataset, plotted by class",
    "tsne": "t-SNE of the last layer's features over --dataset, plotted by class (van der Maaten & Hinton)",
}
SPACE = ("neighbors", "pca", "tsne")
LAYER_HELP = {"filters": "the first conv", "activations": "the first with feature maps", "gradcam": "the last conv",
              "dream": "the middle layer with feature maps", "invert": "the middle layer with feature maps",
              "neighbors": "the input of the last Dense layer", "pca": "the input of the last Dense layer",
              "tsne": "the input of the last Dense layer"}


def add_arguments(p):
    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    for verb, text in HELP.items():
        v = verbs.add_parser(verb, help=text, description=text)
        cli_args.add_source_arguments(v, "run directory written by `train` or `finetune`")
        if verb not in ("filters", "classviz") + SPACE:
            v.add_argument("--image", action="append", required=True, metavar="PATH",
                           help="image file or photo:NAME (repeat for several)")
        if verb not in ("filters", "dream", "invert") + SPACE:
            v.add_argument("--target", type=cli_args.non_negative_int, required=verb in ("fool", "classviz"),
                           help="class index to explain, fool towards or visualize" +
                                ("" if verb in ("fool", "classviz") else "; unset: the predicted class"))
        if verb in LAYER_HELP:
            v.add_argument("--layer", help=f"layer name (unset: {LAYER_HELP[verb]})")
        if verb in ("classviz", "dream", "invert"):
            v.add_argument("--steps", type=cli_args.positive_int, default={"dream": 20}.get(verb, 200),
                           help="ascent steps per octave" if verb == "dream" else "optimisation steps")
        if verb == "dream":
            v.add_argument("--octaves", type=cli_args.positive_int, default=3, help="scales, each 1.4x the last")
        if verb in SPACE:
            v.add_argument("--dataset", help="data set spec (digits, folder:PATH, npz:PATH, or photos: crops of the "
                                             "shipped photos); unset: the run's data set, or photos with --model")
            v.add_argument("--limit", type=cli_args.positive_int, default=200, help="examples sampled")
        if verb == "neighbors":
            v.add_argument("--k", type=cli_args.positive_int, default=5, help="neighbours per query")
            v.add_argument("--queries", type=cli_args.positive_int, default=5, help="query examples")
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
                     step_size=getattr(args, "step_size", 1.0), dataset=getattr(args, "dataset", None),
                     limit=getattr(args, "limit", 200), k=getattr(args, "k", 5), queries=getattr(args, "queries", 5),
                     octaves=getattr(args, "octaves", 3))
    if args.verb == "classviz":
        print(f"class {out['target_name']} ({out['target']}): score {out['score_start']:.4g} -> "
              f"{out['score_end']:.4g} in {out['steps']} steps, predicted {out['predicted_name']} -> {out['png']}")
    elif args.verb == "neighbors":
        print(f"{out['examples']} examples of {out['dataset']}: neighbours share the query's label "
              f"{out['pixel_label_agreement']:.0%} in pixel space, {out['feature_label_agreement']:.0%} in "
              f"feature space -> {out['png']}")
    elif args.verb in ("pca", "tsne"):
        print(f"{out['examples']} examples of {out['dataset']}, {out['feature_dim']}-d features -> {out['png']}")
    for row in out.get("images", ()):
        extra = {"fool": lambda: (f" fooled={row['fooled_prediction']} success={row['success']} "
                                  f"steps={row['steps']} linf={row['linf']:.4g} l2={row['l2']:.4g}"),
                 "invert": lambda: (f" feature loss {row['feature_loss_start']:.3g} -> {row['feature_loss_end']:.3g}"
                                    f" pixel rmse {row['pixel_rmse']:.3g}"),
                 "dream": lambda: f" objective {row['objective'][-1]:.4g}"}.get(args.verb, str)()
        print(f"{row['image']}: predicted {row['predicted_name']} ({row['predicted']}), "
              f"{args.verb} of {row['class_name']} -> {row['png']}{extra}")
    print(f"wrote {args.out}/{args.verb}.json")
    return 0
