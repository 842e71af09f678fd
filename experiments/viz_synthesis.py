"""Images made by the pretrained network (lecture 12): class visualizations, DeepDream and feature inversion.

EfficientNet-Lite0 with its ImageNet weights (offline) through ``cs231n_tf.visualize.viz_report``, the
code behind ``cs231n-tf viz classviz|dream|invert``: class visualizations of a few ImageNet classes from
small noise (Simonyan et al. with the lecture's L2, jitter, blur and clipping), DeepDream on the
``chelsea`` photo at a middle and a deep layer, and Mahendran & Vedaldi's inversion of the photo from an
early and a deep layer. The table gives the class score before/after and what the network predicts for
each made image; the PNGs go to ``experiments/figures/viz_*.png``.

    python experiments/viz_synthesis.py
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import HERE, RESULTS, command, machine, write_section  # noqa: E402

CLASSES = (1, 130, 945, 967)  # goldfish, flamingo, bell pepper, espresso
DREAM_LAYERS = ("block3b_add", "block5c_add")
INVERT_LAYERS = ("block2b_add", "block5c_add")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="class-visualization and inversion steps")
    parser.add_argument("--dream-steps", type=int, default=20, help="DeepDream steps per octave")
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args()

    import cs231n_tf  # noqa: F401
    from cs231n_tf.visualize import viz_report

    figures = os.path.join(HERE, "figures")
    source = dict(model="efficientnet_lite0")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for target in CLASSES:
            start = time.perf_counter()
            r = viz_report("classviz", tmp, target=target, max_steps=args.steps, **source)
            shutil.copy(os.path.join(tmp, r["png"]), os.path.join(figures, f"viz_classviz_{target}.png"))
            rows.append(f"| class visualization | {r['target_name']} ({target}) | {r['score_start']:.2f} -> "
                        f"{r['score_end']:.2f} | {r['predicted_name']} | {time.perf_counter() - start:.0f} |")
            print(rows[-1], flush=True)
        for layer in DREAM_LAYERS:
            start = time.perf_counter()
            r = viz_report("dream", tmp, ["photo:chelsea"], layer=layer, max_steps=args.dream_steps, octaves=3,
                           **source)
            row = r["images"][0]
            shutil.copy(os.path.join(tmp, row["png"]), os.path.join(figures, f"viz_dream_{layer}.png"))
            rows.append(f"| DeepDream, 3 octaves x {args.dream_steps} steps | {layer} | objective "
                        f"{row['objective'][0]:.3g} -> {row['objective'][-1]:.3g} | {row['dreamed_prediction']} | "
                        f"{time.perf_counter() - start:.0f} |")
            print(rows[-1], flush=True)
        for layer in INVERT_LAYERS:
            start = time.perf_counter()
            r = viz_report("invert", tmp, ["photo:chelsea"], layer=layer, max_steps=args.steps, **source)
            row = r["images"][0]
            shutil.copy(os.path.join(tmp, row["png"]), os.path.join(figures, f"viz_invert_{layer}.png"))
            rows.append(f"| inversion, {args.steps} steps | {layer} | feature loss {row['feature_loss_start']:.3g} "
                        f"-> {row['feature_loss_end']:.3g}, pixel RMSE {row['pixel_rmse']:.2f} | - | "
                        f"{time.perf_counter() - start:.0f} |")
            print(rows[-1], flush=True)
    body = [f"Machine: {machine()}. Command: `{command()}`.", "",
            "EfficientNet-Lite0 (ImageNet weights) at 224x224 through `viz_report` (`cs231n-tf viz classviz|dream|"
            "invert`). Class visualization: from noise, L2 1e-3, blur every 10 steps, jitter 16, pixels clipped to "
            "the valid range, unnormalised score. DeepDream: `chelsea`, octave scale 1.4, jitter 8. Inversion: "
            "`chelsea` from random noise, momentum 0.9, TV weight 1e-3; the feature loss is normalised by "
            "||F(x0)||^2 and the RMSE is in normalised input units.", "",
            "| what | class / layer | numbers | network predicts | seconds |", "|---|---|---|---|---|", *rows, "",
            " ".join(f"![class {t}](figures/viz_classviz_{t}.png)" for t in CLASSES), "",
            " ".join(f"![dream {l}](figures/viz_dream_{l}.png)" for l in DREAM_LAYERS), "",
            " ".join(f"![invert {l}](figures/viz_invert_{l}.png)" for l in INVERT_LAYERS)]
    write_section(args.results, "viz_synthesis", "\n".join(body),
                  heading="Class visualization, DeepDream and feature inversion on the pretrained network")
    print("\n".join(body))


if __name__ == "__main__":
    main()
