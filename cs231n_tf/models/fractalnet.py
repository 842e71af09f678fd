"""FractalNet (Larsson, Maire & Shakhnarovich, ICLR 2017): deep networks without residuals."""

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError
from cs231n_tf.models.layers import BN_EPSILON, BN_MOMENTUM, DropPathSelector, FractalJoin, check_probability
from cs231n_tf.models.registry import check_input_shape, register

layers = tf.keras.layers


def _conv(x, filters, dropout, name):
    """conv3x3 - dropout - BN - ReLU, in the order of the authors' Caffe definition."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name=f"{name}_conv")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def fractal_block(x, filters, columns, path, *, dropout=0.0, drop_rate=0.15, seed=None, name):
    """One fractal block with ``columns`` columns: ``f_1 = conv``, ``f_{C+1} = join(f_C o f_C, conv)``.

    Unrolled, column ``c`` (0 = shallowest) is a chain of ``2 ** c`` convolutions and the block
    is ``2 ** (columns - 1)`` convolutions deep. After row ``r`` of convolutions, every column
    that just finished a convolution and is due to meet another one joins them: the nested
    joins of the recursion collapse into one :class:`FractalJoin` per row (as in the paper's
    figure 1), whose mean feeds all the columns it joined. ``path`` carries the
    :class:`DropPathSelector` flags. Seeds, when given, are ``seed + row``.
    Shapes: ``(N, H, W, C) -> (N, H, W, filters)``.
    """
    depth = 2 ** (columns - 1)
    heads = [x] * columns
    for row in range(1, depth + 1):
        active = [c for c in range(columns) if row % 2 ** (columns - 1 - c) == 0]
        for c in active:
            heads[c] = _conv(heads[c], filters, dropout, f"{name}_col{c + 1}_row{row}")
        if len(active) > 1:
            joined = FractalJoin(active, drop_rate=drop_rate, seed=None if seed is None else seed + row,
                                 name=f"{name}_join{row}")([heads[c] for c in active] + [path])
            for c in active:
                heads[c] = joined
    return heads[0]


@register("fractalnet", family="FractalNet", canonical_input_shape=(32, 32, 3), canonical_num_classes=10,
          reference_params=33_724_618,
          reference="Larsson et al. 2017, CIFAR 20-layer network (B=5, C=3, 64-128-256-512-512); count "
          "computed, the paper's Table 1 says 38.6M")
def fractalnet(input_shape, num_classes, *, columns=3, filters=(64, 128, 256, 512, 512),
               dropout=(0.0, 0.1, 0.2, 0.3, 0.4), local_drop_rate=0.15, global_fraction=0.5, seed=None):
    """FractalNet (Larsson, Maire & Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without
    Residuals", ICLR 2017).

    ``len(filters)`` fractal blocks of ``columns`` columns (CIFAR: B=5, C=3, i.e. 20 layers on
    the deepest path), each followed by 2x2 max pooling, then a dense layer on the pooled
    features. Every path through the network is a plain conv-BN-ReLU chain: there are no
    identity shortcuts, and joins average their inputs.

    Regularisation as in the paper: dropout per block (``dropout``, one rate per block, after
    each convolution as in the authors' Caffe code) and drop-path — each mini-batch uses global
    drop-path (one column for the whole network) with probability ``global_fraction`` and local
    drop-path (each join input dropped with probability ``local_drop_rate``, one always kept)
    otherwise. At test time (``training=False``) the full network runs with plain means.

    Inputs must be at least ``2 ** len(filters)`` pixels (32 for five blocks). The count,
    33,724,618 for CIFAR-10, is the paper's architecture with bias-free convolutions and
    trainable batchnorm; the paper's Table 1 reports 38.6M for it, which we could not reconcile
    with its published layer sizes (the authors' Caffe code gives 33.7M as well).
    """
    columns = validation.positive_int("columns", columns)
    filters = tuple(filters)
    if not filters:
        raise ConfigError(f"filters must be a non-empty sequence of positive ints, got {filters!r}")
    filters = tuple(validation.positive_int("filters entries", f) for f in filters)
    dropout = (0.0,) * len(filters) if dropout is None else tuple(dropout)
    if len(dropout) != len(filters):
        raise ConfigError(f"dropout needs one rate per block ({len(filters)}), got {dropout!r}")
    dropout = tuple(check_probability("dropout", d, high_open=True) for d in dropout)
    local_drop_rate = check_probability("local_drop_rate", local_drop_rate, high_open=True)
    global_fraction = check_probability("global_fraction", global_fraction)
    input_shape = check_input_shape(input_shape, min_size=2 ** len(filters))
    inputs = layers.Input(input_shape, name="images")
    path = DropPathSelector(columns, global_fraction, seed=seed, name="drop_path")(inputs)
    x = inputs
    for b, (f, rate) in enumerate(zip(filters, dropout), start=1):
        block_seed = None if seed is None else seed + 100 * b
        x = fractal_block(x, f, columns, path, dropout=rate, drop_rate=local_drop_rate, seed=block_seed,
                          name=f"block{b}")
        x = layers.MaxPool2D(2, name=f"block{b}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name=f"fractalnet_{len(filters)}x{columns}")
