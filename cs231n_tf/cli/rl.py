"""``cs231n-tf rl``: reinforcement learning (lecture 14): ``plan`` a finite MDP, ``train`` a DQN, ``evaluate`` a run.

The train flags come from :class:`~cs231n_tf.rl.dqn.DQNConfig`'s fields; the work is
:func:`cs231n_tf.rl.envs.plan`, :func:`cs231n_tf.rl.dqn.train` and :func:`cs231n_tf.rl.dqn.evaluate_run`.
"""

from cs231n_tf.cli import args as cli_args
from cs231n_tf.rl.dqn import DQNConfig

DESCRIPTION = ("Reinforcement learning on gymnasium: value/policy iteration on a transition table "
               "(FrozenLake, Taxi, CliffWalking, the package's grid world), deep Q-learning (DQN, Double DQN) "
               "with exact resume, and evaluation of a run's greedy policy.")
PLANNERS = ("value_iteration", "policy_iteration")
# Flags whose value may change when a run is resumed; any other flag must match the run.
RESUMABLE = ("total_steps", "checkpoint_every", "keep_checkpoints", "log_every")


def add_arguments(p):
    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    plan = verbs.add_parser("plan", help="solve a finite MDP: optimal V and policy as JSON (+ arrows PNG for grids)",
                            description="Value or policy iteration on env.unwrapped.P; writes plan.json "
                                        "(V, policy, iterations) and, for grid environments, policy.png to --out.")
    plan.add_argument("--env", default="FrozenLake-v1",
                      help="gymnasium id with a transition table (FrozenLake-v1, Taxi-v4, CliffWalking-v1, "
                           "cs231n_tf/GridWorld-v0)")
    plan.add_argument("--algo", default="value_iteration", choices=PLANNERS, help="planner")
    plan.add_argument("--gamma", type=cli_args.positive_float, default=0.99, help="discount, in (0, 1]")
    plan.add_argument("--map-size", choices=("4x4", "8x8"), help="FrozenLake's map (default: the env's, 4x4)")
    plan.add_argument("--tol", type=cli_args.positive_float, default=1e-10,
                      help="value iteration stops when V is within this of V*")
    plan.add_argument("--out", required=True, help="output directory")

    train = verbs.add_parser("train", help="train a DQN into --out (or continue it with --resume)",
                             description="Deep Q-learning on a gymnasium environment: replay, target network, "
                                         "epsilon schedule, Huber loss, compiled updates; checkpoints with exact "
                                         "resume, TensorBoard logs, metrics.json and returns.png in --out.")
    cli_args.add_config_flags(train, DQNConfig)
    g = train.add_argument_group("run directory")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")

    evaluate = verbs.add_parser("evaluate", help="mean and std of a run's greedy return, into its metrics.json",
                                description="Run the greedy policy of a DQN run for --episodes episodes (one per "
                                            "environment, batched) and write eval_return_mean / eval_return_std "
                                            "to the run's metrics.json.")
    evaluate.add_argument("--run", required=True, help="run directory written by `rl train`")
    evaluate.add_argument("--episodes", type=cli_args.positive_int, default=100, help="evaluation episodes")
    evaluate.add_argument("--seed", type=cli_args.non_negative_int,
                          help="seed of the first episode's environment (default: the run's seed + 10000)")
    evaluate.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def train_config(args):
    """The given flags as a validated DQNConfig (with --resume: the run's, with the resumable ones updated)."""
    from cs231n_tf.rl.dqn import load_run_config

    given = cli_args.config_values(DQNConfig, args)
    if args.resume:
        return cli_args.resumed_config(load_run_config(args.out), given, RESUMABLE, "rl train")
    return DQNConfig(**given).validate()


def run(args):
    if args.verb == "plan":
        from cs231n_tf.rl.envs import plan

        record = plan(args.env, args.algo, gamma=args.gamma, map_size=args.map_size, out=args.out, tol=args.tol)
        print(f"{record['env']} {record['algo']}: {record['iterations']} iterations in {record['seconds']:.3f}s, "
              f"V(start)={record['start_value']:.6f}; wrote {args.out}")
        return 0
    if args.verb == "evaluate":
        from cs231n_tf.rl.dqn import evaluate_run

        result = evaluate_run(args.run, episodes=args.episodes, seed=args.seed, checkpoint=args.checkpoint)
        print(f"eval_return_mean={result['eval_return_mean']:.2f} eval_return_std={result['eval_return_std']:.2f} "
              f"over {result['eval_episodes']} episodes (seed {result['eval_seed']})")
        return 0
    from cs231n_tf.rl.dqn import train

    result = train(train_config(args), args.out, resume=args.resume, log=lambda message: print(message, flush=True))
    print(f"run directory: {result.run_dir}")
    return 0
