"""Segmentation inference throughput: Keras vs TFLite float vs TFLite int8, the same model and images.

A segmentation network (:mod:`cs231n_tf.segmentation`) is trained briefly on the embedded shapes
scenes so its predictions mean something, then exported twice by the package's one export path
(:func:`cs231n_tf.segmentation.export.export_segmentation`: float and full-integer int8, each
verified by its mean IoU on the test split against Keras). The three are then timed side by side
on the same test images, interleaved round by round (:func:`_timing.round_robin`): the Keras
model's compiled serving function (``SegmentationServing.serve``, a ``tf.function``) and the two
``.tflite`` files through the shared :class:`~cs231n_tf.export.exporter.TFLiteRunner`, at batch 1
(a phone's case) and batch 16. Images per second from the median round; ratios against Keras.

    python experiments/bench_segmentation_inference.py [--image-size 64] [--steps 400] [--repeats 7]
"""

import argparse
import os
import sys
import tempfile

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402
from _timing import round_robin  # noqa: E402

from cs231n_tf.export.exporter import TFLiteRunner  # noqa: E402
from cs231n_tf.segmentation.export import export_segmentation  # noqa: E402
from cs231n_tf.segmentation.task import (SegmentationConfig, SegmentationServing, load_model,  # noqa: E402
                                         load_splits, train)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--architecture", default="unet", choices=["fcn", "unet"])
    parser.add_argument("--upsampling", default="transposed")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--images", type=int, default=64, help="test images timed per round")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="LiteRT interpreter threads")
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args()
    config = SegmentationConfig(image_size=args.image_size, architecture=args.architecture,
                                upsampling=args.upsampling, depth=3, filters=16, train_images=512,
                                validation_images=16, test_images=args.images, batch_size=16, epochs=10 ** 6,
                                max_steps=args.steps, log_every=10 ** 6, steps_per_execution=10, lr=3e-3)
    with tempfile.TemporaryDirectory() as scratch:
        run = os.path.join(scratch, "run")
        train(config, run, log=None, progress=False)
        reports = {q: export_segmentation(run, "tflite", q, out=os.path.join(scratch, "export"))
                   for q in ("none", "int8")}
        model, config, _ = load_model(run)
        images = load_splits(config)[2].images.astype(np.float32) / 255.0
        serving = SegmentationServing(model, images.shape[1:])
        runners = {q: TFLiteRunner(model_path=r["path"], num_threads=args.threads) for q, r in reports.items()}
        rows = {}
        for batch in (1, 16):
            chunks = [images[i:i + batch] for i in range(0, len(images) - batch + 1, batch)]
            count = batch * len(chunks)
            tensors = [tf.constant(c) for c in chunks]

            def keras():
                for x in tensors:
                    serving.serve(x)["labels"].numpy()

            def lite(runner):
                return lambda: [runner(c)["labels"] for c in chunks]

            times = round_robin({"Keras": keras, "TFLite float": lite(runners["none"]),
                                 "TFLite int8": lite(runners["int8"])}, args.repeats)
            for name, samples in times.items():
                rows.setdefault(name, {})[batch] = count / float(np.median([wall for wall, _ in samples]))
    k = reports["none"]
    mious = {"Keras": k["keras_mean_iou"], "TFLite float": k["mean_iou"], "TFLite int8": reports["int8"]["mean_iou"]}
    agreement = {"Keras": 1.0, "TFLite float": k["label_agreement"], "TFLite int8": reports["int8"]["label_agreement"]}
    sizes = {"Keras": None, "TFLite float": k["size_bytes"], "TFLite int8": reports["int8"]["size_bytes"]}
    body = [f"A {'U-Net' if args.architecture == 'unet' else 'FCN'} ({args.upsampling} upsampling, "
            f"depth 3, 16 filters) trained {args.steps} steps on the embedded shapes scenes, "
            f"{args.image_size}x{args.image_size}; {len(images)} test scenes timed per round, {args.repeats} "
            f"interleaved rounds after a warm-up, median round; LiteRT with {args.threads} thread(s), Keras through "
            "the compiled serving `tf.function`. mIoU on the same test scenes; label agreement with Keras per pixel.",
            "", f"Command: `{command()}`; machine: {machine()}.", "",
            "| model | file size | test mIoU | labels as Keras | images/s, batch 1 | vs Keras | images/s, batch 16 "
            "| vs Keras |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, speed in rows.items():
        size = f"{sizes[name] / 1024:.0f} KiB" if sizes[name] else "-"
        body.append(f"| {name} | {size} | {mious[name]:.3f} | {agreement[name]:.4f} | {speed[1]:.0f} | "
                    f"{speed[1] / rows['Keras'][1]:.2f}x | {speed[16]:.0f} | {speed[16] / rows['Keras'][16]:.2f}x |")
    text = "\n".join(body)
    print(text)
    write_section(args.results, "bench_segmentation_inference", text,
                  heading="Segmentation inference: Keras vs TFLite float vs int8 (lecture 11, lecture 15)")


if __name__ == "__main__":
    main()
