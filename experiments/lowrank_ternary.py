"""Accuracy against model size for low-rank factorisation, ternary/binary weights and fixed point.

    python experiments/lowrank_ternary.py [--out experiments/out] [--epochs 20] [--finetune-epochs 2]

1. Trains ``lenet300_100`` and ``lenet5`` on the embedded ``digits`` with the package's ``train()``.
2. Low rank (``cs231n_tf.compress.lowrank.factorize``) of LeNet-300-100 at several kept energies:
   parameters, multiply-adds, test accuracy straight after the SVD and after fine-tuning.
3. Trained ternary quantization (``cs231n_tf.compress.ternary.ternarize``) of LeNet-300-100 at
   several thresholds ``t`` (and binary weights): non-zero weights, test accuracy before and after
   fine-tuning (the latent weights and the scales W_p, W_n are trained).
4. Fixed-point simulation (``cs231n_tf.compress.fixed_point.accuracy_per_bit_width``) of LeNet-5
   at 16/8/6/4 bits, before and after straight-through fine-tuning.

Prints markdown tables and saves ``lowrank_accuracy_vs_params.png`` and
``ternary_accuracy_vs_nonzero.png`` into ``--out``.
"""

import argparse
import os
import platform
import sys
import tempfile
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

from cs231n_tf import data
from cs231n_tf.compress import fixed_point, lowrank, ternary
from cs231n_tf.compress.distill import fine_tune
from cs231n_tf.train.trainer import train

ENERGIES = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
THRESHOLDS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)


def trained(name, epochs, seed):
    run_dir = tempfile.mkdtemp(prefix=f"lowrank-ternary-{name}-")
    return train(run_dir=run_dir, model=name, epochs=epochs, seed=seed, lr=3e-3, log_every=10_000)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--finetune-steps", type=int, default=100, help="fixed-point fine-tuning steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.time()
    os.makedirs(args.out, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = data.load("digits", batch_size=64)
    test = ds.split("test")
    epochs_of = lambda e: ds.train_epoch(1000 + e, args.seed)  # noqa: E731
    ft = args.finetune_epochs

    mlp = trained("lenet300_100", args.epochs, args.seed)
    base_params = mlp.model.count_params()
    base_acc = fixed_point.accuracy(mlp.model, test)

    lowrank_rows = []
    for energy in ENERGIES:
        small, report = lowrank.factorize(mlp.model, energy)
        before = fixed_point.accuracy(small, test)
        fine_tune(small, epochs_of, ft, 1e-3)
        ranks = ", ".join(f"{r.name}:{r.rank if r.rank is not None else 'full'}" for r in report.layers)
        lowrank_rows.append((energy, ranks, report.params_after, report.multiply_adds_after, before,
                             fixed_point.accuracy(small, test)))

    ternary_rows = []
    variants = [(f"ternary t={t:g}", ternary.ternarize(mlp.model, threshold=t)) for t in THRESHOLDS]
    variants.append(("binary", ternary.binarize(mlp.model)))
    for name, model in variants:
        before = fixed_point.accuracy(model, test)
        fine_tune(model, epochs_of, ft, 1e-3)
        kernels = ternary.quantized_kernels(model)
        nonzero = sum(int(np.count_nonzero(k)) for k in kernels.values())
        total = sum(k.size for k in kernels.values())
        ternary_rows.append((name, nonzero, total, before, fixed_point.accuracy(model, test)))

    lenet = trained("lenet5", args.epochs, args.seed)
    fixed_rows = fixed_point.accuracy_per_bit_width(lenet.model, ds, widths=(16, 8, 6, 4),
                                                    finetune_steps=args.finetune_steps, lr=1e-4)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r[2] for r in lowrank_rows], [r[4] for r in lowrank_rows], "o--", label="after SVD")
    ax.plot([r[2] for r in lowrank_rows], [r[5] for r in lowrank_rows], "o-", label=f"fine-tuned {ft} epochs")
    ax.axhline(base_acc, color="gray", lw=0.8, label=f"float ({base_params:,} params)")
    for r in lowrank_rows:
        ax.annotate(f"{r[0]:g}", (r[2], r[5]), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("test accuracy")
    ax.set_title("LeNet-300-100 on digits: SVD low rank (labels: kept energy)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "lowrank_accuracy_vs_params.png"), dpi=120)
    fig, ax = plt.subplots(figsize=(6, 4))
    tern = [r for r in ternary_rows if r[0].startswith("ternary")]
    ax.plot([r[1] for r in tern], [r[3] for r in tern], "o--", label="ternarized")
    ax.plot([r[1] for r in tern], [r[4] for r in tern], "o-", label=f"TTQ fine-tuned {ft} epochs")
    binary = ternary_rows[-1]
    ax.plot([binary[1]], [binary[4]], "s", label="binary, fine-tuned")
    ax.axhline(base_acc, color="gray", lw=0.8, label="float32")
    for r in tern:
        ax.annotate(r[0].split()[-1], (r[1], r[4]), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xlabel("non-zero weights")
    ax.set_ylabel("test accuracy")
    ax.set_title("LeNet-300-100 on digits: ternary weights (labels: threshold)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "ternary_accuracy_vs_nonzero.png"), dpi=120)

    print(f"\nMachine: {platform.machine()} {os.cpu_count()}-core CPU, Python {platform.python_version()}, "
          f"TF {tf.__version__}. digits: {ds.info.num_train} train / {ds.info.num_test} test images.")
    print(f"\nLeNet-300-100 (float32): {base_params:,} parameters, test accuracy {base_acc:.4f} "
          f"({args.epochs} epochs). Fine-tuning: {ft} epochs, Adam 1e-3.\n")
    print("| kept energy | ranks | parameters | multiply-adds | accuracy after SVD | fine-tuned |")
    print("|---:|---|---:|---:|---:|---:|")
    for energy, ranks, params, macs, before, after in lowrank_rows:
        print(f"| {energy:g} | {ranks} | {params:,} | {macs:,} | {before:.4f} | {after:.4f} |")
    print("\n| weights | non-zero / total weights | accuracy before fine-tuning | fine-tuned |")
    print("|---|---:|---:|---:|")
    for name, nonzero, total, before, after in ternary_rows:
        print(f"| {name} | {nonzero:,} / {total:,} | {before:.4f} | {after:.4f} |")
    print(f"\nLeNet-5 fixed point (float test accuracy {fixed_rows[0]['float_accuracy']:.4f}); "
          f"{args.finetune_steps} straight-through fine-tuning steps, Adam 1e-4.\n")
    print("| bits | accuracy | fine-tuned |")
    print("|---:|---:|---:|")
    for row in fixed_rows:
        print(f"| {row['bits']} | {row['accuracy']:.4f} | {row['finetuned_accuracy']:.4f} |")
    print(f"\nWall time: {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
