"""Transfer learning in miniature (lecture 7's table): digits 0-4 -> digits 5-9.

The source network (``--model``, default ``small_convnet``) is trained on the digits 0-4. The
target task is the digits 5-9 (relabelled 0-4): a fixed test set of 30% of those images, and a
training set of either ``--small`` images per class or all the remaining ones (about 125 per
class). For each target size:

- (a) linear probe: logistic regression on the source network's frozen penultimate features;
- (b) fine-tune the last block: new head trained alone (``--head-epochs`` at ``--lr``), then the
  last block unfrozen (``--finetune-epochs`` at ``--finetune-lr``), batchnorm kept frozen;
- (c) fine-tune everything: the same, with every block unfrozen;
- (d) from scratch: the same network trained on the target set only for head + fine-tune epochs.

The 8x8 digits of two class groups share strokes, not classes, so this is the lecture's
"different but related data" case. Data files and runs go to ``--out`` (git-ignored).

    python experiments/transfer.py
"""

import argparse
import os
import platform
import shutil
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

from cs231n_tf import data as data_lib
from cs231n_tf.data import sources
from cs231n_tf.train import transfer
from cs231n_tf.train.evaluate import load_run
from cs231n_tf.train.config import TrainConfig
from cs231n_tf.train.trainer import Trainer, train


def quiet(*_):
    pass


def write_tasks(out, small, seed):
    """Source npz (digits 0-4) and two target npz files (digits 5-9; small and full training sets)."""
    raw = sources.load_digits()
    x = np.round(raw.x_train * (255 / 16)).astype(np.uint8)
    y = raw.y_train
    rng = np.random.default_rng(seed)

    def split(classes, test_share):
        train_idx, test_idx = [], []
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            cut = int(round(test_share * len(idx)))
            test_idx.append(idx[:cut])
            train_idx.append(idx[cut:])
        return train_idx, np.concatenate(test_idx)

    paths = {}
    src_train, src_test = split(range(5), 0.2)
    src_train = np.concatenate(src_train)
    paths["source"] = os.path.join(out, "source.npz")
    np.savez(paths["source"], x_train=x[src_train], y_train=y[src_train], x_test=x[src_test], y_test=y[src_test])
    tgt_train, tgt_test = split(range(5, 10), 0.3)
    for name, per_class in (("small", small), ("full", None)):
        idx = np.concatenate([t[:per_class] for t in tgt_train])
        paths[name] = os.path.join(out, f"target_{name}.npz")
        np.savez(paths[name], x_train=x[idx], y_train=y[idx] - 5, x_test=x[tgt_test], y_test=y[tgt_test] - 5)
    return {k: f"npz:{v}" for k, v in paths.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_convnet")
    parser.add_argument("--width", type=int, default=16, help="small_convnet width")
    parser.add_argument("--source-epochs", type=int, default=20)
    parser.add_argument("--small", type=int, default=20, help="target training images per class (small set)")
    parser.add_argument("--head-epochs", type=int, default=10)
    parser.add_argument("--finetune-epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-2, help="head phase (and from-scratch) learning rate")
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="experiments/out/transfer")
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    start = time.perf_counter()
    tasks = write_tasks(args.out, args.small, args.seed)
    options = {"width": args.width} if args.model == "small_convnet" else {}
    source_run = os.path.join(args.out, "source_run")
    src = train(run_dir=source_run, model=args.model, model_options=options, dataset=tasks["source"],
                epochs=args.source_epochs, batch_size=32, seed=args.seed, log_every=10_000, steps_per_execution=5)
    source_model = load_run(source_run).model

    rows = []
    for size in ("small", "full"):
        target = data_lib.load(tasks[size], validation_fraction=0.0, batch_size=32)
        per_class = target.info.num_train // target.info.num_classes
        # Small sets get a smaller batch so that an epoch still holds several steps.
        batch = 20 if target.info.num_train < 320 else 32
        # Several steps per graph call: the trainer's per-call overhead dominates on 8x8 images.
        common = dict(validation_fraction=0.0, batch_size=batch, log=quiet, steps_per_execution=5)

        f_train, y_train = transfer.extract_features(source_model, target.split("train"))
        f_test, y_test = transfer.extract_features(source_model, target.split("test"))
        probe = transfer.linear_probe(f_train, y_train)
        rows.append((per_class, "(a) linear probe on frozen features", float((probe.predict(f_test) == y_test).mean()),
                     f_train.shape[1] * 5 + 5))
        for label, blocks in (("(b) fine-tune last block", 1), ("(c) fine-tune all blocks", None)):
            out = os.path.join(args.out, f"{size}_{'last' if blocks else 'all'}")
            r = transfer.finetune(source_run, tasks[size], out, head_epochs=args.head_epochs, unfreeze_blocks=blocks,
                                  finetune_epochs=args.finetune_epochs, lr=args.lr, finetune_lr=args.finetune_lr,
                                  **common)
            trained = r.metrics["finetune"]["finetune"]["trainable_params"]
            rows.append((per_class, label, r.metrics["test_accuracy"], trained))
        scratch = TrainConfig(model=args.model, model_options=options, dataset=tasks[size], seed=args.seed,
                              epochs=args.head_epochs + args.finetune_epochs, lr=args.lr, validation_fraction=0.0,
                              batch_size=batch, log_every=10_000, steps_per_execution=5)
        r = Trainer(scratch, os.path.join(args.out, f"{size}_scratch"), log=quiet).run()
        rows.append((per_class, "(d) from scratch", r.metrics["test_accuracy"], r.metrics["model_params"]))

    print(f"\nsource: {args.model} {options} on digits 0-4, test accuracy {src.metrics['test_accuracy']:.4f}; "
          f"target: digits 5-9, {target.info.num_test} test images; {platform.python_version()}, TF {tf.__version__}, "
          f"{os.cpu_count()} CPU cores; {time.perf_counter() - start:.0f} s in all\n")
    print("| target images per class | method | trained parameters | test accuracy |")
    print("|---:|---|---:|---:|")
    for per_class, label, acc, params in rows:
        print(f"| {per_class} | {label} | {params:,} | {acc:.4f} |")


if __name__ == "__main__":
    main()
