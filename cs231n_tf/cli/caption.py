"""``cs231n-tf caption``: image captioning (lecture 10): ``train``, ``evaluate``, ``predict``, ``export``.

The train flags come from :class:`~cs231n_tf.sequence.captioner.CaptionConfig`'s fields; the work is
in :mod:`cs231n_tf.sequence.captioner` (``train``, ``evaluate``, ``predict``, ``export``).
"""

import json
import os
import sys

from cs231n_tf.cli import args as cli_args
from cs231n_tf.sequence.captioner import CaptionConfig

DESCRIPTION = ("Image captioning: a CNN encoder and an RNN/LSTM/GRU decoder with soft attention (Show, Attend and "
               "Tell), trained on the engine (default data: the embedded synthetic shapes with true captions); "
               "BLEU-1..4 with beam search; export with encode/decode_step/caption signatures.")
RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "steps_per_execution")


def _decoding_flags(p):
    p.add_argument("--beam-width", type=cli_args.positive_int, help="beam width (1: greedy; default: the run's)")
    p.add_argument("--length-penalty", type=cli_args.non_negative_float,
                   help="alpha of the length penalty ((5 + n) / 6) ** alpha (default: the run's)")
    p.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def add_arguments(p):
    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    train = verbs.add_parser("train", help="train a captioner into --out (or continue it with --resume)",
                             description="Train a captioner on the engine: checkpoints, exact resume, TensorBoard "
                                         "logs and metrics.json (val_loss in nats/word, val_bleu1..4) in --out.")
    cli_args.add_config_flags(train, CaptionConfig)
    g = train.add_argument_group("run directory")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")

    ev = verbs.add_parser("evaluate", help="BLEU-1..4 of a run's captions on a split or another data set",
                          description="Decode every image of the run's test split (or of all of --dataset, a "
                                      "held-out set in the same format) and score the captions with corpus "
                                      "BLEU-1..4 against all references; prints and writes JSON.")
    ev.add_argument("--run", required=True, help="run directory written by `caption train`")
    ev.add_argument("--dataset", metavar="SPEC", help="score on all images of this data set instead "
                    "(e.g. coco_captions:ANN.json:IMAGE_DIR)")
    ev.add_argument("--split", choices=("validation", "test"), default="test", help="the run's split to score")
    ev.add_argument("--out", help="also write the JSON to this file")
    _decoding_flags(ev)

    pr = verbs.add_parser("predict", help="caption image files and draw the attention maps",
                          description="Print a caption for each image (a file, or photo:NAME for a photo shipped in "
                                      "an installed package) and, with --out, write its attention PNG.")
    pr.add_argument("images", nargs="+", metavar="IMAGE", help="image file (PNG/JPEG/GIF/BMP) or photo:NAME")
    pr.add_argument("--run", required=True, help="run directory written by `caption train`")
    pr.add_argument("--out", help="directory for the attention PNGs and captions.json")
    _decoding_flags(pr)

    ex = verbs.add_parser("export", help="SavedModel (caption, encode, decode_step) and the decoder step as .tflite",
                          description="Export a caption run: a SavedModel whose serving_default is the whole beam "
                                      "search and which also has encode and decode_step signatures, plus the "
                                      "decoder step as .tflite; each verified against Keras, with a report.")
    ex.add_argument("--run", required=True, help="run directory written by `caption train`")
    ex.add_argument("--out", help="output directory (default: saved_models/<run name>/)")
    ex.add_argument("--quantize", choices=("none", "dynamic", "float16"), default="none",
                    help="quantization of the decoder step's .tflite")
    ex.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def train_config(args):
    from cs231n_tf.sequence.captioner import load_run_config

    given = cli_args.config_values(CaptionConfig, args)
    if args.resume:
        saved, _, _ = load_run_config(args.out)
        return cli_args.resumed_config(saved, given, RESUMABLE, "caption train")
    return CaptionConfig(**given).validate()


def _write_json(path, obj):
    from cs231n_tf.fileio import atomic_write_json

    atomic_write_json(path, obj)


def run(args):
    from cs231n_tf.sequence import captioner

    if args.verb == "train":
        config = train_config(args)
        result = captioner.train(config, args.out, resume=args.resume, log=lambda message: print(message, flush=True))
        m = result.metrics
        print("done: " + " ".join(f"{k}={m[k]:.4f}" for k in ("test_bleu1", "test_bleu4", "val_bleu4", "val_loss")
                                  if k in m) + f" steps={m['steps']} wall={m['wall_seconds']:.1f}s")
        print(f"run directory: {result.run_dir}")
        return 0
    if args.verb == "evaluate":
        report = captioner.evaluate(args.run, dataset=args.dataset, split=args.split, beam_width=args.beam_width,
                                    length_penalty=args.length_penalty, checkpoint=args.checkpoint)
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            _write_json(args.out, report)
        return 0
    if args.verb == "predict":
        run = captioner.load_run(args.run, args.checkpoint)
        images = captioner.read_images(args.images, run.model.image_shape)
        results = captioner.predict(run, images, out_dir=args.out, names=[os.path.basename(s.split(":")[-1])
                                                                          for s in args.images],
                                    beam_width=args.beam_width, length_penalty=args.length_penalty)
        for spec, entry in zip(args.images, results):
            line = f"{spec}: {entry['caption']}"
            if "attention_png" in entry:
                line += f"  [{entry['attention_png']}]"
            sys.stdout.write(line + "\n")
        if args.out:
            _write_json(os.path.join(args.out, "captions.json"), results)
        return 0
    reports = captioner.export(args.run, out=args.out, quantize=args.quantize, checkpoint=args.checkpoint)
    for kind, report in reports.items():
        print(f"{kind}: {report['path']} ({report['size_bytes']} bytes)")
    return 0
