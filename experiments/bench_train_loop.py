"""Training throughput: the engine's classification task vs ``model.fit`` vs a plain eager loop, with and without XLA.

All contenders train the same registry model on the same ``tf.data`` pipeline with the same
optimizer and loss. Each is warmed up (tracing and XLA compilation excluded), then timed in
interleaved rounds so that background load hits every contender alike. Interference on a shared
machine only ever slows a round down, so the best round of each contender is its figure (as
``timeit`` does); the median is printed beside it. Ratios are against ``model.fit`` and the eager
loop.

    python experiments/bench_train_loop.py                       # small_convnet on digits
    python experiments/bench_train_loop.py --model three_layer_convnet --batch-size 128

The "eager + XLA" row is the usual way to bring XLA to a Python loop: the step is one
``tf.function(jit_compile=True)`` called once per batch from Python, so it pays Python overhead
every step but not eager op dispatch.
"""

import argparse
import statistics
import tempfile
import time

import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from cs231n_tf import data as data_lib
from cs231n_tf.models import build
from cs231n_tf.train.config import TrainConfig
from cs231n_tf.train.trainer import Trainer


def _batches(data, batch_size, seed):
    return data.train_epoch(0, seed, batch_size).repeat()


def package_loop(data, args, xla, steps_per_execution):
    config = TrainConfig(model=args.model, dataset=args.dataset, batch_size=args.batch_size, lr=args.lr,
                         optimizer="adam", xla=xla, steps_per_execution=steps_per_execution, seed=args.seed)
    trainer = Trainer(config, tempfile.mkdtemp(prefix="bench-"), data=data, log=lambda *_: None)
    engine = trainer.engine
    iterator = iter(engine.strategy.experimental_distribute_dataset(_batches(data, args.batch_size, args.seed)))

    def run(steps):
        done = 0
        while done < steps:
            n = min(steps_per_execution, steps - done)
            logs = engine._train_steps(iterator, tf.constant(n, tf.int64))  # the engine's compiled call
            done += n
        float(logs["loss"])  # waits for the last step

    return run


def _model_and_optimizer(data, args):
    tf.keras.utils.set_random_seed(args.seed)
    model = build(args.model, data.info.image_shape, data.info.num_classes)
    return model, tf.keras.optimizers.Adam(args.lr)


def keras_fit(data, args, xla, steps_per_execution):
    model, optimizer = _model_and_optimizer(data, args)
    model.compile(optimizer, tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=xla, steps_per_execution=steps_per_execution)
    batches = _batches(data, args.batch_size, args.seed)

    def run(steps):
        model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)

    return run


def eager_loop(data, args, xla):
    model, optimizer = _model_and_optimizer(data, args)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    if xla:
        step = tf.function(step, jit_compile=True)
    iterator = iter(_batches(data, args.batch_size, args.seed))

    def run(steps):
        for _ in range(steps):
            loss = step(*next(iterator))
        loss.numpy()

    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="small_convnet")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=200, help="timed steps per round (compiled loops)")
    p.add_argument("--eager-steps", type=int, default=40, help="timed steps per round (eager loops)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps-per-execution", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    data = data_lib.load(args.dataset, batch_size=args.batch_size)
    spe = args.steps_per_execution
    contenders = {}
    for xla in (False, True):
        tag = "XLA" if xla else "no XLA"
        contenders[f"package loop, steps_per_execution=1 ({tag})"] = (package_loop(data, args, xla, 1), args.steps)
        contenders[f"package loop, steps_per_execution={spe} ({tag})"] = (package_loop(data, args, xla, spe), args.steps)
        contenders[f"model.fit, steps_per_execution=1 ({tag})"] = (keras_fit(data, args, xla, 1), args.steps)
        contenders[f"model.fit, steps_per_execution={spe} ({tag})"] = (keras_fit(data, args, xla, spe), args.steps)
        contenders[f"eager loop ({tag})" if not xla else "eager loop + jit-compiled step (XLA)"] = (
            eager_loop(data, args, xla), args.eager_steps)

    for run, steps in contenders.values():  # warm-up: tracing, XLA compilation, first-iteration costs
        run(max(steps // 4, spe))
    rates = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, (run, steps) in contenders.items():
            t0 = time.perf_counter()
            run(steps)
            rates[name].append(steps * args.batch_size / (time.perf_counter() - t0))
    best = {name: max(r) for name, r in rates.items()}

    print(f"\n{args.model} on {args.dataset}, batch {args.batch_size}, Adam; best of {args.rounds} "
          f"interleaved rounds ({args.steps} steps compiled, {args.eager_steps} eager)\n")
    print("| loop | examples/s (best) | median | vs model.fit (same XLA, same steps/exec) | vs eager loop |")
    print("|---|---:|---:|---:|---:|")
    eager = best["eager loop (no XLA)"]
    for name, rate in best.items():
        vs_fit = ""
        if name.startswith("package loop"):
            vs_fit = f"{rate / best[name.replace('package loop', 'model.fit')]:.2f}x"
        print(f"| {name} | {rate:,.0f} | {statistics.median(rates[name]):,.0f} | {vs_fit} | {rate / eager:.1f}x |")


if __name__ == "__main__":
    main()
