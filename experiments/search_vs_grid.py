"""Random search vs grid search at an equal trial budget (Bergstra & Bengio 2012; CS231n lecture 6).

Both methods get the same number of trials over the same log-scaled box of learning rate x weight
decay, each as a :func:`cs231n_tf.train.search.run_search` on an Optuna study. The grid is Optuna's
``GridSampler`` over sqrt(budget) values per axis (the centres of equal cells in log space); random
search is Optuna's ``RandomSampler`` drawing every trial log-uniformly from the box. Each trial trains the same model for the same short
budget on the embedded digits data; the trial with the best validation accuracy is selected and its
test accuracy reported. Bergstra & Bengio's argument: when one hyperparameter matters much more
than the other (here the learning rate), a 3x3 grid tries only 3 distinct learning rates, random
search tries 9.

    python experiments/search_vs_grid.py                # 9 trials, 3 seeds, a few minutes on 2 CPU cores
    python experiments/search_vs_grid.py --trials 16 --seeds 0 1 2 3 4
"""

import argparse
import math
import os
import tempfile
import time

import numpy as np


def best(trials):
    return max(trials, key=lambda t: (t["val"] if math.isfinite(t["val"]) else -1.0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="two_layer_net")
    parser.add_argument("--optimizer", default="momentum")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--trials", type=int, default=9, help="trial budget of each method (a square for the grid)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lr", default="1e-4:1", help="LOW:HIGH of the learning rate (log scale)")
    parser.add_argument("--weight-decay", default="1e-6:1e-1", help="LOW:HIGH of the weight decay (log scale)")
    args = parser.parse_args()
    per_axis = int(round(math.sqrt(args.trials)))
    if per_axis * per_axis != args.trials:
        parser.error(f"--trials must be a square for the grid, got {args.trials}")

    import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)

    from cs231n_tf.train.config import TrainConfig, load_data
    from cs231n_tf.train.search import parse_param, run_search

    base = TrainConfig(model=args.model, optimizer=args.optimizer, epochs=args.epochs, batch_size=args.batch_size)
    specs = [parse_param(f"lr={args.lr}:log"), parse_param(f"weight_decay={args.weight_decay}:log")]
    data = load_data(base)

    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        for seed in args.seeds:
            config = TrainConfig(**{**base.to_json(), "seed": seed})
            for method in ("grid", "random"):
                # Both are Optuna studies: GridSampler over the 3 x 3 log-space cell centres, and the
                # course's log-uniform RandomSampler; every trial is an engine run.
                result = run_search(config, specs, trials=None if method == "grid" else args.trials,
                                    out=os.path.join(root, f"{method}-{seed}"), seed=seed, data=data, log=None,
                                    sampler=method, grid_points=per_axis)
                trials = [{"lr": r["values"]["lr"], "wd": r["values"]["weight_decay"],
                           "val": r["val_accuracy"], "test": r["test_accuracy"]} for r in result.rows]
                b = best(trials)
                rows.append({"seed": seed, "method": method, "best": b, "distinct_lr": len({t["lr"] for t in trials}),
                             "near_best": sum(math.isfinite(t["val"]) and t["val"] >= b["val"] - 0.01 for t in trials)})
                print(f"seed {seed} {method}: best val {b['val']:.4f} (lr {b['lr']:.3g}, wd {b['wd']:.3g})", flush=True)
    wall = time.perf_counter() - start

    print(f"\n{args.trials} trials per method; {args.model}, {args.optimizer}, {args.epochs} epochs, batch "
          f"{args.batch_size}, digits; lr {args.lr} x weight_decay {args.weight_decay} (log); {wall:.0f} s total\n")
    print("| seed | method | distinct lr tried | best lr | best weight decay | best val acc | its test acc "
          "| trials within 1% of best |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        b = r["best"]
        print(f"| {r['seed']} | {r['method']} | {r['distinct_lr']} | {b['lr']:.3g} | {b['wd']:.3g} | {b['val']:.4f} | "
              f"{b['test']:.4f} | {r['near_best']} |")
    print("\n| method | mean best val acc | mean test acc of the selected trial |")
    print("|---|---|---|")
    for method in ("grid", "random"):
        sel = [r["best"] for r in rows if r["method"] == method]
        print(f"| {method} | {np.mean([b['val'] for b in sel]):.4f} | {np.mean([b['test'] for b in sel]):.4f} |")


if __name__ == "__main__":
    main()
