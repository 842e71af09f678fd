"""The course's GANs on the embedded digits (28x28 view): Fréchet distance and a sample grid per recipe.

Each of ``cs231n-tf generate train --model gan|lsgan|dcgan|wgan_gp`` is trained ``--steps`` steps
(batch 128, noise 96, the course's Adam 1e-3 / beta1 0.5) for each seed; the run's
``frechet_distance`` (features of a small classifier trained on the same digits, NOT the
Inception FID) is tabulated with the untrained generator's and the real training images' as
reference points, and the last grid of samples is kept as a PNG.

    python experiments/gan_digits.py [--steps 300] [--seeds 0]
"""

import argparse
import os
import shutil
import sys

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402

from cs231n_tf.cli.generate import RECIPES  # noqa: E402
from cs231n_tf.generative.data import load_images  # noqa: E402
from cs231n_tf.generative.frechet import feature_classifier, frechet_distance  # noqa: E402
from cs231n_tf.generative.task import GANConfig, train  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=lambda t: [int(s) for s in t.split(",")], default=[0])
    parser.add_argument("--out", default="experiments/out/gan_digits")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    images = load_images("digits28")
    rows = []
    for recipe, (loss, arch) in RECIPES.items():
        scores, wall = [], []
        for seed in args.seeds:
            out = os.path.join(args.out, f"{recipe}-seed{seed}")
            shutil.rmtree(out, ignore_errors=True)
            config = GANConfig(loss=loss, model=arch, seed=seed, max_steps=args.steps, epochs=10 ** 6,
                               sample_every=args.steps, sample_count=36, log_every=10 ** 6)
            m = train(config, out, images=images, log=None, progress=False).metrics
            scores.append(m["frechet_distance"])
            wall.append(m["wall_seconds"])
        rows.append((recipe, f"{loss} / {arch}", scores, float(np.mean(wall)),
                     os.path.join(args.out, f"{recipe}-seed{args.seeds[0]}", "samples", f"step-{args.steps:07d}.png")))
    features, _ = feature_classifier(images.x_train, images.y_train, seed=0, epochs=3)
    real = features.predict(images.x_test, verbose=0)
    train_fd = frechet_distance(real, features.predict(images.x_train[:len(images.x_test)], verbose=0))
    noise = np.random.default_rng(0).uniform(-1, 1, images.x_test.shape).astype(np.float32)
    noise_fd = frechet_distance(real, features.predict(noise, verbose=0))
    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"{args.steps} steps, batch 128, seeds {', '.join(map(str, args.seeds))}; Fréchet distance of 359 samples "
             "to the 359 test digits on a small CNN's 64 features (trained 3 epochs on the 1,438 training digits): "
             "NOT the Inception FID.", "",
             "| `--model` | loss / networks | Fréchet distance (per seed) | wall s per run | last grid |",
             "|---|---|---:|---:|---|"]
    for recipe, what, scores, wall, grid in rows:
        lines.append(f"| {recipe} | {what} | {', '.join(f'{s:.1f}' for s in scores)} | {wall:.0f} | `{grid}` |")
    lines += ["", f"Reference points: real training digits {train_fd:.1f}; uniform noise images {noise_fd:.1f}."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, "gan-digits", body, heading="GANs on the embedded digits (28x28 view)")


if __name__ == "__main__":
    main()
