"""Atari environment throughput: the raw ALE game vs the Nature DQN preprocessing vs vectorised copies.

    python experiments/bench_atari_env.py [--game Pong] [--steps 2000] [--rounds 3]

Agent steps per second with uniformly random actions, each configuration timed ``--steps`` steps per
round, rounds interleaved so load changes hit every configuration alike (median reported):

- ``ALE/<Game>-v5``: the emulator with its built-in 4-frame skip and RGB 210x160 frames;
- ``cs231n_tf/<Game>-v5``: the same game with ``frameskip=1`` under gymnasium's ``AtariPreprocessing``
  (skip 4 with max-pooling, 84x84 grayscale) and a 4-frame stack (:mod:`cs231n_tf.rl.atari`);
- 4 preprocessed copies in ``gymnasium.vector.SyncVectorEnv`` (what ``rl train --num-envs 4`` runs)
  and in ``AsyncVectorEnv`` (one process per copy).

One agent step is 4 emulator frames in every configuration. Needs the ``atari`` extra.
"""

import argparse
import os
import sys
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402


def _steps_per_second(env, steps, vector, seed):
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    n = env.num_envs if vector else 1
    actions = rng.integers(0, env.single_action_space.n if vector else env.action_space.n, (steps, n))
    start = time.perf_counter()
    for a in actions:
        if vector:
            env.step(a)
        else:
            _, _, terminated, truncated, _ = env.step(int(a[0]))
            if terminated or truncated:
                env.reset()
    return steps * n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="Pong")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import gymnasium as gym

    from cs231n_tf.rl.envs import check_env_id, make_env

    ours = check_env_id(f"cs231n_tf/{args.game}-v5")  # registers the ALE and preprocessed ids
    configs = {
        f"ALE/{args.game}-v5 (RGB 210x160, built-in skip 4)": (lambda: make_env(f"ALE/{args.game}-v5"), False),
        f"{ours} (84x84x4 stack)": (lambda: make_env(ours), False),
        "4 x preprocessed, SyncVectorEnv": (lambda: gym.vector.SyncVectorEnv([lambda: make_env(ours)] * 4), True),
        "4 x preprocessed, AsyncVectorEnv": (lambda: gym.vector.AsyncVectorEnv([lambda: make_env(ours)] * 4), True),
    }
    envs = {name: (make(), vector) for name, (make, vector) in configs.items()}
    rates = {name: [] for name in configs}
    for r in range(args.rounds):
        for name, (env, vector) in envs.items():
            rates[name].append(_steps_per_second(env, args.steps, vector, seed=r))
    for env, _ in envs.values():
        env.close()
    medians = {name: float(np.median(v)) for name, v in rates.items()}
    base = medians[next(iter(medians))]
    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"Random actions, {args.steps} agent steps (x copies) per configuration per round, median of "
             f"{args.rounds} interleaved rounds; one agent step = 4 emulator frames everywhere.", "",
             "| configuration | agent steps/s | vs the raw ALE env |", "|---|---:|---:|"]
    lines += [f"| {name} | {rate:,.0f} | {rate / base:.2f}x |" for name, rate in medians.items()]
    body = "\n".join(lines)
    print(body)
    write_section(RESULTS, "bench-atari-env", body, heading="Atari environment throughput (lecture 14)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
