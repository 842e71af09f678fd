"""Char-RNN on the embedded corpus (lecture 10): Python's own pydoc topics, the defaults of `charrnn train`.

Trains :class:`cs231n_tf.sequence.CharRNNConfig`'s defaults (2-layer LSTM, 256 units, truncated
BPTT over 100-character chunks of 32 streams, Adam 2e-3, clipping at 5, the default step budget)
on ``pydoc_data.topics`` (about 465 kB of English that ships with Python), then samples 300
characters at three temperatures from the same prime. Prints validation nats/char per epoch and
writes its section of RESULTS.md.

    python experiments/charrnn_pydoc.py [--max-steps N]
"""

import argparse
import json
import os
import shutil
import sys
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402

from cs231n_tf.sequence import CharRNNConfig, sample_charrnn, train_charrnn  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=None, help="step budget (default: the config's)")
    parser.add_argument("--prime", default="The ")
    parser.add_argument("--out", default="experiments/out/charrnn_pydoc")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    config = CharRNNConfig() if args.max_steps is None else CharRNNConfig(max_steps=args.max_steps)
    start = time.perf_counter()
    train_charrnn(config.validate(), args.out, log=lambda *_: None)
    wall = time.perf_counter() - start
    with open(os.path.join(args.out, "metrics.json")) as f:
        metrics = json.load(f)
    lines = [f"Machine: {machine()}. Command: `{command()}`; training {wall:.0f} s ({config.max_steps} steps).", "",
             "| epoch | step | train nats/char | validation nats/char | validation perplexity |",
             "|---:|---:|---:|---:|---:|"]
    for row in metrics["history"]:
        lines.append(f"| {row.get('epoch')} | {row.get('step')} | {row.get('train_loss', float('nan')):.3f} | "
                     f"{row.get('val_loss', float('nan')):.3f} | {row.get('val_perplexity', float('nan')):.2f} |")
    for temperature in (0.5, 0.8, 1.0):
        text = sample_charrnn(args.out, 300, temperature=temperature, prime=args.prime, seed=0)
        lines += ["", f"Sample at temperature {temperature:g} (prime {args.prime!r}):", "", "```", text, "```"]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, "charrnn-pydoc", body, heading="Char-RNN on Python's pydoc topics (lecture 10)")


if __name__ == "__main__":
    main()
