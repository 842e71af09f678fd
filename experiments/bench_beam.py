"""Beam search speed: the compiled search (one tf.while_loop in a tf.function) vs the same search in Python.

Both decode the same images with the same captioner (the default attention-LSTM of
:class:`cs231n_tf.sequence.captioner.CaptionConfig` on 64x64 images, weights from seed 0 and
trained for ``--steps`` steps on the synthetic shapes so captions have a realistic length) and
must give the same captions. The Python search (:func:`cs231n_tf.sequence.decoding.beam_search_python`)
calls a compiled decoder step once per word and keeps the beams in NumPy, the way a hand-written
decoding loop does; the compiled one runs the whole search in the graph.

    python experiments/bench_beam.py [--images 32] [--repeats 5]
"""

import argparse
import os
import sys

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402
from _timing import round_robin  # noqa: E402

from cs231n_tf.sequence import captioner, decoding  # noqa: E402
from cs231n_tf.sequence.captions import END, NULL, START, load_captions  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    data = load_captions("synthetic:600")
    config = captioner.CaptionConfig(max_steps=args.steps, epochs=100, validation_fraction=0.0, test_fraction=0.1)
    task = captioner.train(config, None, data=data, log=None, progress=False).task
    model, ids = task.model, task.vocab.word_to_idx
    images = tf.constant(data.splits["test"].images[:args.images] / 255.0, tf.float32)
    length, penalty = config.max_length + 1, config.length_penalty
    step = tf.function(model.step, reduce_retracing=True)
    rows = []
    for width in (1, 3, 5):
        compiled = tf.function(lambda x, w=width: vars(model.search(x, w, length, penalty, ids)))

        def python_search(w=width):
            memory, states = model.encode(images)
            return decoding.beam_search_python(step, [s.numpy() for s in states], memory.numpy(), start_id=ids[START],
                                               end_id=ids[END], null_id=ids[NULL], max_length=length, beam_width=w,
                                               length_penalty=penalty)

        a, b = compiled(images), python_search()
        same = float((a["tokens"].numpy() == b.tokens).all(axis=1).mean())
        times = round_robin({"compiled": lambda: compiled(images)["tokens"].numpy(), "python": python_search},
                            args.repeats)
        med = {k: float(np.median([w for w, _ in v])) for k, v in times.items()}
        rows.append((width, same, med["compiled"], med["python"], float(np.mean(b.lengths))))
        print(rows[-1], flush=True)
    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"{args.images} test images of the synthetic shapes, the default attention-LSTM captioner (64x64, 16x16 "
             f"attention grid, 25-word vocabulary) after {args.steps} training steps, up to {length} tokens, length "
             "penalty 0.6. Median wall seconds per batch:", "",
             "| beam width | same captions | compiled (tf.while_loop) s | Python loop s | speed-up | mean tokens |",
             "|---:|---:|---:|---:|---:|---:|"]
    for width, same, c, p, n in rows:
        lines.append(f"| {width} | {same:.0%} | {c:.3f} | {p:.3f} | {p / c:.2f}x | {n:.1f} |")
    write_section(RESULTS, "bench_beam", "\n".join(lines), heading="Beam search: compiled vs Python loop")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
