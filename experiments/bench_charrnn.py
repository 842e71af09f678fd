"""Char-RNN training speed: the engine's compiled TBPTT step vs Keras ``model.fit`` of the same stateful model.

Both train the same architecture (:class:`cs231n_tf.sequence.CharRNNConfig`'s defaults: 2-layer
LSTM, 256 units, 64-dim embedding, 32 streams x 100-character chunks, Adam, clipping at 5) on the
embedded pydoc corpus, chunks in the same stateful order:

- engine: ``cs231n_tf.sequence.train_charrnn`` (``tf.function`` step carrying the state in
  variables); its time is the engine's own training time (``examples_per_second``) of a
  ``1 + --steps`` run minus that of a 1-step run, so compilation is left out;
- Keras: the same layers rebuilt with ``stateful=True`` and ``model.fit(shuffle=False)`` on the
  chunks, timed by a callback over the epoch's batches after the first (compilation) batch.

Characters per second are printed side by side with the ratio, and the fraction of this machine's
float32 matmul peak (a 2048x2048 ``tf.matmul`` timed here) that the LSTM's multiply-adds reach
(forward + backward = 3x forward; embedding and softmax counted, elementwise gates not).

    python experiments/bench_charrnn.py [--steps 60]
"""

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402

from cs231n_tf.sequence import CharRNNConfig, CharVocab, load_text, train_charrnn  # noqa: E402
from cs231n_tf.sequence.text import tbptt_chunks  # noqa: E402


def matmul_peak_flops(n=2048, repeats=10):
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    f().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        f().numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def flops_per_char(config, vocab):
    """Multiply-add FLOPs (2 per MAC) of one character, forward + backward (3x forward)."""
    macs, inputs = 0, config.embedding
    for _ in range(config.layers):
        gates = 4 if config.cell == "lstm" else 3
        macs += gates * config.hidden * (inputs + config.hidden)
        inputs = config.hidden
    macs += config.hidden * vocab
    return 3 * 2 * macs


def keras_fit_chars_per_second(config, vocab, ids, steps):
    layers = tf.keras.layers
    b, t = config.batch_size, config.seq_len
    model = tf.keras.Sequential([layers.InputLayer(batch_input_shape=(b, t), dtype="int32"),
                                 layers.Embedding(len(vocab), config.embedding)])
    for _ in range(config.layers):
        model.add(layers.LSTM(config.hidden, return_sequences=True, stateful=True))
    model.add(layers.Dense(len(vocab)))
    model.compile(optimizer=tf.keras.optimizers.Adam(config.lr, global_clipnorm=config.clip_norm),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = tbptt_chunks(ids, b, t)
    x, y = x[:steps + 1].reshape(-1, t), y[:steps + 1].reshape(-1, t)

    class Timer(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                self.start = time.perf_counter()
            self.end = time.perf_counter()

    timer = Timer()
    model.fit(x, y, batch_size=b, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    return steps * b * t / (timer.end - timer.start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="timed training steps of each")
    parser.add_argument("--out", default="experiments/out/bench_charrnn")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = parser.parse_args()
    config = CharRNNConfig(checkpoint_every=0).validate()
    text = load_text(config.text)
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)

    def engine_train_seconds(steps):
        out = os.path.join(args.out, f"steps{steps}")
        shutil.rmtree(out, ignore_errors=True)
        run_config = dataclasses.replace(config, max_steps=steps).validate()
        train_charrnn(run_config, out, log=lambda *_: None)
        with open(os.path.join(out, "metrics.json")) as f:
            m = json.load(f)
        return steps * config.batch_size / m["examples_per_second"]  # an example is one stream's chunk

    # The difference of a 1-step and a (1 + steps)-step run: the steps alone, without compilation.
    engine = args.steps * config.batch_size * config.seq_len / (engine_train_seconds(1 + args.steps)
                                                                 - engine_train_seconds(1))
    keras = keras_fit_chars_per_second(config, vocab, ids, args.steps)
    peak = matmul_peak_flops()
    per_char = flops_per_char(config, len(vocab))

    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"2-layer LSTM 256, batch {config.batch_size} x {config.seq_len} characters, {args.steps} steps each; "
             f"float32 matmul peak measured here {peak / 1e9:.1f} GFLOP/s; {per_char / 1e6:.2f} MFLOP per "
             "character (forward + backward).", "",
             "| trainer | characters/s | GFLOP/s | fraction of matmul peak |", "|---|---:|---:|---:|"]
    for label, cps in (("engine (`charrnn train`)", engine), ("Keras `model.fit`, stateful", keras)):
        lines.append(f"| {label} | {cps:,.0f} | {cps * per_char / 1e9:.2f} | {cps * per_char / peak:.1%} |")
    lines.append(f"\nengine / model.fit: {engine / keras:.2f}x. Both exclude compilation: the engine's is the "
                 "training time of a (1 + steps)-step run minus a 1-step run's, model.fit's is timed from the end "
                 "of its first batch.")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, "bench-charrnn", body, heading="Char-RNN training speed: engine vs model.fit")


if __name__ == "__main__":
    main()
