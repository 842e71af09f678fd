"""``cs231n-tf rl``: reinforcement learning (lecture 14): ``plan`` a finite MDP, ``train`` DQN/Double DQN/REINFORCE/A2C,
``evaluate`` and ``export`` a run.

The train flags come from :class:`~cs231n_tf.rl.dqn.DQNConfig`'s and :class:`~cs231n_tf.rl.pg.PGConfig`'s
fields (one flag per name; a flag of the other family's algorithms is refused); the work is
:func:`cs231n_tf.rl.envs.plan`, ``train``/``evaluate_run`` of :mod:`cs231n_tf.rl.dqn` and
:mod:`cs231n_tf.rl.pg` (chosen by ``--algo``, or by the run's task for ``--resume``, ``evaluate`` and
``export``) and :func:`cs231n_tf.rl.export.export_run`.
"""

import dataclasses

from cs231n_tf.cli import args as cli_args
from cs231n_tf.cli.args import UsageError
from cs231n_tf.rl.dqn import DQNConfig
from cs231n_tf.rl.pg import PGConfig

DESCRIPTION = ("Reinforcement learning on gymnasium: value/policy iteration on a transition table "
               "(FrozenLake, Taxi, CliffWalking, the package's grid world), deep Q-learning (DQN, Double DQN) and "
               "policy gradients (REINFORCE, A2C) with exact resume, evaluation of a run's greedy policy, and its "
               "export to SavedModel and TFLite.")
PLANNERS = ("value_iteration", "policy_iteration")
DQN_ALGOS, PG_ALGOS = ("dqn", "double_dqn"), ("reinforce", "a2c")
FAMILIES = {"rl_dqn": (DQNConfig, DQN_ALGOS), "rl_pg": (PGConfig, PG_ALGOS)}
# Flags whose value may change when a run is resumed; any other flag must match the run.
RESUMABLE = ("total_steps", "checkpoint_every", "keep_checkpoints", "log_every")


def _names(cls):
    return {f.name for f in cli_args.flag_fields(cls, ("algo",))}


def _shared_help():
    """Help for the flags both families have whose defaults differ: both defaults."""
    dqn, pg = DQNConfig(), PGConfig()
    helps = {}
    for field in dataclasses.fields(DQNConfig):
        if field.name in _names(PGConfig) and getattr(dqn, field.name) != getattr(pg, field.name):
            value = getattr(pg, field.name)
            shown = ",".join(map(str, value)) if isinstance(value, list) else value
            helps[field.name] = f"{field.metadata.get('help', '')}; reinforce/a2c default {shown}, dqn"
    return helps


def _add_run_argument(parser, verb):
    parser.add_argument("--run", required=True, help=f"run directory written by `rl train` (any algorithm) to {verb}")
    parser.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


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

    train = verbs.add_parser("train", help="train DQN, Double DQN, REINFORCE or A2C into --out (or --resume it)",
                             description="Deep Q-learning (replay, target network, epsilon schedule, Huber loss) "
                                         "or policy gradients (REINFORCE with reward-to-go and a value baseline; "
                                         "A2C with n-step returns and an entropy bonus) on a gymnasium environment, "
                                         "compiled updates, checkpoints with exact resume, TensorBoard logs, "
                                         "metrics.json and returns.png in --out.")
    train.add_argument("--algo", choices=DQN_ALGOS + PG_ALGOS,
                       help="algorithm (default: dqn; with --resume: the run's)")
    helps = _shared_help()
    cli_args.add_config_flags(train, DQNConfig, skip=("algo",), help_overrides=helps)
    cli_args.add_config_flags(train, PGConfig, skip=("algo",) + tuple(_names(DQNConfig)))
    g = train.add_argument_group("run directory")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")

    evaluate = verbs.add_parser("evaluate", help="mean and std of a run's greedy return, into its metrics.json",
                                description="Run the greedy policy of a run (argmax of its Q-values or logits) for "
                                            "--episodes episodes (one per environment, batched) and write "
                                            "eval_return_mean / eval_return_std to the run's metrics.json.")
    _add_run_argument(evaluate, "evaluate")
    evaluate.add_argument("--episodes", type=cli_args.positive_int, default=100, help="evaluation episodes")
    evaluate.add_argument("--seed", type=cli_args.non_negative_int,
                          help="seed of the first episode's environment (default: the run's seed + 10000)")

    export = verbs.add_parser("export", help="export a run's greedy policy as a SavedModel and a .tflite (verified)",
                              description="SavedModel and TFLite with the signature observations -> actions plus "
                                          "q_values (DQN) or logits (REINFORCE/A2C), each checked to pick the same "
                                          "actions as the Keras network on a batch of observations; export.json "
                                          "reports it.")
    _add_run_argument(export, "export")
    export.add_argument("--out", help="output directory (default: saved_models/<run name>/)")
    export.add_argument("--examples", type=cli_args.positive_int, default=256,
                        help="observations (met by a random policy) the exports are checked on")


def _family(algo):
    return "rl_dqn" if algo in DQN_ALGOS else "rl_pg"


def train_config(args):
    """``(module, config)``: the given flags as a validated config of the algorithm's family (with --resume: the
    run's, with the resumable ones updated)."""
    from cs231n_tf.engine import rundir
    from cs231n_tf.rl import dqn, pg

    task = rundir.require_task(args.out, tuple(FAMILIES)) if args.resume else _family(args.algo or "dqn")
    cls, algos = FAMILIES[task]
    others = sorted(n for n in _names(FAMILIES[next(t for t in FAMILIES if t != task)][0]) - _names(cls)
                    if getattr(args, n, None) is not None)
    if others:
        raise UsageError(f"rl train: --{others[0].replace('_', '-')} does not apply to {'/'.join(algos)}")
    module = dqn if task == "rl_dqn" else pg
    given = cli_args.config_values(cls, args)
    if args.resume:
        return module, cli_args.resumed_config(module.load_run_config(args.out), given, RESUMABLE, "rl train")
    return module, cls(**given).validate()


def _run_module(run_dir):
    from cs231n_tf.engine import rundir
    from cs231n_tf.rl import dqn, pg

    return dqn if rundir.require_task(run_dir, tuple(FAMILIES)) == "rl_dqn" else pg


def run(args):
    if args.verb == "plan":
        from cs231n_tf.rl.envs import plan

        record = plan(args.env, args.algo, gamma=args.gamma, map_size=args.map_size, out=args.out, tol=args.tol)
        print(f"{record['env']} {record['algo']}: {record['iterations']} iterations in {record['seconds']:.3f}s, "
              f"V(start)={record['start_value']:.6f}; wrote {args.out}")
        return 0
    if args.verb == "evaluate":
        result = _run_module(args.run).evaluate_run(args.run, episodes=args.episodes, seed=args.seed,
                                                    checkpoint=args.checkpoint)
        print(f"eval_return_mean={result['eval_return_mean']:.2f} eval_return_std={result['eval_return_std']:.2f} "
              f"over {result['eval_episodes']} episodes (seed {result['eval_seed']})")
        return 0
    if args.verb == "export":
        from cs231n_tf.rl.export import export_run

        report = export_run(args.run, out=args.out, checkpoint=args.checkpoint, examples=args.examples)
        print(f"wrote {report['saved_model']['path']} and {report['tflite']['path']}: same action as Keras on "
              f"{report['action_agreement']['tflite']:.0%} of {report['examples']} observations")
        return 0
    module, config = train_config(args)
    result = module.train(config, args.out, resume=args.resume, log=lambda message: print(message, flush=True))
    print(f"run directory: {result.run_dir}")
    return 0
