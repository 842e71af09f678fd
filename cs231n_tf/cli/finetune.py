"""``cs231n-tf finetune``: transfer a trained run or a pretrained model to another data set (lecture 7).

The work is :func:`cs231n_tf.train.transfer.finetune`.
"""

import argparse


def _blocks(text):
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 or 'all', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 or 'all', got {text!r}")
    return value


from cs231n_tf.cli.args import add_source_arguments as _add_source_arguments
from cs231n_tf.cli.args import image_size as _image_size
from cs231n_tf.cli.args import non_negative_float as _non_negative_float
from cs231n_tf.cli.args import non_negative_int as _non_negative_int
from cs231n_tf.cli.args import positive_float as _positive_float
from cs231n_tf.cli.args import positive_int as _positive_int

DESCRIPTION = ("Take a trained run (--run) or a pretrained model (--model efficientnet_lite0 --weights imagenet), "
               "replace its head for --dataset's classes, train the head alone "
                    "(--head-epochs at --lr), then unfreeze the last --unfreeze-blocks blocks and fine-tune "
                    "(--finetune-epochs at --finetune-lr). The result is a run directory that `evaluate` and "
                    "`export` accept.")


def add_arguments(p):
    _add_source_arguments(p, "source run directory written by `train`")
    p.add_argument("--image-size", type=_image_size, metavar="S|H,W", help="resize folder: images to this size")
    p.add_argument("--dataset", required=True, help="target data set: digits, npz:PATH, folder:PATH, a tfds name")
    p.add_argument("--out", required=True, help="output run directory (must not hold a run)")
    p.add_argument("--head-epochs", type=_non_negative_int, default=5,
                   help="epochs training the new head only")
    p.add_argument("--unfreeze-blocks", type=_blocks, default=1,
                   help="blocks below the head to fine-tune after the head phase, or 'all'")
    p.add_argument("--finetune-epochs", type=_non_negative_int, default=5, help="fine-tuning epochs")
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate of the head phase")
    p.add_argument("--finetune-lr", type=_positive_float, default=1e-4,
                   help="learning rate of the fine-tuning phase")
    p.add_argument("--batch-size", type=_positive_int, help="batch size (default: the source run's)")
    p.add_argument("--seed", type=_non_negative_int, help="random seed (default: the source run's)")
    p.add_argument("--validation-fraction", type=_non_negative_float,
                   help="share of the target training data held out (default: the source run's)")
    p.add_argument("--train-batchnorm", action="store_true",
                   help="also train (and re-estimate) BatchNormalization layers of unfrozen blocks")
    return p


def run(args):
    from cs231n_tf.train.transfer import finetune

    result = finetune(args.run, args.dataset, args.out, model=args.model, weights=args.weights,
                      image_size=args.image_size, head_epochs=args.head_epochs,
                      unfreeze_blocks=args.unfreeze_blocks, finetune_epochs=args.finetune_epochs, lr=args.lr,
                      finetune_lr=args.finetune_lr, batch_size=args.batch_size, seed=args.seed,
                      validation_fraction=args.validation_fraction, train_batchnorm=args.train_batchnorm)
    m = result.metrics
    print(f"done: test_accuracy={m['test_accuracy']:.4f} steps={m['steps']} wall={m['wall_seconds']:.1f}s")
    print(f"run directory: {result.run_dir}")
    return 0
