"""Regularisation ablations (lecture 7) on the embedded digits data at a fixed training budget.

    python experiments/ablations.py [--epochs 12] [--seeds 0,1,2]

The course's three-layer convnet (conv - ReLU - pool - affine - ReLU - affine; 16 3x3 filters,
64 hidden units) trained with Adam (lr 1e-3, batch 64) for the same number of epochs in every
variant, through the package's trainer:

- baseline;
- + dropout 0.5 after the hidden layer (Srivastava et al. 2014);
- + augmentation: random 8x8 crops of the image zero-padded by 1 pixel (no flips: digits are not
  mirror-symmetric);
- + batchnorm after the convolution (Ioffe & Szegedy 2015);
- all three together.

Each variant runs once per seed (the seed fixes initialisation, data order, dropout masks and
augmentation; the train/validation/test split is the same for all). Prints a markdown table of
test accuracy (mean and standard deviation over seeds), test accuracy with test-time augmentation
(``cs231n_tf.data.augment.tta_predict``: the image and its four 1-pixel corner shifts, softmax
averaged; no flips) and the final training loss.
"""

import argparse
import platform
import sys
import tempfile
import time

VARIANTS = [
    ("baseline", {}, []),
    ("+ dropout 0.5", {"dropout": 0.5}, []),
    ("+ augmentation (crop:1)", {}, ["crop:1"]),
    ("+ batchnorm", {"batchnorm": True}, []),
    ("+ all three", {"dropout": 0.5, "batchnorm": True}, ["crop:1"]),
]
BASE_OPTIONS = {"num_filters": 16, "filter_size": 3, "hidden_dim": 64}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]

    import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
    import numpy as np
    import tensorflow as tf

    from cs231n_tf import data
    from cs231n_tf.data.augment import tta_predict
    from cs231n_tf.train.config import TrainConfig
    from cs231n_tf.train.trainer import Trainer

    splits = data.load("digits", batch_size=args.batch_size)
    x_test = splits.to_unit(splits.arrays["x_test"]).numpy()
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        for label, options, augment in VARIANTS:
            accs, tta_accs, losses = [], [], []
            for seed in seeds:
                config = TrainConfig(model="three_layer_convnet", model_options={**BASE_OPTIONS, **options},
                                     epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                                     augment=augment, log_every=1000)
                result = Trainer(config, f"{root}/{len(rows)}-{seed}", data=splits, log=lambda *_: None).run()
                accs.append(result.metrics["test_accuracy"])
                losses.append(result.metrics["final_train_loss"])
                probs = tta_predict(result.model, x_test, padding=1, flips=False, preprocess=splits.standardize)
                tta_accs.append(float((probs.argmax(-1) == splits.arrays["y_test"]).mean()))
            rows.append((label, np.mean(accs), np.std(accs), accs, np.mean(tta_accs), np.mean(losses)))
            print(f"{label}: {np.mean(accs):.4f}", file=sys.stderr, flush=True)
    wall = time.perf_counter() - start
    print(f"three_layer_convnet {BASE_OPTIONS} on digits ({splits.info.num_train} train / {splits.info.num_test} test), "
          f"Adam lr {args.lr}, batch {args.batch_size}, {args.epochs} epochs, seeds {seeds}; "
          f"{platform.python_version()}, TF {tf.__version__}, wall {wall:.0f} s\n")
    print("| variant | test accuracy (mean ± std) | per seed | with TTA (mean) | final train loss (mean) |")
    print("|---|---:|---|---:|---:|")
    for label, mean, std, accs, tta, loss in rows:
        print(f"| {label} | {mean:.4f} ± {std:.4f} | {', '.join(f'{a:.4f}' for a in accs)} | {tta:.4f} | {loss:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
