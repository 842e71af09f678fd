"""Where the pretrained network looks (lecture 12): saliency, SmoothGrad, Grad-CAM and occlusion on a real cat.

EfficientNet-Lite0 with its ImageNet weights (offline, :mod:`cs231n_tf.models.pretrained`) sees
scikit-image's ``chelsea`` photo, the whole photo resized to 224x224 (no centre crop, so the
background on the right stays in view), normalised with the weights' ``input_stats``. For the predicted
class, each map's mass (sum of its values; negative occlusion drops count as 0) inside a hand-drawn box
around the cat's face (eyes, nose and mouth: columns 110..360, rows 60..280 of the 451x300 photo) is
compared with the box's share of the image, the value of a map that does not look anywhere in particular.
Small PNGs of the maps go to ``experiments/figures/``.

    python experiments/viz_pretrained.py
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402

BOX = (110, 60, 360, 280)  # left, top, right, bottom in the original 451x300 photo


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16, help="SmoothGrad samples")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = parser.parse_args()

    import cs231n_tf  # noqa: F401
    import tensorflow as tf

    from cs231n_tf import visualize
    from cs231n_tf.data import photos
    from cs231n_tf.models import build, imagenet
    from cs231n_tf.models.registry import pretrained_spec

    spec = pretrained_spec("efficientnet_lite0", "imagenet")
    model = build("efficientnet_lite0", input_shape=spec.canonical_input_shape, weights="imagenet")
    mean, std = (np.asarray(s, np.float32) for s in spec.input_stats)
    photo = photos.load_photo("chelsea")
    h, w = photo.shape[:2]
    size = spec.canonical_input_shape[0]
    pixels = tf.image.resize(photo.astype(np.float32), (size, size), method="bicubic").numpy().clip(0, 255) / 255.0
    x = ((pixels - mean) / std)[None].astype(np.float32)
    logits = model(x, training=False).numpy()[0]
    y = int(logits.argmax())
    name = imagenet.class_names()[y]
    left, top, right, bottom = (int(round(v)) for v in (BOX[0] * size / w, BOX[1] * size / h, BOX[2] * size / w,
                                                         BOX[3] * size / h))
    inside = np.zeros((size, size), bool)
    inside[top:bottom, left:right] = True
    chance = inside.mean()

    methods = {
        "saliency": lambda: visualize.saliency(model, x, [y]),
        "smoothgrad": lambda: visualize.smoothgrad(model, x, [y], samples=args.samples, noise=0.15),
        "gradcam": lambda: visualize.gradcam(model, x, [y]),
        "occlusion": lambda: visualize.occlusion(model, x, [y], patch=64, stride=16, fill=0.0),
    }
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Rectangle

    figures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")
    os.makedirs(figures, exist_ok=True)
    fig, axes = plt.subplots(1, len(methods) + 1, figsize=(2.2 * (len(methods) + 1), 2.4))
    axes[0].imshow(pixels)
    axes[0].set_title(f"{name} ({y})", fontsize=8)
    rows = []
    for ax, (method, fn) in zip(axes[1:], methods.items()):
        start = time.perf_counter()
        m = np.maximum(fn()[0], 0)
        seconds = time.perf_counter() - start
        frac = float(m[inside].sum() / max(m.sum(), 1e-12))
        rows.append((method, frac, seconds))
        print(f"{method:<10} mass in box {frac:.3f} (box area {chance:.3f})  {seconds:.1f} s", flush=True)
        ax.imshow(m, cmap="hot")
        ax.set_title(f"{method}: {frac:.2f}", fontsize=8)
    for ax in axes:
        ax.add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, edgecolor="cyan", lw=1))
        ax.set_axis_off()
    fig.tight_layout()
    png = os.path.join(figures, "viz_chelsea_maps.png")
    fig.savefig(png, dpi=45)
    plt.close(fig)

    body = (f"Machine: {machine()}. Command: `{command()}`.\n\n"
            f"EfficientNet-Lite0 (ImageNet weights) on `chelsea` (whole photo at {size}x{size}), predicted "
            f"class **{name}** ({y}). Fraction of each map's mass inside a hand-drawn box around the cat's face; "
            f"the box covers {chance:.3f} of the image (what a map spread evenly would score).\n\n"
            "| method | mass inside the box | seconds |\n|---|---|---|\n"
            + "".join(f"| {m} | {f:.3f} | {s:.1f} |\n" for m, f, s in rows)
            + f"\n![maps](figures/{os.path.basename(png)})\n")
    print(body)
    if not args.no_write:
        write_section(RESULTS, "viz-pretrained", body, heading="Visualizing the pretrained network (lecture 12)")


if __name__ == "__main__":
    main()
