"""Transfer learning from real ImageNet weights (lecture 7): EfficientNet-Lite0 on a small real-photo folder.

The target task is built from photos that ship inside installed packages (scikit-image's
``chelsea``, ``coffee``, ``astronaut``, ``rocket``, ``motorcycle_left``; scikit-learn's ``china``,
``flower``): each photo is a class, its examples random square crops of 10-20% of the shorter side
(``--scale``), resized to ``--size`` pixels (:func:`cs231n_tf.data.photos.write_crop_folder`). Of
the ``--per-class`` crops per photo, 20% are the test set.

- (a) linear probe: logistic regression on the frozen pretrained network's pooled features;
- (b) head only: a new dense head trained on the frozen network (batchnorm in inference mode);
- (c) head, then the last ``--blocks`` blocks fine-tuned at ``--finetune-lr``;
- (d) head, then every block fine-tuned at ``--finetune-lr`` (batchnorm statistics kept);
- (e) the same network from scratch (random init), for the same epochs and for 3x as many;
  scored as every run is (batchnorm with its moving statistics) and, to show what the network
  learned, with the test batch's own statistics.

Then Deep Compression of run (c) through ``compress_run`` (``--prune`` sparsity in 2 rounds,
``--clusters`` shared values per layer, Huffman coding; 2 fine-tuning epochs per stage), with the
accuracy of the compressed ``.tflite`` and the payload size.

Crops this small show a patch of fur, cup rim or sky; telling which photo a patch comes from needs
texture and part features, which is what ImageNet features hold.

Everything goes through ``cs231n_tf.train.transfer.finetune(model="efficientnet_lite0", ...)`` or
the trainer, i.e. the engine. Data and runs go to ``--out`` (git-ignored).

    python experiments/transfer_efficientnet.py
"""

import argparse
import os
import shutil
import sys
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402

from cs231n_tf import data as data_lib  # noqa: E402
from cs231n_tf.data.photos import write_crop_folder  # noqa: E402
from cs231n_tf.models import build, efficientnet_lite  # noqa: E402
from cs231n_tf.train import transfer  # noqa: E402
from cs231n_tf.compress.run import CompressConfig, compress_run  # noqa: E402
from cs231n_tf.train.config import TrainConfig  # noqa: E402
from cs231n_tf.train.evaluate import load_run  # noqa: E402
from cs231n_tf.train.trainer import Trainer  # noqa: E402


