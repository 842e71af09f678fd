"""NMS speed: the tier-1 ``tf.while_loop`` NMS vs ``tf.image.non_max_suppression`` vs the batched op.

All three run compiled (``tf.function``) on the same random boxes (clustered around 50 centres in
a 512x512 image, like a detector's raw outputs) with ``iou_threshold=0.5`` and
``max_output_size=100``, at 100, 1,000 and 10,000 boxes:

- tier 1: :func:`cs231n_tf.detection.nms` (greedy, one loop step per kept box, each ``O(N)``);
- ``tf.image.non_max_suppression`` (the C++ kernel with a priority queue);
- ``tf.image.combined_non_max_suppression`` through :func:`cs231n_tf.detection.batched_nms`
  (batch 1, one class: the op a detector's serving graph uses).

The tier-1 indices are checked equal to TF's before timing. Median milliseconds per call
(interleaved rounds, ``experiments/_timing.py``) and ratios to ``tf.image.non_max_suppression``.

    python experiments/bench_nms.py [--repeats 20]
"""

import argparse
import os
import sys

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402
from _timing import round_robin  # noqa: E402

from cs231n_tf.detection import batched_nms, nms  # noqa: E402

SIZES = (100, 1_000, 10_000)
IOU, MAX_OUT = 0.5, 100


def random_boxes(n, seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(32, 480, (50, 2))
    c = centres[rng.integers(50, size=n)] + rng.normal(0, 12, (n, 2))
    s = rng.uniform(16, 96, (n, 2))
    return (tf.constant(np.concatenate([c - s / 2, c + s / 2], 1), tf.float32),
            tf.constant(rng.random(n), tf.float32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds of each method per size")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = parser.parse_args()
    tf_nms = tf.function(lambda b, s: tf.image.non_max_suppression(b, s, MAX_OUT, IOU))
    combined = tf.function(lambda b, s: batched_nms(b[None], s[None, :, None], MAX_OUT, MAX_OUT, IOU,
                                                    float("-inf")).num_detections)
    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"Median milliseconds per call, iou_threshold={IOU}, max_output_size={MAX_OUT}, all compiled; "
             "ratio = time / `tf.image.non_max_suppression`'s.", "",
             "| boxes | kept | tier-1 `nms` | `tf.image.non_max_suppression` | `combined_non_max_suppression` "
             "(`batched_nms`) | tier-1 ratio | combined ratio |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in SIZES:
        boxes, scores = random_boxes(n, n)
        ours, ref = nms(boxes, scores, IOU, MAX_OUT).numpy(), tf_nms(boxes, scores).numpy()
        assert np.array_equal(ours, ref), f"tier-1 NMS differs from TF at {n} boxes"
        times = round_robin({"tier1": lambda: nms(boxes, scores, IOU, MAX_OUT).numpy(),
                             "tf": lambda: tf_nms(boxes, scores).numpy(),
                             "combined": lambda: combined(boxes, scores).numpy()}, args.repeats)
        ms = {k: 1e3 * float(np.median([w for w, _ in v])) for k, v in times.items()}
        lines.append(f"| {n:,} | {len(ref)} | {ms['tier1']:.2f} | {ms['tf']:.2f} | {ms['combined']:.2f} | "
                     f"{ms['tier1'] / ms['tf']:.1f}x | {ms['combined'] / ms['tf']:.1f}x |")
    lines.append("\nThe tier-1 loop pays one graph iteration per kept box (up to 100) over all N boxes; "
                 "the kernel's priority queue stops early. Indices were checked equal before timing.")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, "bench-nms", body, heading="NMS: tier-1 vs tf.image ops")


if __name__ == "__main__":
    main()
