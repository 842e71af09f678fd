"""Benchmark: k-NN distance matrix, two loops vs one loop vs no loop vs a bare matrix product.

The no-loop L2 distance is one ``tf.matmul`` of ``(num_test, D) x (D, num_train)`` plus
O(num_test * num_train) elementwise work, so a bare ``tf.matmul`` of the same size is its floor;
the goal is to stay within 2x of it. Three layouts of the bare product are timed: ``a @ b^T`` with
``transpose_b=True``, ``a @ bt`` with ``b`` transposed beforehand (the layout the no-loop version
keeps) and ``(b @ a^T)^T``; the ratio is taken against the fastest.

The loop versions are timed on the first ``--loop-rows`` test rows only (their cost is linear in
the number of test rows) and extrapolated to the full test set; the table marks them. Before
timing, their distances on those rows are checked against the no-loop matrix.

Timing: all methods are run round-robin ``--repeats`` times (so a burst of load from other
processes hits all of them alike) after one warm-up call each. The table shows the minimum wall
time and the median CPU time of the process per call, and ratios by both; CPU time is what a
method costs when other processes share the cores.

    python experiments/bench_knn.py                       # 500 test x 5000 train x 3072 dims
    python experiments/bench_knn.py --num-train 2000 --metric l1
"""

import argparse
import os
import platform
import statistics
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

from cs231n_tf.classic import KNearestNeighbor
from _timing import round_robin


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-test", type=int, default=500)
    parser.add_argument("--num-train", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=3072)
    parser.add_argument("--metric", choices=("l2", "l1"), default="l2",
                        help="l1 has no matmul form; its no-loop version is blocked broadcasting")
    parser.add_argument("--loop-rows", nargs=2, type=int, default=(20, 2), metavar=("ONE", "TWO"),
                        help="test rows timed for the one-loop and two-loop versions (default 20 2)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x_train = rng.standard_normal((args.num_train, args.dim), dtype=np.float32)
    x_test = rng.standard_normal((args.num_test, args.dim), dtype=np.float32)
    knn = KNearestNeighbor().train(x_train, rng.integers(0, 10, args.num_train))

    n = args.num_test
    one_rows, two_rows = min(args.loop_rows[0], n), min(args.loop_rows[1], n)
    no_loop = knn.compute_distances(x_test, 0, args.metric).numpy()
    for loops, rows in ((1, one_rows), (2, two_rows)):
        looped = knn.compute_distances(x_test[:rows], loops, args.metric).numpy()
        # float32: the expansion ||a||^2 - 2ab + ||b||^2 loses ~1e-7 * ||a||^2 before the sqrt.
        np.testing.assert_allclose(looped, no_loop[:rows], rtol=1e-4, atol=1e-3,
                                   err_msg=f"{loops}-loop distances disagree with the no-loop version")

    def distances(num_loops, rows):
        x = x_test[:rows]
        return lambda: knn.compute_distances(x, num_loops, args.metric).numpy()

    a, b = tf.constant(x_test), tf.constant(x_train)
    b_t = tf.constant(tf.transpose(b))
    matmul_tb = tf.function(lambda: tf.matmul(a, b, transpose_b=True))
    matmul_pre = tf.function(lambda: tf.matmul(a, b_t))
    matmul_ba = tf.function(lambda: tf.transpose(tf.matmul(b, a, transpose_b=True)))
    methods = {
        "bare tf.matmul(a, b, transpose_b=True)": (n, lambda: matmul_tb().numpy()),
        "bare tf.matmul(a, bt), bt = b^T beforehand": (n, lambda: matmul_pre().numpy()),
        "bare tf.transpose(tf.matmul(b, a, transpose_b=True))": (n, lambda: matmul_ba().numpy()),
        f"no loop ({args.metric})": (n, distances(0, n)),
        f"one loop ({args.metric})": (one_rows, distances(1, one_rows)),
        f"two loops ({args.metric})": (two_rows, distances(2, two_rows)),
    }
    start = time.perf_counter()
    times = round_robin({name: fn for name, (_, fn) in methods.items()}, args.repeats)
    wall = time.perf_counter() - start

    def per_full_set(name, rows):
        """Minimum wall and median CPU seconds, scaled from ``rows`` timed rows to all ``n``."""
        wall = min(w for w, _ in times[name]) * n / rows
        return wall, statistics.median(c for _, c in times[name]) * n / rows

    full = {name: per_full_set(name, rows) for name, (rows, _) in methods.items()}
    bare = list(methods)[:3]
    floor_wall = min(full[name][0] for name in bare)
    floor_cpu = min(full[name][1] for name in bare)
    print(f"distance matrix {n} test x {args.num_train} train x {args.dim} dims, float32; "
          f"{args.repeats} round-robin repeats after a warm-up ({wall:.0f} s); "
          f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, TensorFlow {tf.__version__}")
    print("Times are for the full test set (loop versions extrapolated from the rows timed); ratios are "
          "over the fastest bare matmul, by wall minimum and by median CPU time.\n")
    print("| method | rows timed | wall min (s) | CPU median (s) | vs matmul (wall) | vs matmul (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (rows, _) in methods.items():
        note = "" if rows == n else " (extrapolated)"
        full_wall, full_cpu = full[name]
        print(f"| {name}{note} | {rows} | {full_wall:.3f} | {full_cpu:.3f} | {full_wall / floor_wall:.2f}x | "
              f"{full_cpu / floor_cpu:.2f}x |")
    no_loop_wall, no_loop_cpu = full[f"no loop ({args.metric})"]
    by_wall, by_cpu = no_loop_wall / floor_wall, no_loop_cpu / floor_cpu
    print(f"\nno-loop / bare matmul = {by_wall:.2f}x by wall min, {by_cpu:.2f}x by CPU time (goal: within 2x) "
          f"-> {'met' if max(by_wall, by_cpu) <= 2 else 'MISSED'}")

if __name__ == "__main__":
    main()
