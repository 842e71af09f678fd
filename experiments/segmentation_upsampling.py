"""Lecture 11's upsampling comparison, measured: the same FCN with each upsampling, and with U-Net skips.

Every variant is trained with the same budget on the embedded shapes scenes
(:func:`cs231n_tf.data.shapes.shape_scenes`: 3 shape classes + background, random colours,
occlusion, gradient-and-stripe backgrounds, noise): the same data, steps, batch, optimiser and
augmentation, one :class:`~cs231n_tf.segmentation.task.SegmentationTask` run per (variant, seed)
on the engine in memory. The FCN is :func:`cs231n_tf.segmentation.fcn` (two conv blocks per stage,
max pooling) with the decoder's 2x upsamplings set to nearest neighbour, bed of nails, max
unpooling (the encoder pools' switches), transposed convolution (learnable 4x4 stride 2) or
bilinear; ``unet`` is :func:`cs231n_tf.segmentation.unet` (transposed convolution plus
concatenated encoder features). The figure is the test split's mean IoU (and pixel accuracy),
mean and standard deviation over the seeds.

    python experiments/segmentation_upsampling.py [--steps 200] [--seeds 3] [--image-size 32]

The table starts with the floor, the mIoU of predicting background everywhere.
"""

import argparse
import os
import sys
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
from sklearn.metrics import confusion_matrix

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402

from cs231n_tf.segmentation.task import SegmentationConfig, SegmentationTask, load_splits  # noqa: E402
from cs231n_tf.engine import Engine  # noqa: E402
from cs231n_tf.segmentation.metrics import iou_from_confusion  # noqa: E402

VARIANTS = [("fcn", "nearest"), ("fcn", "bed_of_nails"), ("fcn", "max_unpool"), ("fcn", "transposed"),
            ("fcn", "bilinear"), ("unet", "transposed")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--train-images", type=int, default=512)
    parser.add_argument("--test-images", type=int, default=128)
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args()
    base = SegmentationConfig(image_size=args.image_size, depth=2, filters=16, train_images=args.train_images,
                              validation_images=16, test_images=args.test_images, batch_size=args.batch_size,
                              epochs=10 ** 6, max_steps=args.steps, log_every=10 ** 6, steps_per_execution=10,
                              lr=3e-3)
    data = load_splits(base)  # the same scenes for every variant and seed
    test = data[2]
    # The floor every network must beat: predicting background everywhere.
    floor_iou, floor_mean, floor_accuracy = iou_from_confusion(
        confusion_matrix(test.masks.ravel(), np.zeros(test.masks.size, int), labels=range(test.num_classes)))
    rows = []
    for architecture, upsampling in VARIANTS:
        scores, accuracies, seconds, params = [], [], [], None
        for seed in range(args.seeds):
            config = SegmentationConfig(**{**vars(base), "architecture": architecture, "upsampling": upsampling,
                                           "seed": seed})
            start = time.perf_counter()
            result = Engine(SegmentationTask(config, data=data), None, log=None, progress=False).run()
            seconds.append(time.perf_counter() - start)
            scores.append(result.metrics["test_mean_iou"])
            accuracies.append(result.metrics["test_pixel_accuracy"])
            params = result.metrics["model_params"]
            print(f"{architecture} {upsampling} seed {seed}: test mIoU {scores[-1]:.3f} pixel accuracy "
                  f"{accuracies[-1]:.3f} ({seconds[-1]:.0f} s)", flush=True)
        rows.append((architecture, upsampling, params, np.mean(scores), np.std(scores), np.mean(accuracies),
                     np.mean(seconds), scores))
    body = [f"Same budget for every variant: {args.steps} steps of batch {args.batch_size} (Adam 3e-3, flip+scale "
            f"augmentation) on {args.train_images} embedded shapes scenes of {args.image_size}x{args.image_size} "
            f"(4 classes with background); test mIoU on {args.test_images} held-out scenes, mean ± std over "
            f"{args.seeds} seed(s) (weights, batch order, augmentation). Depth 2, 16 filters in the first stage.",
            "", f"Command: `{command()}`; machine: {machine()}.", "",
            "| network | upsampling | parameters | test mIoU | pixel accuracy | per-seed mIoU | s / run |",
            "| --- | --- | ---: | ---: | ---: | --- | ---: |"]
    body.append(f"| all background (no network) | - | 0 | {floor_mean:.3f} | {floor_accuracy:.3f} | - | - |")
    for architecture, upsampling, params, mean, std, accuracy, secs, scores in rows:
        name = "U-Net (skips)" if architecture == "unet" else "FCN"
        body.append(f"| {name} | {upsampling} | {params:,} | {mean:.3f} ± {std:.3f} | {accuracy:.3f} | "
                    f"{', '.join(f'{s:.3f}' for s in scores)} | {secs:.0f} |")
    text = "\n".join(body)
    print(text)
    # One section per budget, so a longer run sits beside the default one.
    write_section(args.results, f"segmentation_upsampling_{args.steps}steps_{args.seeds}seeds", text,
                  heading=f"Semantic segmentation: upsampling choices and U-Net skips, {args.steps} steps x "
                          f"{args.seeds} seed(s) (lecture 11)")


if __name__ == "__main__":
    main()
