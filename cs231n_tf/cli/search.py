"""``cs231n-tf search``: hyperparameter search on an Optuna study (see :mod:`cs231n_tf.train.search`)."""

import argparse

from cs231n_tf.cli import args as cli_args
from cs231n_tf.cli.train import add_train_flags, train_config

DESCRIPTION = ("Hyperparameter search (Bergstra & Bengio 2012) on an Optuna study: each trial is a run directory "
               "DIR/trial-NNN trained with values drawn for every --param; results.csv and search.png land in DIR. "
               "The study is DIR/study.db unless --storage names another database; re-running the command resumes "
               "it, and several processes given the same --out/--storage share the trials. Example: cs231n-tf "
               "search --model two_layer_net --trials 8 --epochs 3 --param lr=1e-4:1e-1:log "
               "--param weight_decay=1e-6:1e-2:log --out runs/search")
SEARCH_FLAGS = ("trials", "param", "refine", "sampler", "grid_points", "objective", "storage", "study")


def add_arguments(p):
    add_train_flags(p, help_overrides={"seed": "seed of the sampler and of every trial's initialisation"})
    p._option_string_actions["--out"].help = "search directory (required): trial-NNN/, study.db, results.csv, search.png"
    p._option_string_actions["--resume"].help = "accepted for symmetry with train; a search always resumes"
    g = p.add_argument_group("search")
    g.add_argument("--param", action="append", required=True, metavar="NAME=LOW:HIGH:SCALE",
                   help="a searched train option or model option: NAME=LOW:HIGH:log, NAME=LOW:HIGH:linear or "
                        "NAME=choice:A,B,C (repeatable), e.g. --param lr=1e-5:1e-1:log --param batch_size=choice:32,64")
    g.add_argument("--trials", type=cli_args.positive_int, help="trials per round (default 8; grid: its size)")
    g.add_argument("--sampler", choices=["random", "grid", "tpe"], default="random",
                   help="random: log-uniform random search, the course's; grid: Optuna's GridSampler over "
                        "--grid-points values per range; tpe: Optuna's TPE")
    g.add_argument("--grid-points", type=cli_args.positive_int, default=3,
                   help="grid: values per numeric range, centres of equal (log) cells")
    g.add_argument("--objective", help="metric to optimise, its direction from the task "
                                       "(default val_accuracy, maximised; also val_loss, test_accuracy, ...)")
    g.add_argument("--storage", help="Optuna RDB URL of the study shared by every search process "
                                     "(default sqlite:///OUT/study.db)")
    g.add_argument("--study", default="search", help="study name in --storage")
    g.add_argument("--refine", type=cli_args.non_negative_int, default=0, metavar="K",
                   help="then a second round of --trials trials over ranges narrowed around the best K (0: off)")


def run(args):
    from cs231n_tf.errors import ConfigError
    from cs231n_tf.train import search

    if not args.out:
        raise ConfigError("--out DIR is required: the search directory that holds the trials and results.csv")
    if args.strategy in ("multi_worker", "tpu"):
        raise ConfigError(f"--strategy {args.strategy} is not supported by search, which trains its trials one "
                          "after another on this machine; use default, one_device or mirrored")
    specs = [search.parse_param(text) for text in args.param]
    given = {k for k, v in vars(args).items() if v is not None and k not in SEARCH_FLAGS}
    options = dict(args.model_options or [])
    for spec in specs:
        if spec.name in given or spec.name in options:
            flag = f"--{spec.name.replace('_', '-')}" if spec.name in given else f"--model-option {spec.name}"
            raise ConfigError(f"--param {spec.name}: also fixed by {flag}; give it once")
    train_args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in SEARCH_FLAGS})
    train_args.resume, train_args.out = False, None
    base = train_config(train_args)
    result = search.run_search(base, specs, trials=args.trials, out=args.out, seed=args.seed or 0,
                               refine_top=args.refine, log=print, sampler=args.sampler, grid_points=args.grid_points,
                               objective=args.objective, storage=args.storage, study_name=args.study)
    print(search.format_table(result.rows, result.rounds[0]))
    print(f"trained {len(result.trained)} trial(s), {len(result.rows) - len(result.trained)} already done")
    best = result.best
    print("best: " + best["trial"] + " " + " ".join(f"{k}={v}" for k, v in best["values"].items())
          + f" {result.objective}={best['objective']:.4f}")
    print(f"results: {result.csv_path}")
    print(f"plot: {result.plot_path}")
    return 0
