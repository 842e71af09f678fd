"""He et al. 2015 ("Deep Residual Learning for Image Recognition", section 4.2) CIFAR-10 recipe.

    python experiments/cifar_resnet.py [--model resnet20|resnet56] [--data-dir DIR] [--max-steps N]

The paper's schedule through the package's own trainer (``cs231n_tf.train.Trainer``): SGD with
momentum 0.9, batch 128, weight decay 1e-4, learning rate 0.1 divided by 10 at 32k and 48k
iterations, stopping at 64k; training augmentation = horizontal flips and random 32x32 crops of the
image zero-padded by 4 pixels; a 45k/5k train/validation split; test error on the 10k test images.
Published test errors (Table 6): ResNet-20 8.75%, ResNet-56 6.97%.

Two differences from the paper, both the package's conventions: weight decay is the L2 penalty on
kernels only (the paper's Torch/Caffe setups also decay batchnorm parameters), and Keras's momentum
update ``v = 0.9 v - lr g`` (Torch: ``v = 0.9 v + g; w -= lr v``), which differs only right after each
learning-rate drop. The paper's 110-layer warm-up (lr 0.01 for the first 400 iterations) is
``--warmup-steps 400`` as a linear ramp.

Needs the tfds ``cifar10`` data (``cs231n-tf datasets --download cifar10``); without it the script
stops with the loader's message naming the remedy. The full recipe takes 64k steps (many hours on a
CPU): ``--max-steps`` stops early and the run can be resumed with ``--resume``. Prints a markdown
table.
"""

import argparse
import math
import os
import platform
import sys

PAPER_ERROR = {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97, "resnet110": 6.43}


def recipe_config(model="resnet20", num_train=45_000, iterations=64_000, boundaries=(32_000, 48_000),
                  batch_size=128, lr=0.1, weight_decay=1e-4, warmup_steps=0, seed=0, **overrides):
    """The paper's recipe as a :class:`~cs231n_tf.train.config.TrainConfig`.

    ``epochs`` covers ``iterations`` steps at ``num_train // batch_size`` steps per epoch and
    ``max_steps`` stops exactly at ``iterations``; the learning-rate boundaries are in steps.
    ``warmup_steps`` is converted to the config's ``warmup_epochs``.
    """
    from cs231n_tf.train.config import TrainConfig

    steps_per_epoch = max(num_train // batch_size, 1)
    config = TrainConfig(model=model, dataset="cifar10", validation_fraction=0.1, batch_size=batch_size,
                         optimizer="momentum", lr=lr, weight_decay=weight_decay, penalty="l2",
                         lr_schedule="step", lr_boundaries=list(boundaries), lr_decay_factor=0.1,
                         warmup_epochs=warmup_steps / steps_per_epoch,
                         epochs=math.ceil(iterations / steps_per_epoch), max_steps=iterations,
                         augment=["flip", "crop:4"], seed=seed, checkpoint_every=2000, log_every=100)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config.validate()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet20", help="resnet20 (default), resnet32, resnet44, resnet56, resnet110")
    p.add_argument("--dataset", default="cifar10", help="cifar10 (default) or npz:PATH with 32x32x3 images")
    p.add_argument("--data-dir", help="tfds data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--iterations", type=int, default=64_000, help="length of the schedule (paper: 64000)")
    p.add_argument("--boundaries", default="32000,48000", help="steps where the lr is divided by 10")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up (the paper's resnet110 used 400)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps (resumable), e.g. for a smoke run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--xla", action="store_true", help="compile the train step with XLA")
    p.add_argument("--out", default=None, help="run directory (default runs/cifar_<model>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    args = p.parse_args(argv)

    import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
    from cs231n_tf import data
    from cs231n_tf.errors import Cs231nError
    from cs231n_tf.train.trainer import Trainer

    try:
        boundaries = [int(b) for b in args.boundaries.split(",")]
        splits = data.load(args.dataset, batch_size=args.batch_size, validation_fraction=0.1, data_dir=args.data_dir)
        if splits.info.image_shape != (32, 32, 3):
            print(f"note: the recipe is for 32x32x3 images; {args.dataset} has {splits.info.image_shape}")
        config = recipe_config(args.model, splits.info.num_train, args.iterations, boundaries, args.batch_size,
                               warmup_steps=args.warmup_steps, seed=args.seed, dataset=args.dataset,
                               data_dir=args.data_dir, xla=args.xla)
        if args.max_steps is not None:
            config.max_steps = min(args.max_steps, args.iterations)
        run_dir = args.out or os.path.join("runs", f"cifar_{args.model}")
        trainer = Trainer(config, run_dir, resume=args.resume, data=splits)
        result = trainer.run()
    except Cs231nError as exc:
        print(f"cifar_resnet: {exc}", file=sys.stderr)
        return 2
    m = result.metrics
    paper = PAPER_ERROR.get(args.model)
    print(f"\nMachine: {platform.machine()} CPU, Python {platform.python_version()}, TF "
          f"{__import__('tensorflow').__version__}; data {args.dataset} ({splits.info.num_train} train)\n")
    print("| model | steps | lr at end | test error % | paper error % | val accuracy | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.model} | {m['steps']} | {trainer.learning_rate():.4g} | {100 * (1 - m['test_accuracy']):.2f} | "
          f"{paper if paper else 'n/a'} | {m['val_accuracy']:.4f} | {m['wall_seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
