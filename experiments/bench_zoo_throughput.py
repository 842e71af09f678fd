"""Training throughput of the small-input (CIFAR-size) zoo on this machine, against its matmul peak.

    python experiments/bench_zoo_throughput.py [--models resnet20,lenet5] [--batch 32] [--seconds 3]

For each model: a ``tf.function`` train step (SGD with momentum, softmax cross-entropy on random
data of the model's canonical shape), a few warm-up steps, then steps timed for ``--seconds``.
Achieved FLOP/s counts 3 x the forward pass per example (backward ~ 2 x forward) at 2 FLOPs per
multiply-add: ``6 x multiply_adds x examples/s``, multiply-adds from
``cs231n_tf.models.complexity.profile``. The peak is a 2048x2048 float32 ``tf.matmul`` timed in
the same run, between every two models: each model is compared with the mean of the peaks
measured just before and just after it, so that a change in the machine's load during the run
(other processes on a shared machine) shifts both sides of the ratio alike. The CPU column is
the process's CPU seconds per wall second during the timed steps, out of the core count: well
below the core count means other processes took the cores; the last column then compares
FLOP/s per busy core of the model and of the matmul around it. Records the table in
``experiments/RESULTS.md`` (section "zoo_throughput").
"""

import argparse
import os
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

from cs231n_tf.models import build, complexity, get_spec, list_models
from _results import RESULTS, command, machine, write_section


def matmul_peak(n=2048, seconds=1.0, warmup=1):
    """(float32 FLOP/s, CPU cores busy) of repeated n x n matmuls (2 n^3 FLOPs each)."""
    a = tf.random.stateless_normal((n, n), seed=(1, 2))
    b = tf.random.stateless_normal((n, n), seed=(3, 4))
    step = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    for _ in range(warmup):
        step().numpy()
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        step().numpy()
        count += 1
    wall = time.perf_counter() - start
    return 2 * n**3 * count / wall, (time.process_time() - cpu_start) / wall


def default_models(max_multiply_adds):
    """Registered models with inputs of at most 32x32 and a forward pass under the limit."""
    names = []
    for name in list_models():
        height, width, _ = get_spec(name).canonical_input_shape
        if max(height, width) > 32:
            continue
        if complexity.profile(build(name)).multiply_adds <= max_multiply_adds:
            names.append(name)
    return names


def train_throughput(name, batch, seconds, warmup=2, min_steps=3):
    """(profile, examples/s, s/step, CPU cores busy) of SGD training on random data at the canonical shape."""
    tf.keras.utils.set_random_seed(0)
    spec = get_spec(name)
    model = build(name)
    prof = complexity.profile(model)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(batch,) + spec.canonical_input_shape), tf.float32)
    labels = tf.constant(rng.integers(0, spec.canonical_num_classes, size=batch), tf.int32)
    optimizer = tf.keras.optimizers.SGD(0.01, momentum=0.9)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))
        return loss

    for _ in range(warmup):
        step().numpy()
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while steps < min_steps or time.perf_counter() - start < seconds:
        step().numpy()  # .numpy() waits for the step, so the clock sees the whole of it
        steps += 1
    wall = time.perf_counter() - start
    per_step = wall / steps
    return prof, batch / per_step, per_step, (time.process_time() - cpu_start) / wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated names (default: every <=32x32 model "
                        "under --max-gmacs)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per model")
    parser.add_argument("--max-gmacs", type=float, default=1.0,
                        help="default set: forward multiply-adds per image at most this (G)")
    parser.add_argument("--results", default=RESULTS, help="results file to update")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    names = args.models.split(",") if args.models else default_models(args.max_gmacs * 1e9)
    peaks = [matmul_peak(seconds=2.0, warmup=3)]
    rows = []
    for name in names:
        prof, rate, per_step, busy = train_throughput(name, args.batch, args.seconds)
        peaks.append(matmul_peak())
        peak = (peaks[-2][0] + peaks[-1][0]) / 2
        peak_per_core = (peaks[-2][0] / peaks[-2][1] + peaks[-1][0] / peaks[-1][1]) / 2
        achieved = 6 * prof.multiply_adds * rate
        rows.append((name, prof, rate, per_step, busy, achieved, peak, achieved / busy / peak_per_core))
        print(f"{name}: {rate:.0f} examples/s, {achieved / 1e9:.1f} GFLOP/s, matmul {peak / 1e9:.1f} GFLOP/s",
              flush=True)

    header = ("model", "params", "fwd mult-adds/img", "ms/step", "examples/s", "CPU cores busy", "GFLOP/s",
              "matmul GFLOP/s", "of matmul peak",
              "per busy core, of matmul")
    lines = [header] + [(
        name,
        f"{prof.params / 1e6:.2f}M",
        f"{prof.multiply_adds / 1e6:.1f}M",
        f"{per_step * 1e3:.0f}",
        f"{rate:.0f}",
        f"{busy:.2f}/{os.cpu_count()}",
        f"{achieved / 1e9:.1f}",
        f"{peak / 1e9:.1f}",
        f"{achieved / peak:.1%}",
        f"{per_core:.1%}",
    ) for name, prof, rate, per_step, busy, achieved, peak, per_core in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = [" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in lines]
    table.insert(1, "-|-".join("-" * w for w in widths))
    summary = (f"matmul peak (2048x2048 float32 tf.matmul), measured {len(peaks)} times: "
               f"{min(p for p, _ in peaks) / 1e9:.1f} to {max(p for p, _ in peaks) / 1e9:.1f} GFLOP/s "
               f"on {min(c for _, c in peaks):.2f} to {max(c for _, c in peaks):.2f} busy cores; batch {args.batch}; "
               f"total {time.perf_counter() - started:.0f} s")
    print("\n" + "\n".join(table) + "\n" + summary)

    body = [
        "### Training throughput on CPU",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        "Train step: `tf.function`, SGD momentum 0.9, softmax cross-entropy, random data at the "
        f"canonical shape, batch {args.batch}, 2 warm-up steps, then >= 3 steps and >= {args.seconds:g} s "
        "timed. "
        "GFLOP/s = 6 x forward multiply-adds x examples/s (forward 2 FLOPs per multiply-add, "
        "backward ~2 x forward). Each model's fraction is of the mean of the matmul peaks measured "
        "just before and just after it; the last column divides both by the CPU cores the "
        "process kept busy (process CPU time / wall time), which corrects for a shared machine.",
        "",
        "| " + table[0] + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *("| " + row + " |" for row in table[2:]),
        "",
        summary,
    ]
    write_section(args.results, "zoo_throughput", "\n".join(body))
    print(f"updated {args.results}")


if __name__ == "__main__":
    main()
