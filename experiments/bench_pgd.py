"""PGD speed: cs231n_tf.adversarial.pgd (one tf.function, tf.range loop) vs cleverhans 4's projected_gradient_descent.

Same Keras CNN, same batch, L-inf, no random start, so both must give the same adversarial images
(asserted). The package traces once per model and attack variant (warm-up call), then reuses the graph.
"""

import argparse
import os
import sys

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402
from _timing import round_robin  # noqa: E402

from cs231n_tf.adversarial import pgd  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.layers.Conv2D(16, 3, activation="relu", input_shape=(28, 28, 1)),
                                 tf.keras.layers.MaxPool2D(), tf.keras.layers.Conv2D(32, 3, activation="relu"),
                                 tf.keras.layers.Flatten(), tf.keras.layers.Dense(10)])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (args.batch, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, args.batch)
    eps, step = 0.3, 0.3 / args.steps * 2.5

    def ours():
        return pgd(model, x, y, eps, step, args.steps, random_start=False)

    def theirs():
        return projected_gradient_descent(model, tf.constant(x), eps, step, args.steps, np.inf, clip_min=0.0,
                                          clip_max=1.0, y=tf.constant(y), rand_init=False,
                                          sanity_checks=False).numpy()

    diff = float(np.abs(ours() - theirs()).max())
    assert diff < 1e-5, f"adversarial images differ by {diff}"
    times = round_robin({"ours": ours, "cleverhans": theirs}, args.repeats)
    med = {k: float(np.median([w for w, _ in v])) for k, v in times.items()}
    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`.", "",
        f"L-inf PGD, eps {eps}, {args.steps} steps, batch {args.batch} of 28x28x1, 2-conv CNN; adversarial images "
        f"identical (max difference {diff:.1e}).", "",
        "| implementation | median wall s per attack |", "|---|---:|",
        f"| `cs231n_tf.adversarial.pgd` (one tf.function per model, tf.range loop) | {med['ours']:.3f} |",
        "| cleverhans 4 `projected_gradient_descent` (Python loop over a compiled gradient step) | "
        f"{med['cleverhans']:.3f} |", "",
        f"cleverhans / ours: {med['cleverhans'] / med['ours']:.2f}x."])
    print(body)
    if not args.no_write:
        write_section(RESULTS, "bench-pgd", body, heading="PGD speed: compiled vs cleverhans")


if __name__ == "__main__":
    main()
