"""``cs231n-tf compress``: :func:`cs231n_tf.compress.compress_run` behind flags made from :class:`CompressConfig`."""

import os

from cs231n_tf.cli import args as cli_args
from cs231n_tf.compress.run import REPORT, TFLITE, CompressConfig

DESCRIPTION = ("Compress a trained run (lecture 15): distillation, low rank, pruning, clustering, Huffman coding and "
               "quantization, each followed by fine-tuning; writes --out/model.tflite and --out/compression.json "
               "with the accuracy and size before and after.")


def add_arguments(p):
    p.add_argument("--run", required=True, help="run directory written by `train`")
    p.add_argument("--out", required=True, help="output directory (replaced only if it holds a previous compress output)")
    cli_args.add_config_flags(p, CompressConfig)


def run(args):
    from cs231n_tf.compress.run import compress_run

    def say(message):
        print(message, flush=True)

    config = CompressConfig(**cli_args.config_values(CompressConfig, args))
    report = compress_run(args.run, config, args.out, log=say)
    out = os.path.abspath(args.out)
    say(f"accuracy {report['accuracy_before']:.4f} -> {report['accuracy_after']:.4f}, size "
        f"{report['size_bytes_before']:,} -> {report['size_bytes_after']:,} bytes "
        f"({report['compression_ratio']:.1f}x, {report['size_basis']})")
    say(f"wrote {os.path.join(out, TFLITE)} and {os.path.join(out, REPORT)}")
    return 0
