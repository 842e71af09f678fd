"""Deploying a real ImageNet network (lectures 15 and 7): EfficientNet-Lite0 as SavedModel and TFLite.

Exports the packaged ImageNet weights with :func:`cs231n_tf.export.export_pretrained` -- SavedModel
and TFLite float32, float16, dynamic-range and full-integer int8 (calibrated on random crops of the
shipped photos; ImageNet itself is not on this machine) -- each verified against Keras on the
shipped photos plus augmented crops of them (top-1 agreement, max logit difference). Then times
float32 against int8 with the LiteRT interpreter on one 224x224 image at 1 and 2 threads,
interleaved, and prints the ratios. Writes its section of RESULTS.md.

    python experiments/efficientnet_lite_deploy.py [--runs 50]
"""

import argparse
import gzip
import os
import sys
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402
from _timing import tflite_latency_ms  # noqa: E402

from cs231n_tf.export import export_pretrained, pretrained_images  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed LiteRT inferences per variant and thread count")
    parser.add_argument("--out", default="saved_models/efficientnet_lite0_imagenet")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = parser.parse_args()
    start = time.perf_counter()

    rows, contents = [], {}
    report = export_pretrained("efficientnet_lite0", format="saved_model", out=args.out)
    rows.append(("SavedModel (float32)", report))
    for quantize in ("none", "float16", "dynamic", "int8"):
        report = export_pretrained("efficientnet_lite0", format="tflite", quantize=quantize, out=args.out)
        with open(report["path"], "rb") as f:
            contents[quantize] = f.read()
        rows.append((f"TFLite {'float32' if quantize == 'none' else quantize}", report))

    image = pretrained_images(224, augmented=0)[:1]
    latency = {}
    for threads in (1, 2):
        # Interleave the two variants so background load hits both alike.
        for _ in range(2):
            for quantize in ("none", "int8"):
                latency.setdefault((quantize, threads), []).append(
                    tflite_latency_ms(contents[quantize], image, threads, args.runs // 2))
    latency = {k: float(np.mean(v)) for k, v in latency.items()}

    float_size = rows[1][1]["size_bytes"]
    lines = [f"Machine: {machine()}. Command: `{command()}`; {time.perf_counter() - start:.0f} s in all.", "",
             f"Verified on {rows[0][1]['examples']} images: the {rows[0][1]['examples'] // 10} shipped photos' "
             "224x224 evaluation crops plus 9 augmented crops (random resized crop, flip) of each; agreement "
             "is top-1 agreement with the Keras model, diff the max |logit difference|.", "",
             "| variant | size (MB) | gzip (MB) | size vs float32 | top-1 agreement | max logit diff |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, r in rows:
        gz = f"{len(gzip.compress(contents[r['quantize']])) / 1e6:.2f}" if r["format"] == "tflite" else "-"
        lines.append(f"| {label} | {r['size_bytes'] / 1e6:.2f} | {gz} | {r['size_bytes'] / float_size:.3f} | "
                     f"{r['prediction_agreement']:.4f} | {r['max_abs_diff']:.3g} |")
    lines += ["", "LiteRT latency of one 224x224 image (median of "
              f"{args.runs} runs per cell, two interleaved rounds):", "",
              "| threads | float32 ms | int8 ms | int8 speed-up |", "|---:|---:|---:|---:|"]
    for threads in (1, 2):
        f32, i8 = latency[("none", threads)], latency[("int8", threads)]
        lines.append(f"| {threads} | {f32:.1f} | {i8:.1f} | {f32 / i8:.2f}x |")
    lines.append(f"\nfloat32 2 threads vs 1: {latency[('none', 1)] / latency[('none', 2)]:.2f}x; int8: "
                 f"{latency[('int8', 1)] / latency[('int8', 2)]:.2f}x.")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, "efficientnet-lite-deploy", body,
                      heading="EfficientNet-Lite0 (ImageNet weights) on phones: SavedModel and TFLite")


if __name__ == "__main__":
    main()
