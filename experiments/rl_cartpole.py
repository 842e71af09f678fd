"""DQN, A2C or REINFORCE on CartPole-v1 to "solved" (mean return >= 475 over 100 evaluation episodes): env steps needed.

Trains ``cs231n_tf.rl.dqn.train`` with :class:`~cs231n_tf.rl.dqn.DQNConfig`'s defaults (rl-baselines3-zoo's
tuned CartPole DQN: 50,000 steps), or ``cs231n_tf.rl.pg.train`` with :class:`~cs231n_tf.rl.pg.PGConfig`'s
(rl-baselines3-zoo's CartPole A2C with Adam; ``--lr`` overrides), for each ``--seeds``, checkpointing
every ``--every`` steps, then scores every checkpoint's greedy policy on 100 episodes (seeds
10000..10099, unseen in training) with the module's ``evaluate_run``. Reported per seed: the first
checkpoint whose mean return reaches 475, the final evaluation and the training speed.

    python experiments/rl_cartpole.py [--algo dqn|double_dqn|a2c|reinforce] [--seeds 0] [--total-steps 50000]
        [--every 5000]
"""

import argparse
import os
import shutil
import sys

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402

from cs231n_tf.engine.state import checkpoint_paths  # noqa: E402
from cs231n_tf.rl import dqn, pg  # noqa: E402

SOLVED = 475.0
FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def plot_evaluations(curves, algo, path):
    """Every seed's evaluation mean return against environment steps, with the solved line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for seed, curve in curves.items():
        ax.plot([s for s, _, _ in curve], [m for _, m, _ in curve], marker=".", label=f"seed {seed}")
    ax.axhline(SOLVED, color="grey", linestyle="--", label="solved (475)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean greedy return (100 episodes)")
    ax.set_title(f"{algo} on CartPole-v1")
    ax.legend()
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="dqn", choices=dqn.ALGOS + pg.ALGOS)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--total-steps", type=int, default=50_000)
    parser.add_argument("--every", type=int, default=5000, help="checkpoint (and evaluate) every N env steps")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--lr", type=float, help="learning rate (default: the config's)")
    parser.add_argument("--out", default="experiments/out/rl_cartpole")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    module, config_class = (dqn, dqn.DQNConfig) if args.algo in dqn.ALGOS else (pg, pg.PGConfig)
    overrides = {} if args.lr is None else {"lr": args.lr}
    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"{args.algo} on CartPole-v1, {config_class.__name__} defaults (rl-baselines3-zoo's)"
             f"{f', lr {args.lr:g}' if overrides else ''}, {args.total_steps:,} env steps; "
             f"every {args.every:,}-step checkpoint's greedy policy scored on {args.episodes} episodes "
             "(environment seeds 10000 + i).", "",
             "| seed | env steps to mean >= 475 | final eval mean +- std | train env steps/s | wall s |",
             "|---:|---:|---:|---:|---:|"]
    curves, evaluations = [], {}
    for seed in seeds:
        out = os.path.abspath(os.path.join(args.out, f"{args.algo}-seed{seed}"))
        shutil.rmtree(out, ignore_errors=True)
        config = config_class(algo=args.algo, seed=seed, total_steps=args.total_steps, checkpoint_every=args.every,
                              keep_checkpoints=args.total_steps // args.every + 1, **overrides)
        result = module.train(config, out)
        curve = []
        for path in reversed(checkpoint_paths(os.path.join(out, "checkpoints"))):
            scored = module.evaluate_run(out, episodes=args.episodes, checkpoint=path)
            step = int(path.rsplit("-", 1)[1])
            curve.append((step, scored["eval_return_mean"], scored["eval_return_std"]))
            print(f"seed {seed} step {step}: eval mean {scored['eval_return_mean']:.1f} "
                  f"+- {scored['eval_return_std']:.1f}", flush=True)
        evaluations[seed] = curve
        solved = next((step for step, mean, _ in curve if mean >= SOLVED), None)
        step, mean, std = curve[-1]
        lines.append(f"| {seed} | {f'{solved:,}' if solved else 'not solved'} | {mean:.1f} +- {std:.1f} | "
                     f"{result.metrics['env_steps_per_second']:.0f} | {result.metrics['wall_seconds']:.0f} |")
        curves.append(f"Seed {seed} evaluations (step: mean return): "
                      + ", ".join(f"{s:,}: {m:.1f}" for s, m, _ in curve) + ".")
    lines += [""] + curves + [""]
    if module is dqn:
        lines.append("For comparison, rl-baselines3-zoo reports DQN reaching 500 on CartPole-v1 in 50,000 steps.")
    else:
        lines.append("For comparison, rl-baselines3-zoo trains A2C on CartPole-v1 for 500,000 steps (8 environments).")
    if not args.no_write:
        figure = plot_evaluations(evaluations, args.algo, os.path.join(FIGURES, f"rl_{args.algo}_cartpole.png"))
        lines.append(f"\nEvaluation curves: `experiments/figures/{os.path.basename(figure)}`.")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, f"rl-cartpole-{args.algo}", body, heading=f"RL: {args.algo} on CartPole-v1")


if __name__ == "__main__":
    main()
