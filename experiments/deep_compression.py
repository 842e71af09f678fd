"""Deep Compression (Han, Mao & Dally 2016) of LeNet-300-100 and LeNet-5 on the embedded digits.

Each model is trained with the package trainer (``cs231n_tf.train.train``), then compressed by
``cs231n_tf.compress.deep_compression.compress``: Han et al.'s iterative magnitude pruning with
retraining (per-layer sparsity targets in the spirit of the paper's tables 2 and 3), sparsity-
preserving weight clustering with centroid fine-tuning, and relative-index + Huffman coding. The
compressed size is ``len()`` of the encoded payload (code tables, codebooks, shapes and float32
biases included) and the "after" accuracy is that of a fresh model loaded from the decoded
payload, on the test split.

Han et al. report 40x (LeNet-300-100) and 39x (LeNet-5) on MNIST with no accuracy lost. The
digits images are 8x8, so LeNet-300-100 has 64 inputs (50,610 weights instead of 266,610) and
LeNet-5 pads them to 32x32 (61,706 weights as in the paper). Goal here: >= 35x with <= 0.5 points
of test accuracy lost (the digits test split has 359 images: one image is 0.28 points), so every
model is trained and compressed with three seeds and the mean is reported beside each run.

    python experiments/deep_compression.py
"""

import argparse
import os
import platform
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import tensorflow as tf

from cs231n_tf import models
from cs231n_tf.compress import deep_compression, pruning
from cs231n_tf.train.evaluate import load_run
from cs231n_tf.train.trainer import train

# Per-layer targets (fraction of weights removed, shared values per layer), after Han et al. 2016
# tables 2-3, with zero counted as one of the k values.
SETTINGS = {
    "lenet300_100": {"sparsity": {"fc1": 0.91, "fc2": 0.94, "logits": 0.65},
                     "clusters": {"fc1": 8, "fc2": 8, "logits": 8}},
    "lenet5": {"sparsity": {"c1": 0.4, "c3": 0.85, "c5": 0.95, "f6": 0.9, "logits": 0.7},
               "clusters": {"c1": 16, "c3": 16, "c5": 8, "f6": 8, "logits": 8}},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of the dense baseline")
    parser.add_argument("--weight-decay", type=float, default=1e-3,
                        help="L2 penalty of the dense baseline (Han et al. 2015 prune L2-trained nets)")
    parser.add_argument("--prune-rounds", type=int, default=4)
    parser.add_argument("--prune-epochs", type=int, default=8, help="retraining epochs per pruning round")
    parser.add_argument("--cluster-epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3, help="retraining learning rate (Adam)")
    parser.add_argument("--cluster-lr", type=float, default=3e-4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="training/fine-tuning seeds; the data split is fixed (split_seed 0)")
    parser.add_argument("--out", default="experiments/out/deep_compression", help="where the runs go")
    args = parser.parse_args()

    start = time.time()
    summary = []
    for name in args.models:
        for seed in args.seeds:
            run_dir = os.path.join(args.out, f"{name}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}")
            result = train(run_dir=run_dir, model=name, epochs=args.epochs, weight_decay=args.weight_decay,
                           seed=seed, log_every=1000)
            data = load_run(run_dir).load_data()
            setting = SETTINGS[name]
            dc = deep_compression.compress(
                result.model, data, setting["sparsity"], setting["clusters"], prune_rounds=args.prune_rounds,
                prune_epochs=args.prune_epochs, cluster_epochs=args.cluster_epochs, lr=args.lr,
                cluster_lr=args.cluster_lr, seed=seed, log=print)
            fresh = models.build(name, data.info.image_shape, data.info.num_classes)
            deep_compression.load_weights(fresh, dc.encoding.blob)
            before = result.metrics["test_accuracy"]
            after = pruning.accuracy(fresh, data)
            if seed == args.seeds[0]:
                print(f"\n### {name} (seed {seed}): Han et al.'s table (digits, {data.info.num_train} training images)\n")
                print(dc.encoding.table())
            kept = sum(r.get("nonzeros", r["weights"]) for r in dc.encoding.rows)
            summary.append((name, seed, fresh.count_params(), kept, before, dc.history["accuracy_pruned"], after,
                            dc.encoding.float32_bytes, dc.encoding.size_bytes, dc.encoding.compression_ratio))
            tf.keras.backend.clear_session()

    print("\n### Summary (test split: 359 images, one image = 0.28 points)\n")
    print("| model | seed | weights | kept | test acc. dense | pruned | pruned+clustered+Huffman (decoded) | "
          "points lost | float32 bytes | compressed bytes | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, seed, params, kept, before, pruned, after, raw, size, ratio in summary:
        print(f"| {name} | {seed} | {params:,} | {kept:,} | {before:.4f} | {pruned:.4f} | {after:.4f} | "
              f"{100 * (before - after):+.2f} | {raw:,} | {size:,} | {ratio:.1f}x |")
    for name in args.models:
        rows = [r for r in summary if r[0] == name]
        lost = [100 * (r[4] - r[6]) for r in rows]
        ratios = [r[9] for r in rows]
        print(f"| **{name} mean** | {len(rows)} seeds | | | {sum(r[4] for r in rows) / len(rows):.4f} | "
              f"{sum(r[5] for r in rows) / len(rows):.4f} | {sum(r[6] for r in rows) / len(rows):.4f} | "
              f"**{sum(lost) / len(lost):+.2f}** (range {min(lost):+.2f} to {max(lost):+.2f}) | | | "
              f"**{sum(ratios) / len(ratios):.1f}x** |")
    print(f"\nMachine: {os.cpu_count()}-core CPU, Python {platform.python_version()}, TF {tf.__version__}; "
          f"wall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
