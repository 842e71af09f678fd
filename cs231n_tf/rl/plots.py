"""Figures of reinforcement learning: a grid policy as arrows over its values, a return curve (matplotlib, Agg)."""

import numpy as np

from cs231n_tf.errors import ShapeError
from cs231n_tf.fileio import atomic_write_bytes

# FrozenLake's and the grid world's action order: 0 left, 1 down, 2 right, 3 up.
_ARROWS = {0: (-1.0, 0.0), 1: (0.0, -1.0), 2: (1.0, 0.0), 3: (0.0, 1.0)}


def _figure_png(fig):
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def plot_policy(desc, V, policy, path, title=None):
    """Write a PNG of ``policy`` as arrows over the grid ``desc`` coloured by ``V``; returns ``path``.

    ``desc``: ``[rows, cols]`` cell letters (FrozenLake's ``env.unwrapped.desc`` bytes or the grid
    world's); ``V`` and ``policy``: ``[rows * cols]`` in row-major state order. Walls (``#``) are grey;
    terminal cells (goal ``G``, pit ``P``, hole ``H``) get their letter instead of an arrow.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    desc = np.asarray([[c.decode() if isinstance(c, bytes) else str(c) for c in row] for row in np.asarray(desc)])
    rows, cols = desc.shape
    V = np.asarray(V, dtype=np.float64)
    policy = np.asarray(policy)
    if V.shape != (rows * cols,) or policy.shape != (rows * cols,):
        raise ShapeError(f"V and policy must have {rows * cols} entries (a {rows}x{cols} grid), "
                         f"got {V.shape} and {policy.shape}")
    values = np.ma.masked_array(V.reshape(rows, cols), mask=desc == "#")
    fig, ax = plt.subplots(figsize=(max(3, 0.8 * cols + 1), max(2.5, 0.8 * rows)))
    cmap = matplotlib.colormaps["viridis"].copy()
    cmap.set_bad("0.5")
    image = ax.imshow(values, cmap=cmap)
    fig.colorbar(image, ax=ax, label="V(s)")
    for r in range(rows):
        for c in range(cols):
            cell = desc[r, c]
            if cell == "#":
                continue
            if cell in "GPH":
                ax.text(c, r, cell, ha="center", va="center", color="white", fontsize=12, weight="bold")
                continue
            dx, dy = _ARROWS[int(policy[r * cols + c])]
            ax.arrow(c - 0.25 * dx, r + 0.25 * dy, 0.5 * dx, -0.5 * dy, head_width=0.15, head_length=0.12,
                     length_includes_head=True, color="white")
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    if title:
        ax.set_title(title)
    atomic_write_bytes(path, _figure_png(fig))
    return path


def plot_returns(steps, returns, path, title="episode return", window=20):
    """Write a PNG of episode returns against environment steps, with a ``window``-episode running mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, returns = np.asarray(steps, dtype=np.float64), np.asarray(returns, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, returns, ".", alpha=0.3, label="episode")
    if len(returns) >= window:
        mean = np.convolve(returns, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], mean, label=f"mean of {window}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.legend()
    atomic_write_bytes(path, _figure_png(fig))
    return path
