"""Occlusion sensitivity (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", 2014).

Slide a grey square over the image and record how much the class score drops: the map is
``s_y(x) - s_y(x with the patch at (i, j) filled)``, large where the object is. The patches of one
image are scored in batches; the map is ``(N, H, W)``, each pixel the mean drop over the patches
covering it.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.visualize.saliency import check_batch, class_scores_fn


def occlusion(model, x, y, patch=8, stride=4, fill=0.0, batch_size=64):
    """Occlusion maps ``(N, H, W)``: drop of the class score when a ``patch`` square (value ``fill``,
    in the model's input space) covers each pixel; positions every ``stride`` pixels."""
    patch = validation.positive_int("patch", patch)
    stride = validation.positive_int("stride", stride)
    batch_size = validation.positive_int("batch_size", batch_size)
    logits_fn = class_scores_fn(model, x=x)
    x, y = check_batch(x, y, logits_fn)
    n, h, w, _ = x.shape
    tops = list(range(0, max(1, h - patch) + 1, stride))
    lefts = list(range(0, max(1, w - patch) + 1, stride))
    positions = [(t, l) for t in tops for l in lefts]
    base = tf.gather(logits_fn(x), y, axis=1, batch_dims=1).numpy()
    maps = np.zeros((n, h, w), np.float64)
    counts = np.zeros((h, w), np.float64)
    for t, l in positions:
        counts[t:t + patch, l:l + patch] += 1
    xs = x.numpy()
    for i in range(n):
        drops = []
        for start in range(0, len(positions), batch_size):
            chunk = positions[start:start + batch_size]
            batch = np.repeat(xs[i:i + 1], len(chunk), axis=0)
            for k, (t, l) in enumerate(chunk):
                batch[k, t:t + patch, l:l + patch] = fill
            drops.append(base[i] - logits_fn(tf.constant(batch)).numpy()[:, int(y[i])])
        for (t, l), d in zip(positions, np.concatenate(drops)):
            maps[i, t:t + patch, l:l + patch] += d
    return (maps / np.maximum(counts, 1)).astype(np.float32)
