"""Fast style transfer (Johnson et al.) vs optimisation (Gatys et al.): images/s against seconds per image.

A transformation network is trained on the engine (``cs231n-tf style train-fast``) against the ``coffee``
photo on random crops of the shipped photos, exported to TFLite through the package's exporter, and then
stylises ``chelsea`` in one pass. The same photo is stylised by optimising its pixels with Adam
(``cs231n-tf style transfer``, 100 steps) on the same loss network at the same size. Both are timed in
one run (interleaved rounds for the one-pass models); the table also scores both outputs with the same
perceptual loss (the optimisation's own objective, so it favours the optimisation), and the PNG shows
content, fast and optimised images side by side.

    python experiments/style_fast.py
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import HERE, RESULTS, command, machine, write_section  # noqa: E402
from _timing import round_robin  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--crops", type=int, default=16)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--residual-blocks", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of the fast network")
    parser.add_argument("--steps", type=int, default=100, help="Adam steps of the optimisation method")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args()

    import cs231n_tf  # noqa: F401
    import tensorflow as tf

    from cs231n_tf.export.exporter import TFLiteRunner
    from cs231n_tf.train.predict import read_image_spec
    from cs231n_tf.visualize import fast_style
    from cs231n_tf.visualize.style import (content_loss, feature_extractor, gram_matrix, load_network, style_loss,
                                           transfer_files, tv_loss)

    size = args.image_size
    config = fast_style.FastStyleConfig(style="photo:coffee", image_size=size, crops=args.crops, epochs=args.epochs,
                                        filters=args.filters, residual_blocks=args.residual_blocks, lr=args.lr,
                                        log_every=10)
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        started = time.perf_counter()
        result = fast_style.train(config, run, progress=False)
        train_seconds = time.perf_counter() - started
        history = result.metrics["history"]
        lite = fast_style.export_fast_style(run, "tflite", out=os.path.join(tmp, "export"))
        runner = TFLiteRunner(model_path=lite["path"], num_threads=2)
        model, _ = fast_style.load_transform(run)

        network = load_network(model="efficientnet_lite0", image_size=size)
        pixels = tf.image.resize(tf.cast(read_image_spec("photo:chelsea", 3), tf.float32), (size, size)).numpy()
        unit = np.clip(pixels / 255.0, 0, 1)[None].astype(np.float32)
        keras_fn = tf.function(lambda x: model(x, training=False))
        times = round_robin({"tflite": lambda: runner(unit), "keras": lambda: keras_fn(unit).numpy()}, args.repeats)
        fast = runner(unit)["stylized"]

        started = time.perf_counter()
        gatys = transfer_files("photo:chelsea", "photo:coffee", os.path.join(tmp, "gatys"), network, optimizer="adam",
                               steps=args.steps, learning_rate=0.05, log_every=args.steps)
        gatys_seconds = time.perf_counter() - started
        gatys_image = tf.io.decode_png(tf.io.read_file(gatys["image"])).numpy()

    # Both outputs scored by the optimisation's own objective (weights 1e-2 / 1 per layer / 1e-3, in the
    # network's normalised input space).
    extractor = feature_extractor(network.model, [network.content_layer, *network.style_layers])
    content_target = extractor(network.normalize(unit))[network.content_layer]
    style_feats = extractor(network.prepare(read_image_spec("photo:coffee", 3)))
    targets = [gram_matrix(style_feats[n]) for n in network.style_layers]

    def score(image_unit):
        x = network.normalize(tf.constant(image_unit, tf.float32))
        f = extractor(x)
        c = float(content_loss(1e-2, f[network.content_layer], content_target))
        s = float(style_loss(f, network.style_layers, targets, [1.0] * len(targets)))
        return c, s, float(tv_loss(x, 1e-3))

    fast_losses = score(fast)
    gatys_losses = score(gatys_image[None] / 255.0)
    start_losses = score(unit)

    from cs231n_tf.fileio import atomic_write_bytes

    strip = np.concatenate([unit[0], np.clip(fast[0], 0, 1), gatys_image / 255.0], axis=1)
    atomic_write_bytes(os.path.join(HERE, "figures", "style_fast_chelsea.png"),
                       tf.io.encode_png(np.round(strip * 255).astype(np.uint8)).numpy())

    ms = {k: 1e3 * float(np.median([w for w, _ in v])) for k, v in times.items()}
    per_image = gatys_seconds
    rows = [f"| fast network, TFLite float32 (2 threads) | {ms['tflite']:.1f} ms | {1e3 / ms['tflite']:.1f} |"
            f" {per_image * 1e3 / ms['tflite']:.0f}x |",
            f"| fast network, Keras (tf.function) | {ms['keras']:.1f} ms | {1e3 / ms['keras']:.1f} | "
            f"{per_image * 1e3 / ms['keras']:.0f}x |",
            f"| optimisation (Gatys), Adam {args.steps} steps | {per_image:.2f} s | {1 / per_image:.2f} | 1x |"]
    loss_rows = [f"| {name} | {c:.1f} | {s:.1f} | {t:.2f} | {c + s + t:.1f} |" for name, (c, s, t) in
                 (("content image itself", start_losses), ("fast network", fast_losses),
                  (f"Adam, {args.steps} steps", gatys_losses))]
    first, last = history[0], history[-1]
    body = [f"Machine: {machine()}. Command: `{command()}`.", "",
            f"Fast network: Johnson et al.'s transformation network ({args.filters} filters, {args.residual_blocks} "
            f"residual blocks, instance norm; {sum(int(np.prod(v.shape)) for v in model.trainable_variables):,} "
            f"parameters) trained on the engine against `coffee` for {result.metrics['steps']} steps (batch "
            f"{config.batch_size}, Adam {args.lr:g}) on {args.crops} random {size}x{size} crops of each shipped photo, "
            f"perceptual losses on EfficientNet-Lite0 (content weight 1e-2, style weight 1 per layer, TV 1e-3); "
            f"training took {train_seconds:.0f} s, the per-image training loss fell "
            f"{first['train_loss']:.0f} -> {last['train_loss']:.0f} over {len(history)} epochs. Exported to TFLite "
            f"through the shared exporter: max pixel difference from Keras {lite['max_abs_pixel_diff']:.3f} (0..255) "
            f"on {lite['examples']} photos and crops. `chelsea` at {size}x{size}, one image per call; median of "
            f"{args.repeats} interleaved rounds. The optimisation's time is one `transfer_files` call (features of the "
            f"style image, {args.steps} Adam steps, PNG), the loss network already built.", "",
            "| method | time per image | images/s | speed-up |", "|---|---|---|---|", *rows, "",
            "The same objective (the optimisation's) scores both outputs:", "",
            "| image | content | style | TV | total |", "|---|---|---|---|---|", *loss_rows, "",
            "Left to right: the content image, the fast network's output (TFLite), the optimised image.", "",
            "![content, fast, optimised](figures/style_fast_chelsea.png)"]
    write_section(args.results, "style_fast", "\n".join(body),
                  heading="Fast style transfer: TFLite images/s vs optimisation seconds per image")
    print("\n".join(body))


if __name__ == "__main__":
    main()
