"""``cs231n-tf segment``: semantic segmentation (lecture 11): ``train``, ``evaluate``, ``predict``, ``export``.

The train flags come from :class:`~cs231n_tf.segmentation.task.SegmentationConfig`'s fields; the
work is :func:`cs231n_tf.segmentation.task.train`, :func:`~cs231n_tf.segmentation.task.evaluate_run`,
:func:`cs231n_tf.segmentation.predict.predict_files` and
:func:`cs231n_tf.segmentation.export.export_segmentation`.
"""

import json
import os

from cs231n_tf.cli import args as cli_args

DESCRIPTION = ("Semantic segmentation: train an FCN (nearest, bed-of-nails, max-unpooling, transposed-conv or "
               "bilinear upsampling) or a U-Net on the embedded shapes scenes or masks:IMAGE_DIR:MASK_DIR, score a "
               "run (mean IoU, per-class IoU, pixel accuracy), draw predicted masks over images, export.")
RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "steps_per_execution")


def add_arguments(p):
    from cs231n_tf.segmentation.task import SegmentationConfig

    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    train = verbs.add_parser("train", help="train a segmentation network into --out (or continue it with --resume)",
                             description="Train on the engine: checkpoints, exact resume, TensorBoard logs and "
                                         "metrics.json (val_/test_ mean_iou, per_class_iou, pixel_accuracy) in --out.")
    cli_args.add_config_flags(train, SegmentationConfig)
    g = train.add_argument_group("run directory")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")

    ev = verbs.add_parser("evaluate", help="mean IoU, per-class IoU and pixel accuracy of a run, as JSON",
                          description="Score a run on one of its splits, or on all of another data set "
                                      "(--dataset, e.g. a held-out masks:IMAGE_DIR:MASK_DIR). Prints the JSON and "
                                      "writes it to --out (default: RUN/evaluation.json).")
    ev.add_argument("--run", required=True, help="run directory written by `segment train`")
    ev.add_argument("--dataset", metavar="SPEC", help="score on all of this data set instead of a split")
    ev.add_argument("--class-names", metavar="FILE", help="with --dataset: one class name per line")
    ev.add_argument("--split", default="test", choices=["train", "validation", "test"],
                    help="without --dataset: the run's split to score")
    ev.add_argument("--checkpoint", help="checkpoint path (default: the latest)")
    ev.add_argument("--out", metavar="FILE", help="where to write the JSON (default: RUN/evaluation.json)")

    pr = verbs.add_parser("predict", help="draw a run's predicted masks over image files (PNG)",
                          description="Segment image files; writes OUT/<stem>.png (the coloured mask blended over "
                                      "the image) and OUT/<stem>_labels.png (the label map).")
    pr.add_argument("--run", required=True, help="run directory written by `segment train`")
    pr.add_argument("--image", required=True, action="append", metavar="PATH",
                    help="image file (repeat for several)")
    pr.add_argument("--out", required=True, metavar="DIR", help="output directory")
    pr.add_argument("--alpha", type=cli_args.unit_float, default=0.5, help="opacity of the coloured mask")
    pr.add_argument("--checkpoint", help="checkpoint path (default: the latest)")

    ex = verbs.add_parser("export", help="export a run as a verified SavedModel or .tflite (mIoU vs Keras)",
                          description="Export a run (images -> per-pixel logits and labels), verified on its test "
                                      "split: max difference from Keras and the mean IoU of the export and of Keras.")
    ex.add_argument("--run", required=True, help="run directory written by `segment train`")
    ex.add_argument("--format", default="saved_model", choices=["saved_model", "tflite"], help="artifact format")
    ex.add_argument("--quantize", default="none", choices=["none", "int8"], help="TFLite quantization")
    ex.add_argument("--out", metavar="DIR", help="output directory (default: saved_models/<run name>)")
    ex.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def train_config(args):
    from cs231n_tf.segmentation.task import SegmentationConfig, load_run_config

    given = cli_args.config_values(SegmentationConfig, args)
    if args.resume:
        saved, _ = load_run_config(args.out)
        return cli_args.resumed_config(saved, given, RESUMABLE, "segment train")
    return SegmentationConfig(**given).validate()


def run(args):
    if args.verb == "train":
        from cs231n_tf.segmentation.task import train

        result = train(train_config(args), args.out, resume=args.resume, log=lambda m: print(m, flush=True))
        m = result.metrics
        print(f"done: test_mean_iou={m.get('test_mean_iou', float('nan')):.4f} "
              f"test_pixel_accuracy={m.get('test_pixel_accuracy', float('nan')):.4f} steps={m['steps']} "
              f"wall={m['wall_seconds']:.1f}s")
        print(f"run directory: {result.run_dir}")
        return 0
    if args.verb == "evaluate":
        from cs231n_tf.errors import ConfigError
        from cs231n_tf.fileio import atomic_write_json
        from cs231n_tf.segmentation.task import evaluate_run

        if args.class_names and not args.dataset:
            raise ConfigError("--class-names goes with --dataset (a run's own splits have its classes)")
        report = evaluate_run(args.run, dataset=args.dataset, class_names=args.class_names, split=args.split,
                              checkpoint=args.checkpoint)
        out = args.out or os.path.join(args.run, "evaluation.json")
        atomic_write_json(out, report)
        print(json.dumps(report, indent=2))
        return 0
    if args.verb == "predict":
        from cs231n_tf.segmentation.predict import predict_files

        for item in predict_files(args.run, args.image, args.out, alpha=args.alpha, checkpoint=args.checkpoint):
            print(f"{item['image']} -> {item['overlay']}")
        return 0
    from cs231n_tf.segmentation.export import export_segmentation

    report = export_segmentation(args.run, format=args.format, quantize=args.quantize, out=args.out,
                                 checkpoint=args.checkpoint)
    print(json.dumps({k: report[k] for k in ("path", "size_bytes", "mean_iou", "keras_mean_iou", "max_abs_diff")},
                     indent=2))
    return 0
