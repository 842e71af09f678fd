"""Neural style transfer on pretrained EfficientNet-Lite0: Adam vs L-BFGS (lecture 12; Gatys et al.).

Both optimisers stylise the `chelsea` photo like `coffee` from the same start; the table gives the
content/style/TV losses over iterations and the seconds each needs to reach the loss the worse of
the two ends at. Stylised PNGs go to experiments/figures/.
"""

import argparse
import os

from _results import HERE, RESULTS, command, machine, write_section

import cs231n_tf  # noqa: F401  (Keras 2)
from cs231n_tf.visualize.style import load_network, transfer_files


def time_to(history, target):
    return next((h["seconds"] for h in history if h["total"] <= target), float("nan"))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--results", default=RESULTS)
    args = p.parse_args()
    network = load_network(model="efficientnet_lite0", image_size=args.image_size)
    figures = os.path.join(HERE, "figures")
    runs = {}
    for name in ("adam", "lbfgs"):
        out = os.path.join(figures, f"style_transfer_{name}")
        options = {"learning_rate": 0.05} if name == "adam" else {}
        runs[name] = transfer_files("photo:chelsea", "photo:coffee", out, network, optimizer=name, steps=args.steps,
                                    log_every=10, **options)["history"]
        os.replace(os.path.join(out, "stylized.png"), os.path.join(figures, f"style_transfer_{name}.png"))
        os.remove(os.path.join(out, "style_transfer.json"))
        os.rmdir(out)
        print(name, [(h["step"], round(h["total"], 1)) for h in runs[name]], flush=True)
    target = max(runs["adam"][-1]["total"], runs["lbfgs"][-1]["total"])
    body = [f"Machine: {machine()}. Command: `{command()}`.", "",
            f"`chelsea` content, `coffee` style, {args.image_size}x{args.image_size}, layers "
            f"{', '.join(network.style_layers)} (style) and {network.content_layer} (content), "
            "content weight 1e-2, TV weight 1e-3, start = content image. Adam: learning rate 0.05, pixels clipped "
            "to the valid range every step; L-BFGS: SciPy's L-BFGS-B in one call, clipped at the end. Seconds "
            "include one extra loss evaluation per logged row.", "",
            "| optimizer | iteration | content | style | TV | total | seconds |", "|---|---|---|---|---|---|---|"]
    for name, history in runs.items():
        for h in history[::2] + ([history[-1]] if len(history) % 2 == 0 else []):
            body.append(f"| {name} | {h['step']} | {h['content']:.1f} | {h['style']:.1f} | {h['tv']:.2f} | "
                        f"{h['total']:.1f} | {h['seconds']:.1f} |")
    ta, tl = time_to(runs["adam"], target), time_to(runs["lbfgs"], target)
    body += ["", f"Time to total loss {target:.1f}: Adam {ta:.1f} s, L-BFGS {tl:.1f} s (ratio Adam/L-BFGS "
             f"{ta / tl:.2f}).", "",
             "![Adam](figures/style_transfer_adam.png) ![L-BFGS](figures/style_transfer_lbfgs.png)"]
    write_section(args.results, "style_transfer", "\n".join(body), heading="Style transfer: Adam vs L-BFGS")
    print("\n".join(body))


if __name__ == "__main__":
    main()
