"""Classification + localization (lecture 11), measured: localization accuracy and the box-loss weight.

One :class:`~cs231n_tf.detection.localization.LocalizationTask` run per row on the engine, in memory,
all on the same embedded one-shape images (:func:`cs231n_tf.data.shapes.single_shapes`: a circle,
square or triangle of random size, position and colour on a textured background) with the same
backbone (``small_convnet`` cut at its last feature map), steps, batch and optimiser. The loss is
``class loss + box_weight * box loss``; the rows vary ``box_weight`` (smooth-L1), compare L2 at
weight 1, and add the five keypoints (lecture 11's pose-style regression). "Localization accuracy"
is the lecture's "correct": the class is right *and* the predicted box has IoU >= 0.5 with the
true one. The floor is the best constant guess: the majority class and the training set's mean box.
A figure shows test images with the predicted (red) and true (green) boxes of the weight-1 run.

    python experiments/localization_synthetic.py [--steps 300] [--seeds 2] [--image-size 32]
"""

import argparse
import dataclasses
import os
import sys
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import HERE, RESULTS, command, machine, write_section  # noqa: E402

from cs231n_tf.detection import localization as loc  # noqa: E402
from cs231n_tf.detection.boxes import iou  # noqa: E402
from cs231n_tf.engine import Engine  # noqa: E402
from cs231n_tf.fileio import atomic_write_bytes  # noqa: E402

# (box loss, box weight, keypoints)
ROWS = [("smooth_l1", 0.1, False), ("smooth_l1", 1.0, False), ("smooth_l1", 10.0, False), ("l2", 1.0, False),
        ("smooth_l1", 1.0, True)]
FIGURE = os.path.join(HERE, "figures", "localization_predictions.png")


def constant_floor(train, test):
    """Localization accuracy, accuracy and mean IoU of always answering the majority class and the mean box."""
    majority = np.bincount(train.classes).argmax()
    overlap = iou(np.repeat(train.boxes.mean(0, keepdims=True), len(test), 0), test.boxes, pairwise=False).numpy()
    right = test.classes == majority
    return float(np.mean(right & (overlap >= 0.5))), float(np.mean(right)), float(np.mean(overlap))


def figure(model, test, names, path, count=8, scale=4):
    """A row of ``count`` test images, upscaled ``scale`` x, with the true (green) and predicted (red) boxes."""
    import tensorflow as tf

    found = loc.predict(model, test.batch()["images"][:count])
    tiles = []
    for i in range(count):
        image = np.repeat(np.repeat(test.images[i], scale, 0), scale, 1)
        image = loc.draw_prediction(image, test.boxes[i], colour=(40, 200, 40))
        image = loc.draw_prediction(image, found["boxes"][i], f"{names[found['classes'][i]]} {found['scores'][i]:.2f}")
        tiles.append(np.pad(image, ((2, 2), (2, 2), (0, 0)), constant_values=255))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_bytes(path, tf.io.encode_png(np.concatenate(tiles, 1)).numpy())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-images", type=int, default=2048)
    parser.add_argument("--test-images", type=int, default=512)
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args()
    base = loc.LocalizationConfig(image_size=args.image_size, train_images=args.train_images, validation_images=32,
                                  test_images=args.test_images, batch_size=args.batch_size, epochs=10 ** 6,
                                  max_steps=args.steps, log_every=10 ** 6, steps_per_execution=10, lr=2e-3)
    data = {kp: loc.load_splits(dataclasses.replace(base, keypoints=kp)) for kp in (False, True)}
    train, _, test = data[False]
    floor = constant_floor(train, test)
    rows = []
    for box_loss, weight, keypoints in ROWS:
        runs, seconds = [], []
        for seed in range(args.seeds):
            config = dataclasses.replace(base, box_loss=box_loss, box_weight=weight, keypoints=keypoints, seed=seed)
            start = time.perf_counter()
            result = Engine(loc.LocalizationTask(config, data=data[keypoints]), None, log=None, progress=False).run()
            seconds.append(time.perf_counter() - start)
            runs.append(result.metrics)
            m = result.metrics
            print(f"{box_loss} x {weight:g}{' + keypoints' if keypoints else ''} seed {seed}: localization "
                  f"accuracy {m['test_localization_accuracy']:.3f}, accuracy {m['test_accuracy']:.3f}, mean IoU "
                  f"{m['test_mean_iou']:.3f} ({seconds[-1]:.0f} s)", flush=True)
            if (box_loss, weight, keypoints, seed) == ("smooth_l1", 1.0, False, 0):
                figure(result.task.model, test, test.class_names, FIGURE)
        rows.append((box_loss, weight, keypoints, runs, float(np.mean(seconds))))
    params = rows[0][3][0]["model_params"]

    def stat(runs, key):
        values = [m[f"test_{key}"] for m in runs]
        return f"{np.mean(values):.3f} ± {np.std(values):.3f}"

    body = [f"Same budget for every row: {args.steps} steps of batch {args.batch_size} (Adam 2e-3) on "
            f"{args.train_images} embedded one-shape images of {args.image_size}x{args.image_size} (3 classes); "
            f"`small_convnet` backbone cut at its last feature map + the two-headed FC head ({params:,} parameters); "
            f"test metrics on {args.test_images} held-out images, mean ± std over {args.seeds} seed(s) (weights and "
            "batch order). Box targets are Fast R-CNN offsets against the whole image; *localization accuracy* = "
            "class right and IoU >= 0.5.",
            "", f"Command: `{command()}`; machine: {machine()}.", "",
            "| box loss | box weight | localization accuracy | accuracy | mean IoU | class loss | box loss (unweighted) "
            "| keypoint PCK@0.2 | s / run |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| constant guess (majority class, mean box) | - | {floor[0]:.3f} | {floor[1]:.3f} | {floor[2]:.3f} | - "
            "| - | - | - |"]
    for box_loss, weight, keypoints, runs, seconds in rows:
        pck = stat(runs, "pck") if keypoints else "-"
        name = f"{box_loss} + 5 keypoints" if keypoints else box_loss
        body.append(f"| {name} | {weight:g} | {stat(runs, 'localization_accuracy')} | {stat(runs, 'accuracy')} | "
                    f"{stat(runs, 'mean_iou')} | {stat(runs, 'class_loss')} | {stat(runs, 'box_loss')} | {pck} | "
                    f"{seconds:.0f} |")
    body += ["", f"![test images: true boxes green, predicted red with class and score (smooth-L1, weight 1, seed 0)]"
                 f"(figures/{os.path.basename(FIGURE)})"]
    text = "\n".join(body)
    print(text)
    write_section(args.results, "localization_synthetic", text,
                  heading="Classification + localization: accuracy at IoU >= 0.5 and the box-loss weight (lecture 11)")


if __name__ == "__main__":
    main()
