"""What every experiment script shares: the machine line, the command line, and writing its section
of ``experiments/RESULTS.md``.

Each script owns the text between ``<!-- key -->`` and ``<!-- /key -->`` in RESULTS.md, so any of
them can be rerun without touching the others' figures.
"""

import os
import platform
import sys

from cs231n_tf.fileio import atomic_write_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
# CS231N_TF_RESULTS sends the sections elsewhere (several experiments running at once, a draft).
RESULTS = os.environ.get("CS231N_TF_RESULTS") or os.path.join(HERE, "RESULTS.md")


def machine():
    """One line naming the CPU, core count, Python and TensorFlow versions."""
    import tensorflow as tf

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()}-core CPU ({cpu}), Python {platform.python_version()}, TensorFlow {tf.__version__}"


def command():
    """The command line that ran this script, relative to the repository root."""
    return "python " + " ".join([os.path.relpath(sys.argv[0], os.path.dirname(HERE))] + sys.argv[1:])


def write_section(path, key, body, heading=None):
    """Replace the section ``key`` of the markdown file ``path`` (or append it, under ``heading``)."""
    start, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) + 1:]
    else:
        prefix = f"## {heading}\n\n" if heading else ""
        text = (text.rstrip() + "\n\n" if text.strip() else "") + prefix + block
    atomic_write_bytes(path, text.encode())
