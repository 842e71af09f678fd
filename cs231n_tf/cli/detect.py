"""``cs231n-tf detect``: object detection (lecture 11): ``train``, ``evaluate``, ``predict``, ``export``.

The train flags come from :class:`~cs231n_tf.detection.task.DetectionConfig`'s fields; the work is
:func:`cs231n_tf.detection.task.train`, :func:`~cs231n_tf.detection.task.evaluate_run`,
:func:`cs231n_tf.detection.predict.predict_files` and
:func:`cs231n_tf.detection.export.export_detection`.
"""

import json
import os

from cs231n_tf.cli import args as cli_args

DESCRIPTION = ("Object detection: train a single-shot detector (registry backbone + FPN, focal loss) on the embedded "
               "shape scenes or coco:ANN.json:IMAGE_DIR, score a run with COCO's AP/AR table, draw detections on "
               "images, export a SavedModel or .tflite with NMS inside.")
RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "steps_per_execution")
TABLE = (("AP", "AP @[IoU=0.50:0.95 | area=all | maxDets=100]"), ("AP50", "AP @[IoU=0.50 | area=all | maxDets=100]"),
         ("AP75", "AP @[IoU=0.75 | area=all | maxDets=100]"), ("APs", "AP @[IoU=0.50:0.95 | area=small]"),
         ("APm", "AP @[IoU=0.50:0.95 | area=medium]"), ("APl", "AP @[IoU=0.50:0.95 | area=large]"),
         ("AR1", "AR @[IoU=0.50:0.95 | maxDets=1]"), ("AR10", "AR @[IoU=0.50:0.95 | maxDets=10]"),
         ("AR100", "AR @[IoU=0.50:0.95 | maxDets=100]"), ("ARs", "AR @[IoU=0.50:0.95 | area=small]"),
         ("ARm", "AR @[IoU=0.50:0.95 | area=medium]"), ("ARl", "AR @[IoU=0.50:0.95 | area=large]"))


def add_arguments(p):
    from cs231n_tf.detection.task import DetectionConfig

    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    train = verbs.add_parser("train", help="train a detector into --out (or continue it with --resume)",
                             description="Train on the engine: checkpoints, exact resume, TensorBoard logs and "
                                         "metrics.json (val_/test_ AP, AP50, AP75, APs/m/l, AR...) in --out.")
    cli_args.add_config_flags(train, DetectionConfig)
    g = train.add_argument_group("run directory")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")

    ev = verbs.add_parser("evaluate", help="COCO AP/AR table of a run, printed and written as JSON",
                          description="Score a run on one of its splits, or on all of another data set "
                                      "(--dataset, e.g. a held-out coco:ANN.json:IMAGES with the run's categories). "
                                      "Prints COCO's table and writes the JSON to --out (default: "
                                      "RUN/evaluation.json).")
    ev.add_argument("--run", required=True, help="run directory written by `detect train`")
    ev.add_argument("--dataset", metavar="SPEC", help="score on all of this data set instead of a split")
    ev.add_argument("--split", default="test", choices=["train", "validation", "test"],
                    help="without --dataset: the run's split to score")
    ev.add_argument("--checkpoint", help="checkpoint path (default: the latest)")
    ev.add_argument("--out", metavar="FILE", help="where to write the JSON (default: RUN/evaluation.json)")

    pr = verbs.add_parser("predict", help="draw a run's detections on images (PNG)",
                          description="Detect objects in images (paths or photo:NAME); writes OUT/<name>.png with "
                                      "boxes, class names and scores, and prints the detections as JSON.")
    pr.add_argument("--run", required=True, help="run directory written by `detect train`")
    pr.add_argument("--image", required=True, action="append", metavar="PATH|photo:NAME",
                    help="image file or shipped photo (repeat for several)")
    pr.add_argument("--out", required=True, metavar="DIR", help="output directory")
    pr.add_argument("--min-score", type=cli_args.unit_float, default=0.3, help="draw detections scoring at least this")
    pr.add_argument("--checkpoint", help="checkpoint path (default: the latest)")

    ex = verbs.add_parser("export", help="export a run as a verified SavedModel or .tflite (AP vs Keras)",
                          description="Export a run with NMS inside the graph (images -> boxes, classes, scores, "
                                      "num_detections), verified on its test split: max difference from Keras and "
                                      "the COCO AP of the export and of Keras.")
    ex.add_argument("--run", required=True, help="run directory written by `detect train`")
    ex.add_argument("--model", default="ssd", choices=["ssd"], help="the run's detector")
    ex.add_argument("--format", default="saved_model", choices=["saved_model", "tflite"], help="artifact format")
    ex.add_argument("--quantize", default="none", choices=["none", "int8"], help="TFLite quantization")
    ex.add_argument("--out", metavar="DIR", help="output directory (default: saved_models/<run name>)")
    ex.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def train_config(args):
    from cs231n_tf.detection.task import DetectionConfig, load_run_config

    given = cli_args.config_values(DetectionConfig, args)
    if args.resume:
        saved, _ = load_run_config(args.out)
        return cli_args.resumed_config(saved, given, RESUMABLE, "detect train")
    return DetectionConfig(**given).validate()


def coco_table(report):
    """COCO's summary table (pycocotools' wording) of an evaluation report, as text."""
    return "\n".join(f" {text:<42} = {report[key]:6.3f}" for key, text in TABLE)


def run(args):
    if args.verb == "train":
        from cs231n_tf.detection.task import train

        result = train(train_config(args), args.out, resume=args.resume, log=lambda m: print(m, flush=True))
        m = result.metrics
        print(f"done: test_AP={m.get('test_AP', float('nan')):.4f} test_AP50={m.get('test_AP50', float('nan')):.4f} "
              f"steps={m['steps']} wall={m['wall_seconds']:.1f}s")
        print(f"run directory: {result.run_dir}")
        return 0
    if args.verb == "evaluate":
        from cs231n_tf.detection.task import evaluate_run
        from cs231n_tf.fileio import atomic_write_json

        report = evaluate_run(args.run, dataset=args.dataset, split=args.split, checkpoint=args.checkpoint)
        out = args.out or os.path.join(args.run, "evaluation.json")
        atomic_write_json(out, report)
        print(f"{report['dataset']} ({report['examples']} images{', split ' + report['split'] if report['split'] else ''})")
        print(coco_table(report))
        print(f"written to {out}")
        return 0
    if args.verb == "predict":
        from cs231n_tf.detection.predict import predict_files

        results = predict_files(args.run, args.image, args.out, min_score=args.min_score, checkpoint=args.checkpoint)
        for item in results:
            print(f"{item['image']} -> {item['drawn']}")
            print(json.dumps(item["detections"]))
        return 0
    from cs231n_tf.detection.export import export_detection

    report = export_detection(args.run, format=args.format, quantize=args.quantize, out=args.out,
                              checkpoint=args.checkpoint)
    print(json.dumps({k: report[k] for k in ("path", "size_bytes", "AP", "keras_AP", "AP50", "keras_AP50",
                                             "max_abs_diff")}, indent=2))
    return 0
