"""The single-shot detector on the embedded shape scenes: COCO AP, and Keras vs TFLite speed side by side.

One :class:`~cs231n_tf.detection.task.DetectionTask` run on the engine (the package's default SSD:
a ``resnet18`` backbone cut at strides 8/16/32, a 64-channel FPN, RetinaNet heads with focal
loss and smooth-L1, Adam) on :func:`cs231n_tf.data.shapes.shape_scenes` (occluding circles,
squares and triangles on textured backgrounds, 64x64; boxes are the visible parts). The figures
are pycocotools' AP, AP50, AP75 and AR100 on the held-out test scenes, for the Keras model
(batched NMS, as the SavedModel serves it) and for the exported ``.tflite`` files (float and int8,
NMS inside via TFLite's builtin op), each verified by :func:`cs231n_tf.detection.export.export_detection`.
Speed: one image per call, interleaved rounds (Keras ``tf.function`` of the same single-image
graph vs the LiteRT interpreter), median wall time, as images per second.

    python experiments/detection_synthetic.py [--steps 600] [--repeats 50]
        [--backbone efficientnet_lite0 --backbone-weights imagenet]

Writes its section of experiments/RESULTS.md (one per backbone) and
experiments/figures/detection_synthetic[_BACKBONE].png (test scenes with the Keras model's
detections scoring >= 0.3).
"""

import argparse
import os
import sys
import tempfile
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402
from _timing import round_robin  # noqa: E402

from cs231n_tf.detection import task as dettask  # noqa: E402
from cs231n_tf.detection.export import export_detection  # noqa: E402
from cs231n_tf.detection.predict import draw_detections  # noqa: E402
from cs231n_tf.export.exporter import TFLiteRunner  # noqa: E402
from cs231n_tf.fileio import atomic_write_bytes  # noqa: E402

FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def figure(module, test, names, path, count=8, min_score=0.3):
    """A row of ``count`` test scenes (upscaled 3x) with their detections drawn."""
    tiles = []
    for image in test.images[:count]:
        out = {k: v.numpy()[0] for k, v in module.serve(tf.constant(image[None], tf.float32) / 255.0).items()}
        n = int(out["num_detections"])
        keep = out["scores"][:n] >= min_score
        big = np.kron(image, np.ones((3, 3, 1), np.uint8))
        tiles.append(draw_detections(big, out["boxes"][:n][keep] * 3, out["classes"][:n][keep],
                                     out["scores"][:n][keep], names, width=2))
        tiles.append(np.full((big.shape[0], 4, 3), 255, np.uint8))
    atomic_write_bytes(path, tf.io.encode_png(np.concatenate(tiles[:-1], axis=1)).numpy())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--backbone", default=dettask.DetectionConfig.backbone)
    parser.add_argument("--backbone-weights", default=None, choices=["imagenet"])
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args()
    config = dettask.DetectionConfig(epochs=10 ** 6, max_steps=args.steps, steps_per_execution=8, log_every=10 ** 6,
                                     backbone=args.backbone, backbone_weights=args.backbone_weights)
    default = args.backbone == dettask.DetectionConfig.backbone and not args.backbone_weights
    suffix = "" if default else f"_{args.backbone}_{args.backbone_weights or 'random'}"
    figure_name = f"detection_synthetic{suffix}.png"
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        start = time.perf_counter()
        result = dettask.train(config, run, log=lambda m: print(m, flush=True), progress=False)
        train_seconds = time.perf_counter() - start
        m = result.metrics
        reports = {q: export_detection(run, "tflite", q, out=os.path.join(tmp, "export")) for q in ("none", "int8")}
        model, _, names = dettask.load_model(run)
        module = dettask.DetectionServing(model, config, dettask.anchors_of(config))
        test = dettask.load_splits(config)[2]
        figure(module, test, names, os.path.join(FIGURES, figure_name))
        image = test.images[0][None].astype(np.float32) / 255.0
        threads = os.cpu_count()
        runners = {q: TFLiteRunner(model_path=reports[q]["path"], num_threads=threads) for q in reports}
        feed = tf.constant(image)
        times = round_robin({
            "keras": lambda: module.serve_single(feed)["num_detections"].numpy(),
            "tflite_float": lambda: runners["none"](image),
            "tflite_int8": lambda: runners["int8"](image),
        }, args.repeats)
    speed = {k: 1.0 / float(np.median([w for w, _ in v])) for k, v in times.items()}
    sizes = {q: reports[q]["size_bytes"] / 2 ** 20 for q in reports}
    rows = [("Keras (AP: batched NMS, the SavedModel's graph; speed: the .tflite's graph in TensorFlow)", m["test_AP"], m["test_AP50"], m["test_AP75"],
             m["test_AR100"], speed["keras"], None),
            ("TFLite float (builtin NMS per class + top-k)", reports["none"]["AP"], reports["none"]["AP50"],
             reports["none"]["AP75"], reports["none"]["AR100"], speed["tflite_float"], sizes["none"]),
            ("TFLite int8 (full-integer network, float NMS)", reports["int8"]["AP"], reports["int8"]["AP50"],
             reports["int8"]["AP75"], reports["int8"]["AR100"], speed["tflite_int8"], sizes["int8"])]
    body = [f"SSD ({args.backbone} backbone ({args.backbone_weights or 'random'} weights) cut at strides 8/16/32, 64-channel FPN, RetinaNet heads, focal loss + smooth-L1, "
            f"Adam 1e-3, flip + scale augmentation) trained {m['steps']} steps of batch {config.batch_size} "
            f"({train_seconds:.0f} s) on {config.train_images} embedded shape scenes of {config.image_size}x"
            f"{config.image_size} (3 classes, 2-5 occluding objects, all COCO-'small'); pycocotools on "
            f"{config.test_images} held-out scenes. Speed: one image per call, median of {args.repeats} interleaved "
            f"rounds, TFLite with {threads} threads; the ratio is against Keras.", "",
            f"Command: `{command()}`; machine: {machine()}.", "",
            "| model | AP | AP50 | AP75 | AR100 | images/s | vs Keras | size (MiB) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, ap, ap50, ap75, ar, ips, size in rows:
        body.append(f"| {name} | {ap:.3f} | {ap50:.3f} | {ap75:.3f} | {ar:.3f} | {ips:.0f} | "
                    f"{ips / speed['keras']:.2f}x | {'-' if size is None else f'{size:.1f}'} |")
    body += ["", f"Keras AP with the TFLite graph's post-processing: {reports['none']['keras_AP']:.3f} (float export "
             f"{reports['none']['AP']:.3f}, int8 {reports['int8']['AP']:.3f}).", "",
             f"![test scenes with detections](figures/{figure_name})"]
    text = "\n".join(body)
    print(text)
    write_section(args.results, f"detection_synthetic{suffix}", text,
                  heading=f"Object detection: single-shot detector ({args.backbone}, {args.backbone_weights or 'random'} "
                          "weights) on the shape scenes (lecture 11)")


if __name__ == "__main__":
    main()
