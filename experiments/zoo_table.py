"""Lecture 9's architecture comparison: params, multiply-adds and activation memory of the zoo.

    python experiments/zoo_table.py [--names vgg16,resnet50] [--out experiments/out]

Prints the table and the VGG-16 memory note, writes ``zoo_complexity.png`` (multiply-adds vs
params, bubble area = activation memory) into ``--out``, and records the table in
``experiments/RESULTS.md`` (section "zoo_table") with the command and the machine.
Counting conventions: see ``cs231n_tf.models.complexity``.
"""

import argparse
import os
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)

from _results import HERE, RESULTS, command, machine, write_section
from cs231n_tf.models import complexity, list_models









def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", help="comma-separated model names (default: every registered one)")
    parser.add_argument("--out", default=os.path.join(HERE, "out"), help="directory for the PNG")
    parser.add_argument("--results", default=RESULTS, help="results file to update")
    args = parser.parse_args(argv)
    names = args.names.split(",") if args.names else None

    started, cpu_started = time.perf_counter(), time.process_time()
    rows = complexity.comparison_table(names)
    table = complexity.format_table(rows)
    note = complexity.vgg16_memory_note() if "vgg16" in (names or list_models()) else ""
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(table)
    if note:
        print("\n" + note)
    os.makedirs(args.out, exist_ok=True)
    png = complexity.plot_comparison(rows, os.path.join(args.out, "zoo_complexity.png"))
    print(f"\nwrote {png} ({elapsed:.0f} s wall, {cpu:.0f} s CPU to build and profile {len(rows)} models)")

    body = [
        "### Parameters, multiply-adds and activation memory",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        f"Built and profiled {len(rows)} models in {elapsed:.0f} s wall, {cpu:.0f} s CPU (analytic counts, "
        f"no forward pass). Plot: `{os.path.relpath(png, os.path.dirname(HERE))}`.",
        "",
        "```",
        table,
        "```",
    ]
    if note:
        body += ["", note]
    write_section(args.results, "zoo_table", "\n".join(body))
    print(f"updated {args.results}")


if __name__ == "__main__":
    main()
