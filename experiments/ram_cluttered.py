"""The recurrent attention model (Mnih et al. 2014) on cluttered digits vs networks that see the whole canvas.

    python experiments/ram_cluttered.py [--epochs 30] [--canvas 32] [--glimpses 6]

Canvases: the embedded 8x8 digits scaled to 16x16 at random positions on a ``--canvas`` square with 4
clutter pieces cut from other digits (:func:`cs231n_tf.rl.ram.cluttered_digits`; 6,000 training
canvases from the training digits, 1,000 test canvases from the test digits). Three models, same Adam
and epochs, all on the package's engine:

- RAM: ``--glimpses`` glimpses of 2 scales (8x8 and 16x16 pixels sampled at 8x8), LSTM 256, the
  location policy learned by REINFORCE (``rl.ram.RAMTask``);
- an MLP (2 x 256 ReLU) on the whole canvas;
- the course's three-layer convnet on the whole canvas.

Reports test accuracy, the pixels each model reads per image and training time, and draws the
policy's glimpse path on test canvases (``experiments/figures/ram_glimpses.png``).
"""

import argparse
import os
import sys
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402

FIGURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures", "ram_glimpses.png")


def _glimpse_figure(model, x, y, config, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    logits, _, _, locations = model.unroll(x)
    pred = np.argmax(logits.numpy(), 1)
    locations = locations.numpy()
    fig, axes = plt.subplots(1, len(x), figsize=(2.2 * len(x), 2.4))
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(x[i, ..., 0], cmap="gray", vmin=0, vmax=1)
        centres = (locations[:, i] + 1.0) * config.canvas / 2.0 - 0.5
        ax.plot(centres[:, 1], centres[:, 0], "-o", color="tab:orange", markersize=3)
        for k in range(config.scales):
            side = config.glimpse_size * 2 ** k
            cy, cx = centres[-1]
            ax.add_patch(plt.Rectangle((cx - side / 2, cy - side / 2), side, side, fill=False, color="tab:red", lw=1))
        ax.set_title(f"label {y[i]}, pred {pred[i]}", fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--canvas", type=int, default=32)
    parser.add_argument("--glimpses", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import tensorflow as tf

    from cs231n_tf import models
    from cs231n_tf.rl import ram
    from cs231n_tf.tasks.classification import train_model

    config = ram.RAMConfig(epochs=args.epochs, canvas=args.canvas, glimpses=args.glimpses, seed=args.seed,
                           log_every=10_000)
    canvases = ram.load_canvases(config)
    (x_train, y_train), (x_test, y_test) = canvases["train"], canvases["test"]
    rows = []
    t0 = time.perf_counter()
    result = ram.train(config, None, canvases=canvases, log=None, progress=False)
    g = config.glimpses * config.scales * config.glimpse_size ** 2
    rows.append((f"RAM, {config.glimpses} glimpses", result.metrics["test_accuracy"], g,
                 time.perf_counter() - t0))
    os.makedirs(os.path.dirname(FIGURE), exist_ok=True)
    _glimpse_figure(result.task.model, x_test[:6], y_test[:6], config, FIGURE)

    shape = x_train.shape[1:]
    for label, name, options in [("MLP 2 x 256, whole canvas", "fc_net", {"hidden_dims": [256, 256]}),
                                 ("three-layer convnet, whole canvas", "three_layer_convnet", {})]:
        tf.keras.utils.set_random_seed(args.seed)
        model = models.build(name, shape, 10, **options)

        def batches(epoch, model_seed=args.seed):
            order = np.random.default_rng([model_seed, epoch]).permutation(len(x_train))
            return tf.data.Dataset.from_tensor_slices((x_train[order], y_train[order].astype(np.int32))).batch(64)

        t0 = time.perf_counter()
        train_model(model, batches, args.epochs, tf.keras.optimizers.Adam(1e-3), seed=args.seed, log=None)
        accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), 1) == y_test))
        rows.append((label, accuracy, int(np.prod(shape)), time.perf_counter() - t0))

    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"{len(x_train)} training / {len(x_test)} test canvases of {args.canvas}x{args.canvas} pixels (16x16 "
             f"digit + 4 clutter pieces), Adam lr 1e-3, batch 64, {args.epochs} epochs, seed {args.seed}. RAM: "
             f"{config.scales} scales of {config.glimpse_size}x{config.glimpse_size} samples, LSTM {config.hidden}, "
             f"location std {config.location_std}; evaluated at the policy's mean locations.", "",
             "| model | test accuracy | pixels read per image | train s |", "|---|---:|---:|---:|"]
    lines += [f"| {label} | {acc:.4f} | {pixels:,} | {secs:.0f} |" for label, acc, pixels, secs in rows]
    lines += ["", "Glimpse paths of the first test canvases (start at the centre; red: the last glimpse's "
              "patches): `experiments/figures/ram_glimpses.png`."]
    body = "\n".join(lines)
    print(body)
    write_section(RESULTS, "ram-cluttered", body,
                  heading="Recurrent attention model on cluttered digits (lecture 14)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
