"""``cs231n-tf localize``: classification + localization (lecture 11): ``train``, ``evaluate``, ``predict``.

The train flags come from :class:`~cs231n_tf.detection.localization.LocalizationConfig`'s fields;
the work is :func:`cs231n_tf.detection.localization.train`,
:func:`~cs231n_tf.detection.localization.evaluate_run` and
:func:`~cs231n_tf.detection.localization.predict_files`.
"""

import json
import os

from cs231n_tf.cli import args as cli_args

DESCRIPTION = ("Classification + localization: a registry backbone with a class head and a box-regression head "
               "(L2 or smooth-L1, weighted sum of the losses; optionally keypoints), trained on the embedded "
               "one-shape images or a COCO detection file reduced to the largest object per image; score a run "
               "(accuracy, mean IoU, localization accuracy at IoU >= 0.5), draw predicted boxes on images.")
RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "steps_per_execution")


def add_arguments(p):
    from cs231n_tf.detection.localization import LocalizationConfig

    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    train = verbs.add_parser("train", help="train a localization network into --out (or continue it with --resume)",
                             description="Train on the engine: checkpoints, exact resume, TensorBoard logs and "
                                         "metrics.json (val_/test_ accuracy, mean_iou, localization_accuracy) in "
                                         "--out.")
    cli_args.add_config_flags(train, LocalizationConfig)
    g = train.add_argument_group("run directory")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")

    ev = verbs.add_parser("evaluate", help="accuracy, mean IoU and localization accuracy of a run, as JSON",
                          description="Score a run on one of its splits, or on all of another data set "
                                      "(--dataset, e.g. a held-out coco:ANN.json:IMAGE_DIR). Prints the JSON and "
                                      "writes it to --out (default: RUN/evaluation.json).")
    ev.add_argument("--run", required=True, help="run directory written by `localize train`")
    ev.add_argument("--dataset", metavar="SPEC", help="score on all of this data set instead of a split")
    ev.add_argument("--split", default="test", choices=["train", "validation", "test"],
                    help="without --dataset: the run's split to score")
    ev.add_argument("--checkpoint", help="checkpoint path (default: the latest)")
    ev.add_argument("--out", metavar="FILE", help="where to write the JSON (default: RUN/evaluation.json)")

    pr = verbs.add_parser("predict", help="draw a run's predicted box and class on image files (PNG)",
                          description="Classify and localize the object in image files; writes OUT/<stem>.png with "
                                      "the predicted box and 'class score' drawn on the image.")
    pr.add_argument("--run", required=True, help="run directory written by `localize train`")
    pr.add_argument("--image", required=True, action="append", metavar="PATH",
                    help="image file (repeat for several)")
    pr.add_argument("--out", required=True, metavar="DIR", help="output directory")
    pr.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def train_config(args):
    from cs231n_tf.detection.localization import LocalizationConfig, load_run_config

    given = cli_args.config_values(LocalizationConfig, args)
    if args.resume:
        saved, _, _ = load_run_config(args.out)
        return cli_args.resumed_config(saved, given, RESUMABLE, "localize train")
    return LocalizationConfig(**given).validate()


def run(args):
    if args.verb == "train":
        from cs231n_tf.detection.localization import train

        result = train(train_config(args), args.out, resume=args.resume, log=lambda m: print(m, flush=True))
        m = result.metrics
        print(f"done: test_accuracy={m.get('test_accuracy', float('nan')):.4f} "
              f"test_mean_iou={m.get('test_mean_iou', float('nan')):.4f} "
              f"test_localization_accuracy={m.get('test_localization_accuracy', float('nan')):.4f} "
              f"steps={m['steps']} wall={m['wall_seconds']:.1f}s")
        print(f"run directory: {result.run_dir}")
        return 0
    if args.verb == "evaluate":
        from cs231n_tf.detection.localization import evaluate_run
        from cs231n_tf.fileio import atomic_write_json

        report = evaluate_run(args.run, dataset=args.dataset, split=args.split, checkpoint=args.checkpoint)
        atomic_write_json(args.out or os.path.join(args.run, "evaluation.json"), report)
        print(json.dumps(report, indent=2))
        return 0
    from cs231n_tf.detection.localization import predict_files

    for item in predict_files(args.run, args.image, args.out, checkpoint=args.checkpoint):
        print(f"{item['image']} -> {item['output']} ({item['class']} {item['score']:.2f})")
    return 0
