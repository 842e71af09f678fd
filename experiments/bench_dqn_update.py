"""DQN update speed: the compiled update (``tf.function``, and with XLA) vs the same update run eagerly.

All three run :meth:`cs231n_tf.rl.dqn.DQNAgent.train_step` on the same replay batches (CartPole-v1's
default DQN: 256-256 MLP, batch 64, Huber loss, Adam, clipping at 10, Double DQN off): ``compiled``
is ``DQNAgent.update`` (the loop over ``--updates`` batches inside one ``tf.function``), ``xla`` the same
with ``jit_compile=True``, ``eager`` is ``DQNAgent.update_eager`` (the same ops dispatched from Python).
Timed side by side with ``round_robin``; updates per second and the ratio to eager are printed.

    python experiments/bench_dqn_update.py [--updates 32] [--repeats 5]
"""

import argparse
import dataclasses
import os
import sys

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import gymnasium as gym
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402
from _timing import round_robin  # noqa: E402

from cs231n_tf.rl.dqn import DQNAgent, DQNConfig  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=32, help="updates per timed call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    config = DQNConfig().validate()
    env = gym.make(config.env)
    rng = np.random.default_rng(0)
    k, b = args.updates, config.batch_size
    batch = (rng.normal(size=(k, b, 4)).astype(np.float32), rng.integers(0, 2, (k, b)),
             rng.normal(size=(k, b)).astype(np.float32), rng.normal(size=(k, b, 4)).astype(np.float32),
             (rng.random((k, b)) < 0.05).astype(np.float32))
    agents = {"compiled": DQNAgent(config, env.observation_space, 2),
              "xla": DQNAgent(dataclasses.replace(config, xla=True), env.observation_space, 2),
              "eager": DQNAgent(config, env.observation_space, 2)}
    methods = {"compiled": lambda: agents["compiled"].update(*batch).numpy(),
               "xla": lambda: agents["xla"].update(*batch).numpy(),
               "eager": lambda: agents["eager"].update_eager(*batch).numpy()}
    times = round_robin(methods, args.repeats)
    rate = {name: k / float(np.median([wall for wall, _ in t])) for name, t in times.items()}
    cpu = {name: k / float(np.median([c for _, c in t])) for name, t in times.items()}
    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"CartPole-v1 DQN update (256-256 MLP, batch {b}, Adam, Huber, clip 10), {k} updates per call, "
             f"median of {args.repeats} interleaved calls.", "",
             "| update | updates/s (wall) | updates/s (CPU time) | vs eager |", "|---|---:|---:|---:|"]
    labels = {"compiled": "`tf.function`", "xla": "`tf.function(jit_compile=True)`", "eager": "eager"}
    for name in ("compiled", "xla", "eager"):
        lines.append(f"| {labels[name]} | {rate[name]:,.0f} | {cpu[name]:,.0f} | {rate[name] / rate['eager']:.1f}x |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, "bench-dqn-update", body, heading="DQN update: compiled vs eager")


if __name__ == "__main__":
    main()