def quiet(*_):
    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=40, help="crops per photo (class)")
    parser.add_argument("--size", type=int, default=96, help="crop size in pixels")
    parser.add_argument("--scale", type=float, nargs=2, default=(0.1, 0.2), metavar=("MIN", "MAX"),
                        help="crop side as a fraction of the photo's shorter side")
    parser.add_argument("--head-epochs", type=int, default=6)
    parser.add_argument("--finetune-epochs", type=int, default=6)
    parser.add_argument("--blocks", type=int, default=3, help="blocks fine-tuned in (c)")
    parser.add_argument("--lr", type=float, default=1e-3, help="head phase and from-scratch learning rate (Adam)")
    parser.add_argument("--finetune-lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prune", type=float, default=0.5)
    parser.add_argument("--clusters", type=int, default=16)
    parser.add_argument("--out", default="experiments/out/transfer_efficientnet")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    start = time.perf_counter()
    folder = write_crop_folder(os.path.join(args.out, "photos"), per_class=args.per_class, size=args.size,
                               min_scale=args.scale[0], max_scale=args.scale[1], seed=args.seed)
    dataset = f"folder:{folder}"
    common = dict(validation_fraction=0.0, batch_size=args.batch_size, seed=args.seed, log=quiet, log_every=10_000)
    data = data_lib.load(dataset, validation_fraction=0.0, batch_size=args.batch_size, preprocessing="model",
                         input_stats=efficientnet_lite.INPUT_STATS)
    info = data.info
    rows = []

    t = time.perf_counter()
    body = build("efficientnet_lite0", input_shape=info.image_shape, num_classes=info.num_classes, weights="imagenet")
    f_train, y_train = transfer.extract_features(body, data.split("train"))
    f_test, y_test = transfer.extract_features(body, data.split("test"))
    probe = transfer.linear_probe(f_train, y_train)
    rows.append(("(a) linear probe on frozen ImageNet features", float((probe.predict(f_test) == y_test).mean()),
                 f_train.shape[1] * info.num_classes + info.num_classes, time.perf_counter() - t, None))

    epochs = args.head_epochs + args.finetune_epochs
    for label, head, fine, blocks in (
            ("(b) new head only, body frozen", epochs, 0, 0),
            (f"(c) head, then the last {args.blocks} blocks", args.head_epochs, args.finetune_epochs, args.blocks),
            ("(d) head, then every block", args.head_epochs, args.finetune_epochs, None)):
        t = time.perf_counter()
        r = transfer.finetune(None, dataset, os.path.join(args.out, label[1]), model="efficientnet_lite0",
                              weights="imagenet", head_epochs=head, finetune_epochs=fine, unfreeze_blocks=blocks,
                              lr=args.lr, finetune_lr=args.finetune_lr, **common)
        phase = r.metrics["finetune"].get("finetune") or r.metrics["finetune"]["head"]
        rows.append((label, r.metrics["test_accuracy"], phase["trainable_params"], time.perf_counter() - t, None))

    for factor in (1, 3):
        t = time.perf_counter()
        config = TrainConfig(model="efficientnet_lite0", dataset=dataset, preprocessing="model", epochs=factor * epochs,
                             lr=args.lr, validation_fraction=0.0, batch_size=args.batch_size, seed=args.seed,
                             log_every=10_000)
        r = Trainer(config, os.path.join(args.out, f"scratch{factor}"), log=quiet).run()
        model = load_run(r.run_dir).model
        logits = model(data.preprocess(data.arrays["x_test"]), training=True).numpy()
        rows.append((f"(e) from scratch, {factor * epochs} epochs", r.metrics["test_accuracy"],
                     r.metrics["model_params"], time.perf_counter() - t,
                     float((logits.argmax(-1) == data.arrays["y_test"]).mean())))

    t = time.perf_counter()
    dc = compress_run(os.path.join(args.out, "c"), CompressConfig(prune=args.prune, prune_rounds=2,
                                                                 clusters=args.clusters, huffman=True,
                                                                 finetune_epochs=2),
                      os.path.join(args.out, "c_compressed"), log=quiet)
    dc_wall = time.perf_counter() - t

    lines = [f"Machine: {machine()}. Command: `{command()}`; {time.perf_counter() - start:.0f} s in all.", "",
             f"{info.num_classes} classes (one per shipped photo), {info.num_train} training and {info.num_test} test "
             f"crops of {args.size}x{args.size} pixels; Adam, lr {args.lr:g} (head, scratch) and "
             f"{args.finetune_lr:g} (fine-tuning), batch {args.batch_size}, {args.head_epochs} + "
             f"{args.finetune_epochs} epochs.", "",
             "| method | trained parameters | test accuracy | with test-batch BN statistics | wall s |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {label} | {params:,} | {acc:.4f} | {'-' if batch is None else f'{batch:.4f}'} | {wall:.0f} |"
              for label, acc, params, wall, batch in rows]
    lines += ["", f"Deep Compression of (c) ({dc_wall:.0f} s): prune to {args.prune:.0%} zeros, {args.clusters} shared "
              f"values per layer, Huffman: test accuracy {dc['accuracy_before']:.4f} -> {dc['accuracy_after']:.4f} "
              f"(the .tflite: {dc['accuracy_tflite']:.4f}); weights {dc['float32_weight_bytes'] / 1e6:.2f} MB float32 "
              f"-> {dc['size_bytes_after'] / 1e6:.2f} MB payload ({dc['float32_weight_bytes'] / dc['size_bytes_after']:.1f}x); "
              f".tflite {dc['float32_tflite_bytes'] / 1e6:.2f} MB, gzip of the compressed one "
              f"{dc['tflite_gzip_bytes'] / 1e6:.2f} MB."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, "transfer-efficientnet", body,
                      heading="Transfer learning from ImageNet: EfficientNet-Lite0 on crops of shipped photos")


if __name__ == "__main__":
    main()
