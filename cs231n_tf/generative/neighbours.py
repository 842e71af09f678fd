"""Nearest training neighbours of generated images: the check that a generator does not copy its data.

A model that memorised its training set would produce samples whose nearest training image (in
pixel space, Euclidean) is the sample itself; a grid with each sample beside its ``k`` nearest
training images shows at a glance whether samples are new (lecture 13; the nearest-neighbour
column of Goodfellow et al. 2014, figure 2).
"""

import numpy as np

from cs231n_tf.errors import ShapeError
from cs231n_tf.generative.task import write_grid


def nearest_neighbours(samples, train, k=1, chunk=256):
    """``(indices [n, k], distances [n, k])`` of each sample's ``k`` nearest ``train`` images (Euclidean on pixels)."""
    a = np.asarray(samples, np.float64).reshape(len(samples), -1)
    b = np.asarray(train, np.float64).reshape(len(train), -1)
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"samples {np.shape(samples)[1:]} and training images {np.shape(train)[1:]} differ in shape")
    k = min(int(k), len(b))
    b_sq = np.sum(b ** 2, axis=1)
    indices, distances = [], []
    for start in range(0, len(a), chunk):
        part = a[start:start + chunk]
        d2 = np.maximum(np.sum(part ** 2, axis=1)[:, None] - 2 * part @ b.T + b_sq[None], 0.0)
        idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
        indices.append(idx)
        distances.append(np.sqrt(np.take_along_axis(d2, idx, axis=1)))
    return np.concatenate(indices), np.concatenate(distances)


def neighbour_grid(samples, train, k=3):
    """``[n * (k + 1), H, W, C]``: each sample followed by its ``k`` nearest training images (row-major rows)."""
    idx, _ = nearest_neighbours(samples, train, k)
    train = np.asarray(train, np.float32)
    rows = [np.concatenate([np.asarray(s, np.float32)[None], train[i]]) for s, i in zip(samples, idx)]
    return np.concatenate(rows)


def write_neighbour_grid(samples, train, path, k=3, pad=1):
    """A PNG (images in [-1, 1]): one row per sample, the sample first, then its ``k`` nearest training images,
    ``pad`` grey pixels between tiles."""
    return write_grid(neighbour_grid(samples, train, k), path, columns=min(int(k), len(train)) + 1, pad=pad)
