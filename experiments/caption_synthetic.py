"""Captioning on the embedded synthetic shapes: BLEU-4 of RNN vs LSTM vs attention-LSTM, greedy vs beam 3/5.

Three captioners with the same encoder (``small_convnet`` cut at its 16x16 feature map), the same
budget (``--epochs`` over the 1,600 training images of the default 2,000-image set, 64x64) and the
same decoder width, differing only in the decoder:

- ``rnn``: a vanilla RNN (Keras ``SimpleRNN``), no attention (the course's captioner, library tier);
- ``lstm``: an LSTM, no attention;
- ``lstm+attention``: an LSTM with soft attention and the doubly stochastic regulariser.

Each is scored on the 200 test images with corpus BLEU-1..4 (sacrebleu, on the package's
tokenisation, every reference caption counted), decoding greedily and with beams of 3 and 5
(length penalty 0.6). One attention PNG of a test image is written to ``experiments/figures/``.

    python experiments/caption_synthetic.py [--epochs 15]
"""

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402

from cs231n_tf.sequence import captioner  # noqa: E402
from cs231n_tf.sequence.bleu import corpus_bleu  # noqa: E402
from cs231n_tf.sequence.captions import END, load_captions  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = (("rnn", "rnn", False), ("lstm", "lstm", False), ("lstm+attention", "lstm", True))
DECODES = (("greedy", 1), ("beam 3", 3), ("beam 5", 5))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_captions("synthetic")
    test_images = data.splits["test"].images / data.pixel_max
    references = data.references("test")
    rows = []
    scratch = tempfile.mkdtemp(prefix="caption-synthetic-")
    example = None
    try:
        for label, cell, attention in VARIANTS:
            config = captioner.CaptionConfig(epochs=args.epochs, seed=args.seed, cell=cell, attention=attention)
            run_dir = os.path.join(scratch, label.replace("+", "_"))
            start = time.perf_counter()
            result = captioner.train(config, run_dir, data=data, log=None)
            seconds = time.perf_counter() - start
            run = captioner.load_run(run_dir)
            row = {"model": label, "params": result.metrics["model_params"], "seconds": seconds,
                   "val_loss": result.metrics["val_loss"]}
            for name, width in DECODES:
                _, decoded = captioner.caption_images(run, test_images, beam_width=width, length_penalty=0.6)
                row[name] = corpus_bleu(run.vocab.decode_tokens(decoded.tokens), references)
            rows.append(row)
            print(row, flush=True)
            if attention:
                os.makedirs(os.path.join(HERE, "figures"), exist_ok=True)
                example = captioner.predict(run, test_images[:1], out_dir=os.path.join(HERE, "figures"),
                                            names=["caption_synthetic_test0"])[0]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"{data.num_images('train')} training / {data.num_images('test')} test images (64x64, 3 references each), "
             f"{len(data.vocab)}-word vocabulary; encoder `small_convnet` (16x16x64 feature map), embedding 128, "
             f"hidden 256, Adam 2e-3, clip 5, batch 64, {args.epochs} epochs, seed {args.seed}. Test BLEU-4 "
             "(BLEU-1 in brackets), length penalty 0.6:", "",
             "| decoder | params | train s | val nats/word | " + " | ".join(n for n, _ in DECODES) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(DECODES)]
    for r in rows:
        cells = " | ".join(f"{r[n]['bleu4']:.3f} ({r[n]['bleu1']:.3f})" for n, _ in DECODES)
        lines.append(f"| {r['model']} | {r['params']:,} | {r['seconds']:.0f} | {r['val_loss']:.3f} | {cells} |")
    if example is not None:
        lines += ["", f"Attention of the first test image (`experiments/figures/caption_synthetic_test0.attention.png`): "
                      f"\"{example['caption']}\"; references: "
                      + "; ".join(f"\"{' '.join(t)}\"" for t in references[0]) + "."]
    write_section(RESULTS, "caption_synthetic", "\n".join(lines), heading="Image captioning on the synthetic shapes")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
