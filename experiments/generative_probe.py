"""Lecture 13's semi-supervised use of an autoencoder: a linear probe on its codes vs on raw pixels, few labels.

A conv autoencoder (and a VAE, whose posterior means serve as codes) is trained on all training
digits without their labels; then a logistic regression (scikit-learn, standardised inputs) is
fitted on ``n`` labelled training digits, either on the codes or on the raw pixels, and scored on
the test split. Each ``n`` is drawn ``--seeds`` times (the same subsets for every feature set).

    python experiments/generative_probe.py [--epochs 40] [--labels 20,50,100,400] [--seeds 5]
"""

import argparse
import os
import sys

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402

from cs231n_tf.generative import autoencoder  # noqa: E402
from cs231n_tf.generative.data import load_images  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--labels", type=lambda t: [int(s) for s in t.split(",")], default=[20, 50, 100, 400])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    images = load_images(args.data)
    features = {"raw pixels": (images.x_train.reshape(len(images.x_train), -1),
                               images.x_test.reshape(len(images.x_test), -1))}
    walls = {}
    for model in ("ae", "vae"):
        config = autoencoder.AutoencoderConfig(model=model, latent_dim=args.latent, epochs=args.epochs,
                                               log_every=10 ** 6)
        result = autoencoder.train(config, images=images, log=None, progress=False)
        walls[model] = result.metrics["wall_seconds"]
        features[f"{model} codes ({args.latent}-D)"] = (result.task.encode(images.x_train),
                                                        result.task.encode(images.x_test))
    table = {name: [] for name in features}
    for n in args.labels:
        scores = {name: [] for name in features}
        for seed in range(args.seeds):
            subset = np.random.default_rng([seed, n]).choice(len(images.x_train), n, replace=False)
            for name, (train, test) in features.items():
                scores[name].append(autoencoder.linear_probe(train[subset], images.y_train[subset], test,
                                                             images.y_test))
        for name in features:
            table[name].append((np.mean(scores[name]), np.std(scores[name])))
    side = "x".join(map(str, images.image_shape))
    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"{images.source} ({side}, grey levels, {len(images.x_train)} training / {len(images.x_test)} test "
             f"images). The autoencoder and the VAE are trained {args.epochs} epochs on all training images without "
             f"labels (Bernoulli cross-entropy; {walls['ae']:.0f} s and {walls['vae']:.0f} s); the probe is "
             "scikit-learn's LogisticRegression (C=1) on standardised features, fitted on n labelled training images. "
             f"Test accuracy, mean ± std over {args.seeds} draws of the labelled subset.", "",
             "| features | " + " | ".join(f"n = {n}" for n in args.labels) + " |",
             "|---|" + "---:|" * len(args.labels)]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in row) + " |")
    raw, ae = table["raw pixels"], table[f"ae codes ({args.latent}-D)"]
    better = [n for n, (r, a) in zip(args.labels, zip(raw, ae)) if a[0] > r[0]]
    worse = [n for n in args.labels if n not in better]
    lines += ["", f"The autoencoder's codes beat raw pixels (mean accuracy) at n = "
              f"{', '.join(map(str, better)) or 'none'}; raw pixels win at n = {', '.join(map(str, worse)) or 'none'}."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, f"generative-probe-{args.data}", body,
                      heading=f"Autoencoder codes as features for few labels ({args.data})")


if __name__ == "__main__":
    main()
