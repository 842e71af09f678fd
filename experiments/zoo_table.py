"""Lecture 9's architecture comparison: params, multiply-adds and activation memory of the zoo.

    python experiments/zoo_table.py [--names vgg16,resnet50] [--out experiments/out]

Prints the table and the VGG-16 memory note, writes ``zoo_complexity.png`` (multiply-adds vs
params, bubble area = activation memory) into ``--out``, and records the table in
``experiments/results/zoo.md`` (section "zoo_table") with the command and the machine.
Counting conventions: see ``cs231n_tf.models.complexity``.
"""

import argparse
import os
import platform
import sys
import tempfile
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import tensorflow as tf

from cs231n_tf.models import complexity, list_models

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "zoo.md")


def machine():
    """One line naming the CPU, core count, Python and TensorFlow versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{os.cpu_count()}-core CPU ({cpu}), Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}")


def command():
    return "python " + " ".join([os.path.relpath(sys.argv[0], os.path.dirname(HERE))] + sys.argv[1:])


def write_section(path, key, body):
    """Replace (or append) the section ``key`` of the results fragment ``path``, atomically.

    Each experiment owns one section between ``<!-- key -->`` and ``<!-- /key -->`` markers, so
    the table and the throughput benchmark can be rerun independently.
    """
    start, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) + 1:]
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "# Architecture zoo (lecture 9)\n\n") + block
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".zoo-", suffix=".md", dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", help="comma-separated model names (default: every registered one)")
    parser.add_argument("--out", default=os.path.join(HERE, "out"), help="directory for the PNG")
    parser.add_argument("--results", default=RESULTS, help="results fragment to update")
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
        "## Parameters, multiply-adds and activation memory",
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
