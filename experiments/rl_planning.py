"""Value iteration vs policy iteration on FrozenLake-v1 (4x4, 8x8, slippery) and the package's grid world,
and the tabular Q-learning episodes needed to reach the same greedy policy.

For each MDP both planners run side by side (``round_robin``, interleaved): sweeps/iterations, the
median wall time, whether the policies are identical and the largest V difference. Then
:func:`cs231n_tf.rl.q_learning` (exploring starts for the grid world) is checked after every
episode against value iteration's policy on the non-terminal states, and the first episode from
which it stays equal for the rest of the run is reported.

    python experiments/rl_planning.py [--gamma 0.99] [--q-gamma 0.9] [--episodes 5000] [--seed 0]
"""

import argparse
import os
import sys

import gymnasium as gym
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402
from _timing import round_robin  # noqa: E402

from cs231n_tf.rl import GridWorldEnv, TabularMDP, q_learning, solve  # noqa: E402


def mdps():
    return {"FrozenLake-v1 4x4": gym.make("FrozenLake-v1", map_name="4x4").unwrapped.P,
            "FrozenLake-v1 8x8": gym.make("FrozenLake-v1", map_name="8x8").unwrapped.P,
            "grid world (AIMA 4x3)": GridWorldEnv().P}


def episodes_to_policy(env, optimal, states, gamma, episodes, seed):
    """The first episode after which Q-learning's greedy policy equals ``optimal`` on ``states`` for good."""
    matches = []

    def check(episode, Q):
        best = Q.max(axis=1, keepdims=True)
        greedy = np.argmax(Q >= best - 1e-9 * np.maximum(1, np.abs(best)), axis=1)
        matches.append(bool(np.array_equal(greedy[states], optimal[states])))
        return False

    result = q_learning(env, episodes, gamma, seed=seed, callback=check)
    matches = np.array(matches)
    if not matches[-1]:
        return None, result.steps
    last_miss = np.flatnonzero(~matches)
    return (int(last_miss[-1]) + 2 if last_miss.size else 1), result.steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--q-gamma", type=float, default=0.9, help="discount of the Q-learning runs")
    parser.add_argument("--episodes", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"gamma {args.gamma}, value iteration to ||V - V*|| <= 1e-10; times are medians of {args.repeats} "
             "interleaved runs.", "",
             "| MDP | states | VI sweeps | PI iterations | VI ms | PI ms | VI / PI time | same policy "
             "| max abs V diff |",
             "|---|---:|---:|---:|---:|---:|---:|:---:|---:|"]
    for name, P in mdps().items():
        mdp = TabularMDP(P)
        V_vi, pi_vi, it_vi = solve(mdp, args.gamma, "value_iteration")
        V_pi, pi_pi, it_pi = solve(mdp, args.gamma, "policy_iteration")
        times = round_robin({"vi": lambda: solve(mdp, args.gamma, "value_iteration"),
                             "pi": lambda: solve(mdp, args.gamma, "policy_iteration")}, args.repeats)
        vi_ms, pi_ms = (1e3 * float(np.median([w for w, _ in times[k]])) for k in ("vi", "pi"))
        lines.append(f"| {name} | {mdp.n_states} | {it_vi} | {it_pi} | {vi_ms:.2f} | {pi_ms:.2f} | "
                     f"{vi_ms / pi_ms:.1f}x | {'yes' if np.array_equal(pi_vi, pi_pi) else 'NO'} | "
                     f"{np.abs(V_vi - V_pi).max():.1e} |")

    lines += ["", f"Tabular Q-learning (epsilon 1 -> 0.1 over half the episodes, alpha = 0.5 / (1 + n)^0.8, "
              f"gamma {args.q_gamma}, seed {args.seed}, at most {args.episodes} episodes): the episode from which "
              "its greedy policy equals value iteration's on every non-terminal state.", "",
              "| MDP | episodes to VI's policy | env steps |", "|---|---:|---:|"]
    q_cases = {"grid world (AIMA 4x3), exploring starts": GridWorldEnv(random_start=True),
               "FrozenLake-v1 4x4": gym.make("FrozenLake-v1", map_name="4x4")}
    for name, env in q_cases.items():
        P = env.unwrapped.P
        _, optimal, _ = solve(P, args.q_gamma, "value_iteration")
        desc = np.asarray(env.unwrapped.desc).astype(str).ravel()
        states = np.flatnonzero(np.isin(desc, ["S", ".", "F"]))
        episode, steps = episodes_to_policy(env, optimal, states, args.q_gamma, args.episodes, args.seed)
        shown = f"{episode}" if episode is not None else f"not within {args.episodes}"
        lines.append(f"| {name} | {shown} | {steps:,} |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, "rl-planning", body, heading="RL planning: value vs policy iteration, Q-learning")


if __name__ == "__main__":
    main()
