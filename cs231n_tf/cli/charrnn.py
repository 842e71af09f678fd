"""``cs231n-tf charrnn``: a character-level language model (lecture 10): ``train`` on a text, ``sample`` from a run.

The train flags come from :class:`~cs231n_tf.sequence.charrnn.CharRNNConfig`'s fields; the work
is :func:`cs231n_tf.sequence.charrnn.train` and :func:`~cs231n_tf.sequence.charrnn.sample`.
"""

import sys

from cs231n_tf.cli import args as cli_args
from cs231n_tf.sequence.charrnn import CharRNNConfig

DESCRIPTION = ("Karpathy's char-RNN: train a stacked LSTM/GRU on a text with stateful truncated backpropagation "
               "through time (default text: Python's own pydoc topics), or sample text from a trained run.")
# Flags whose value may change when a run is resumed; any other flag must match the run.
RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "steps_per_execution")


def add_arguments(p):
    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=cli_args.Parser)
    verbs.required = True
    train = verbs.add_parser("train", help="train a char-RNN into --out (or continue it with --resume)",
                             description="Train a char-RNN on the engine: checkpoints, exact resume, TensorBoard "
                                         "logs and metrics.json (val_loss in nats/char, val_perplexity) in --out.")
    cli_args.add_config_flags(train, CharRNNConfig)
    g = train.add_argument_group("run directory")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    sample = verbs.add_parser("sample", help="generate text from a trained run",
                              description="Generate text from a char-RNN run: the prime, then --length characters "
                                          "drawn at --temperature.")
    sample.add_argument("--run", required=True, help="run directory written by `charrnn train`")
    sample.add_argument("--length", type=cli_args.positive_int, default=500, help="characters to generate")
    sample.add_argument("--temperature", type=cli_args.positive_float, default=1.0,
                        help="divides the logits: small is near greedy, 1 is the model's distribution")
    sample.add_argument("--prime", default="",
                        help="text fed to the model first, printed before the sample (default: none; then the first "
                             "character is drawn uniformly and counts in --length)")
    sample.add_argument("--seed", type=cli_args.non_negative_int, default=0,
                        help="sampling seed: the same seed gives the same text (default: 0)")
    sample.add_argument("--checkpoint", help="checkpoint path (default: the latest)")
    export = verbs.add_parser("export", help="export a run's sampler as a SavedModel (verified, with a report)",
                              description="Export the run's in-graph sampler: serving_default(prime ids, length, "
                                          "temperature, seed) -> ids, checked against the model after reloading.")
    export.add_argument("--run", required=True, help="run directory written by `charrnn train`")
    export.add_argument("--out", help="output directory (default: saved_models/<run name>/)")
    export.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def train_config(args):
    """The given flags as a validated CharRNNConfig (with --resume: the run's, with the resumable ones updated)."""
    from cs231n_tf.sequence.charrnn import load_run_config

    given = cli_args.config_values(CharRNNConfig, args)
    if args.resume:
        saved, _, _ = load_run_config(args.out)
        return cli_args.resumed_config(saved, given, RESUMABLE, "charrnn train")
    return CharRNNConfig(**given).validate()


def run(args):
    if args.verb == "sample":
        from cs231n_tf.sequence.charrnn import load_sampler

        sampler = load_sampler(args.run, checkpoint=args.checkpoint)
        text = sampler.sample(args.length, temperature=args.temperature, prime=args.prime, seed=args.seed)
        sys.stdout.write(text + "\n")
        return 0

    if args.verb == "export":
        from cs231n_tf.sequence.charrnn import export

        report = export(args.run, out=args.out, checkpoint=args.checkpoint)
        print(f"saved_model: {report['path']} ({report['size_bytes']} bytes)")
        return 0

    from cs231n_tf.sequence.charrnn import train

    config = train_config(args)
    result = train(config, args.out, resume=args.resume, log=lambda message: print(message, flush=True))
    m = result.metrics
    print(f"done: val_loss={m.get('val_loss', float('nan')):.4f} nats/char "
          f"val_perplexity={m.get('val_perplexity', float('nan')):.3f} steps={m['steps']} "
          f"wall={m['wall_seconds']:.1f}s")
    print(f"run directory: {result.run_dir}")
    return 0
