"""The package's own grid-world MDP, a gymnasium environment with a transition table.

:class:`GridWorldEnv` is the textbook grid world (Russell & Norvig, *AIMA* ch. 17; lecture 14's
example): walls, a goal, pits, a reward per step, and moves that slip. Its ``P`` has gymnasium's
format (``P[s][a] = [(probability, next_state, reward, terminated), ...]``, as FrozenLake's), so
the planners and the learners take it and FrozenLake alike.

The layout is a list of equal-length rows: ``S`` the start, ``.`` free, ``#`` a wall, ``G`` a goal
(reward ``goal_reward``, ends the episode), ``P`` a pit (``pit_reward``, ends the episode). State
``s = row * columns + column``; walls, goals and pits are states too, with terminating self-loops
of reward 0 (they are never occupied), which keeps the numbering FrozenLake's. Actions are
FrozenLake's: 0 left, 1 down, 2 right, 3 up. A move goes the intended way with probability
``1 - slip`` and to each side (perpendicular) with ``slip / 2``; moving into a wall or off the grid
stays put. Every move earns ``step_reward``, plus ``goal_reward`` / ``pit_reward`` when it enters a
goal / pit (AIMA's ``R(s)`` paid on leaving ``s``).

The default layout is AIMA's 4x3 world (slip 0.2, step reward -0.04); its optimal utilities with
``gamma = 1`` are AIMA's Figure 17.3 (0.812, 0.868, 0.918 along the top row...).
"""

import gymnasium as gym
import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError

AIMA_LAYOUT = ("...G",
               ".#.P",
               "S...")
CELLS = "S.#GP"
TERMINAL_CELLS = "GPH"  # FrozenLake's holes are H
LEFT, DOWN, RIGHT, UP = range(4)
MOVES = {LEFT: (0, -1), DOWN: (1, 0), RIGHT: (0, 1), UP: (-1, 0)}
SIDES = {LEFT: (DOWN, UP), DOWN: (RIGHT, LEFT), RIGHT: (UP, DOWN), UP: (LEFT, RIGHT)}


def _layout(layout):
    if isinstance(layout, str):
        layout = layout.split()
    rows = [str(r) for r in layout]
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise ConfigError(f"layout must be non-empty rows of equal length, got {layout!r}")
    bad = sorted({c for r in rows for c in r} - set(CELLS))
    if bad:
        raise ConfigError(f"layout has cell(s) {', '.join(map(repr, bad))}; cells are S (start), . (free), "
                          "# (wall), G (goal), P (pit)")
    if sum(r.count("S") for r in rows) != 1:
        raise ConfigError("layout needs exactly one start cell S")
    if not any("G" in r for r in rows):
        raise ConfigError("layout needs at least one goal cell G")
    return rows


class GridWorldEnv(gym.Env):
    """A slippery grid world with walls, goals and pits (see the module docstring).

    ``random_start``: episodes start in a uniformly drawn free cell instead of ``S`` (exploring
    starts, which tabular learners need to visit every state). Observations are state indices
    (``Discrete(rows * columns)``).
    """

    metadata = {"render_modes": []}

    def __init__(self, layout=AIMA_LAYOUT, slip=0.2, step_reward=-0.04, goal_reward=1.0, pit_reward=-1.0,
                 random_start=False):
        rows = _layout(layout)
        slip = validation.positive_number("slip", slip, allow_zero=True)
        if slip > 1:
            raise ConfigError(f"slip must be a probability in [0, 1], got {slip!r}")
        for name, value in (("step_reward", step_reward), ("goal_reward", goal_reward), ("pit_reward", pit_reward)):
            if not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
        self.layout = rows
        self.desc = np.array([list(r) for r in rows], dtype="U1")
        self.shape = self.desc.shape
        n_rows, n_cols = self.shape
        self.slip, self.random_start = float(slip), bool(random_start)
        self.observation_space = gym.spaces.Discrete(n_rows * n_cols)
        self.action_space = gym.spaces.Discrete(4)
        cell_reward = {".": float(step_reward), "S": float(step_reward), "G": float(step_reward + goal_reward),
                       "P": float(step_reward + pit_reward)}
        self.P = {}
        for r in range(n_rows):
            for c in range(n_cols):
                s = r * n_cols + c
                if self.desc[r, c] in "#GP":
                    self.P[s] = {a: [(1.0, s, 0.0, True)] for a in range(4)}
                    continue
                self.P[s] = {}
                for a in range(4):
                    outcomes = {}
                    for direction, p in ((a, 1.0 - slip), (SIDES[a][0], slip / 2), (SIDES[a][1], slip / 2)):
                        if p == 0:
                            continue
                        dr, dc = MOVES[direction]
                        nr, nc = r + dr, c + dc
                        if not (0 <= nr < n_rows and 0 <= nc < n_cols) or self.desc[nr, nc] == "#":
                            nr, nc = r, c
                        outcomes[(nr, nc)] = outcomes.get((nr, nc), 0.0) + p
                    self.P[s][a] = [(p, nr * n_cols + nc, cell_reward[self.desc[nr, nc]],
                                     bool(self.desc[nr, nc] in "GP")) for (nr, nc), p in outcomes.items()]
        self.start_state = int(np.flatnonzero(self.desc.ravel() == "S")[0])
        self.free_states = np.flatnonzero(np.isin(self.desc.ravel(), ["S", "."]))
        self.s = self.start_state

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = int(self.np_random.choice(self.free_states)) if self.random_start else self.start_state
        return self.s, {}

    def step(self, action):
        transitions = self.P[self.s][int(action)]
        i = int(self.np_random.choice(len(transitions), p=[t[0] for t in transitions]))
        _, self.s, reward, terminated = transitions[i]
        return self.s, reward, terminated, False, {}
