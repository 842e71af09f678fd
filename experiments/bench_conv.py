"""Benchmark: hand-written convolutions (naive loops, im2col) vs ``tf.nn.conv2d``.

Forward, and forward+backward (gradients for x, w and b from one upstream gradient), each compiled
with ``tf.function``. The goal is im2col within 3x of ``tf.nn.conv2d``. The naive version unrolls
one op per output position into the graph, so it is timed on a separate, smaller problem
(``--naive-*``), where im2col and ``tf.nn.conv2d`` are timed again so that its ratios compare like
with like. Before timing, every method's outputs and gradients are checked against
``tf.nn.conv2d``'s.

Timing: within a problem all methods run round-robin ``--repeats`` times after one warm-up call
each, so a burst of load from other processes hits all of them alike. The tables show wall time
(minimum and median) and the median CPU time of the process per call; ratios are given by wall
minimum and by CPU time, the latter being what a method costs when other processes share the cores.

    python experiments/bench_conv.py
    python experiments/bench_conv.py --batch 64 --size 32 --channels 3 --filters 64 --kernel 5
"""

import argparse
import os
import platform
import statistics
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

from cs231n_tf import ops
from _timing import round_robin


def reference_conv(x, w, b, stride, pad):
    x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    return tf.nn.conv2d(x, w, strides=stride, padding="VALID") + b


def compiled(conv, stride, pad, backward):
    """``tf.function`` running ``conv`` forward, or forward and backward for x, w, b."""
    def forward(x, w, b, dout):
        return conv(x, w, b, stride, pad)

    def forward_backward(x, w, b, dout):
        with tf.GradientTape() as tape:
            tape.watch([x, w, b])
            out = conv(x, w, b, stride, pad)
        # Return the output too: otherwise grappler prunes the forward pass, which the
        # hand-written backward passes do not read.
        return out, tape.gradient(out, [x, w, b], output_gradients=dout)

    return tf.function(forward_backward if backward else forward, autograph=False)


def time_problem(methods, batch, size, channels, filters, kernel, stride, repeats):
    """``{(method, backward): [seconds, ...]}`` for one problem size, after checking the methods agree."""
    pad = (kernel - 1) // 2
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, size, size, channels), dtype=np.float32))
    w = tf.constant(rng.standard_normal((kernel, kernel, channels, filters), dtype=np.float32) * 0.1)
    b = tf.constant(rng.standard_normal(filters, dtype=np.float32))
    out_size = (size + 2 * pad - kernel) // stride + 1
    dout = tf.constant(rng.standard_normal((batch, out_size, out_size, filters), dtype=np.float32))
    calls = {}
    for name, conv in methods.items():
        for backward in (False, True):
            fn = compiled(conv, stride, pad, backward)
            calls[name, backward] = lambda fn=fn: tf.nest.map_structure(np.asarray, fn(x, w, b, dout))
    outputs = {key: call() for key, call in calls.items()}
    for (name, backward), out in outputs.items():
        for got, want in zip(tf.nest.flatten(out), tf.nest.flatten(outputs["tf.nn.conv2d", backward])):
            # float32 sums of up to batch*size*size terms (dw): compare relative to the largest entry.
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(),
                                       err_msg=f"{name} disagrees with tf.nn.conv2d")
    return round_robin(calls, repeats)


def summary(runs):
    """``(min wall, median wall, median cpu)`` of a list of ``(wall, cpu)`` timings, in ms."""
    wall = [w for w, _ in runs]
    return 1e3 * min(wall), 1e3 * statistics.median(wall), 1e3 * statistics.median([c for _, c in runs])


def ratios(times, name, backward, baseline="tf.nn.conv2d"):
    """``name`` over ``baseline``: by minimum wall time and by median CPU time."""
    mine, base = summary(times[name, backward]), summary(times[baseline, backward])
    return mine[0] / base[0], mine[2] / base[2]


def print_table(title, times):
    """Markdown table: wall min / median and CPU median in ms, and both ratios to tf.nn.conv2d."""
    print(title + "\n")
    print("| method | pass | wall min (ms) | wall median (ms) | CPU median (ms) | vs tf.nn (wall min) "
          "| vs tf.nn (CPU) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, backward in times:
        wall_min, wall_median, cpu = summary(times[name, backward])
        by_wall, by_cpu = ratios(times, name, backward)
        print(f"| {name} | {'fwd+bwd' if backward else 'forward'} | {wall_min:.2f} | {wall_median:.2f} | "
              f"{cpu:.2f} | {by_wall:.2f}x | {by_cpu:.2f}x |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32, help="input height = width")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--kernel", type=int, default=3, help="odd; padding (kernel-1)//2 keeps the size")
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--naive-batch", type=int, default=8)
    parser.add_argument("--naive-size", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    fast = {"im2col": ops.conv2d_im2col, "tf.nn.conv2d": reference_conv}
    shape = (args.channels, args.filters, args.kernel, args.stride)
    start = time.perf_counter()
    main_times = time_problem(fast, args.batch, args.size, *shape, args.repeats)
    naive_times = time_problem({"naive": ops.conv2d_naive, **fast}, args.naive_batch, args.naive_size, *shape,
                               args.repeats)
    wall = time.perf_counter() - start
    k, s = args.kernel, args.stride
    print(f"float32 NHWC, {k}x{k} kernel, stride {s}, padding {(k - 1) // 2}; tf.function-compiled; "
          f"{args.repeats} round-robin repeats after a warm-up ({wall:.0f} s); {os.cpu_count()} CPU cores, "
          f"Python {platform.python_version()}, TensorFlow {tf.__version__}\n")
    print_table(f"x ({args.batch}, {args.size}, {args.size}, {args.channels}), w ({k}, {k}, {args.channels}, "
                f"{args.filters}):", main_times)
    print_table(f"\nsmaller problem for the naive loops: x ({args.naive_batch}, {args.naive_size}, "
                f"{args.naive_size}, {args.channels}), same kernel:", naive_times)
    for backward, label in ((False, "forward"), (True, "forward+backward")):
        by_wall, by_cpu = ratios(main_times, "im2col", backward)
        verdict = "met" if max(by_wall, by_cpu) <= 3 else "MISSED"
        print(f"\nim2col / tf.nn.conv2d, {label}: {by_wall:.2f}x by wall min, {by_cpu:.2f}x by CPU time "
              f"(goal: within 3x) -> {verdict}", end="")
    print()


if __name__ == "__main__":
    main()
