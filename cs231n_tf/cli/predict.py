"""``cs231n-tf predict``: the top-k classes of image files, from a run or a pretrained model.

The work is :func:`cs231n_tf.train.predict.predict_images`.
"""

from cs231n_tf.cli.args import add_source_arguments, positive_int

DESCRIPTION = ("Classify image files (or photo:NAME, a photo shipped in an installed package: chelsea, coffee, "
               "astronaut, rocket, motorcycle_left, china, flower) with a trained run (--run) or a pretrained "
               "model (--model efficientnet_lite0). Prints the top classes with probabilities, or --json.")


def add_arguments(p):
    add_source_arguments(p, "run directory written by `train` or `finetune`")
    p.add_argument("--image-size", type=positive_int, help="with --model: evaluation crop size (default: the model's)")
    p.add_argument("--checkpoint", help="with --run: checkpoint path (default: the latest)")
    p.add_argument("--top", type=positive_int, default=5, help="classes shown per image")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image file (PNG/JPEG/GIF/BMP) or photo:NAME")


def run(args):
    import json

    from cs231n_tf.train.predict import predict_images

    result = predict_images(args.images, run_dir=args.run, model=args.model, weights=args.weights, k=args.top,
                            image_size=args.image_size, checkpoint=args.checkpoint)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    width = max(len(c["name"]) for p in result["predictions"] for c in p["top"])
    for p in result["predictions"]:
        print(p["image"])
        for rank, c in enumerate(p["top"], 1):
            print(f"  {rank}. {c['name']:<{width}}  {c['probability']:.4f}  (class {c['index']})")
    return 0
