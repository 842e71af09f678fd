"""Ensembles on digits (lecture 7): one model vs independent ensembles vs snapshots vs weight averages.

All rows train ``--model`` on the embedded ``digits`` data with the same loop (the one-device
``tf.function`` loop of ``cs231n_tf.train.ensemble``, the trainer's loss), batch size and data
order, and are scored on the same test split (359 images):

- single model: Adam at ``--lr`` for ``--epochs`` (``train_independent`` with seed 0);
- independent ensemble: ``--members`` such runs with seeds 0..M-1, softmax probabilities averaged
  (``average_predictions``); it costs M times the single model's budget;
- snapshot ensemble (Huang et al. 2017): one run of ``--epochs`` epochs, Adam with a cyclic cosine
  rate peaking at ``--snapshot-lr``, M cycles, the M end-of-cycle snapshots averaged; same budget as
  the single model;
- EMA of the weights (each decay of ``--ema-decays``) and Polyak's running mean over the second half
  of training, each one run of ``--epochs`` epochs evaluated with the averaged weights: once with
  the batchnorm statistics averaged along with the weights, once with them re-estimated on one
  pass over the training data (``recompute_batchnorm``, as in SWA).

Differences of one or two test images (0.3-0.6 points) are within run-to-run noise on this split.

    python experiments/ensembles.py
"""

import argparse
import os
import platform
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import tensorflow as tf

from cs231n_tf import data as data_lib
from cs231n_tf.train import ensemble
from cs231n_tf.train.config import TrainConfig


def quiet(*_):
    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_convnet")
    parser.add_argument("--width", type=int, default=16, help="small_convnet width")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--members", type=int, default=5, help="ensemble members and snapshot cycles")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--snapshot-lr", type=float, default=3e-3)
    parser.add_argument("--ema-decays", type=float, nargs="+", default=[0.9, 0.99])
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    options = {"width": args.width} if args.model == "small_convnet" else {}
    config = TrainConfig(model=args.model, model_options=options, epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, log_every=10_000)
    digits = data_lib.load("digits", batch_size=args.batch_size)
    rows = []
    start = time.perf_counter()

    members = ensemble.train_independent(config, seeds=range(args.members), data=digits, log=quiet)
    independent = ensemble.average_predictions(members, digits.split("test")).report()
    single = independent["members"]["seed0"]
    rows.append(("single model (seed 0)", 1, args.epochs, single))
    rows.append((f"mean of {args.members} single models", 1, args.epochs, independent["mean_member"]))
    rows.append((f"independent ensemble of {args.members}", args.members, args.members * args.epochs,
                 independent["ensemble"]))

    snapshots = ensemble.train_snapshot_ensemble(config, cycles=args.members, data=digits, lr=args.snapshot_lr,
                                                 log=quiet)
    snap = snapshots.evaluate("test").report()
    rows.append(("last snapshot alone", 1, args.epochs, list(snap["members"].values())[-1]))
    rows.append((f"snapshot ensemble ({args.members} cycles)", args.members, args.epochs, snap["ensemble"]))
    for last in range(2, args.members):
        rows.append((f"snapshot ensemble, last {last} snapshots", last, args.epochs,
                     snapshots.evaluate("test", last=last).accuracy))

    for decay in args.ema_decays:
        ema = ensemble.train_averaged(config, decay=decay, data=digits, log=quiet)
        rows.append((f"final weights of the EMA run (decay {decay})", 1, args.epochs, ema.accuracy(averaged=False)))
        rows.append((f"EMA weights (decay {decay})", 1, args.epochs, ema.accuracy()))
        rows.append((f"EMA weights (decay {decay}), batchnorm re-estimated", 1, args.epochs,
                     ema.accuracy(recompute_batchnorm=True)))
    polyak = ensemble.train_averaged(config, decay=None, start_epoch=args.epochs // 2, data=digits, log=quiet)
    rows.append(("final weights of the Polyak run", 1, args.epochs, polyak.accuracy(averaged=False)))
    rows.append((f"Polyak mean (epochs {args.epochs // 2 + 1}-{args.epochs})", 1, args.epochs, polyak.accuracy()))
    rows.append((f"Polyak mean (epochs {args.epochs // 2 + 1}-{args.epochs}), batchnorm re-estimated", 1, args.epochs,
                 polyak.accuracy(recompute_batchnorm=True)))

    print(f"\n{args.model} ({options}) on digits, {digits.info.num_test} test images; "
          f"{platform.python_version()}, TF {tf.__version__}, {os.cpu_count()} CPU cores; "
          f"{time.perf_counter() - start:.0f} s in all\n")
    print("| method | models at test time | training epochs | test accuracy | gain over single |")
    print("|---|---:|---:|---:|---:|")
    for name, n_models, epochs, acc in rows:
        print(f"| {name} | {n_models} | {epochs} | {acc:.4f} | {100 * (acc - single):+.2f} pts |")


if __name__ == "__main__":
    main()
