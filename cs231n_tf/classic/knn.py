"""k-nearest-neighbour classifier (lecture 2, assignment 1).

Training memorises the data; prediction computes the distance from every test point to every
training point and takes a majority vote among the ``k`` closest. The distance matrix comes in the
assignment's three versions - two loops, one loop, no loop - so their speed can be compared
(``experiments/bench_knn.py``); all three are compiled with ``tf.function``, so the loop versions
pay for graph-level iterations, not Python ones.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.classic._inputs import as_features, as_labels, choice
from cs231n_tf.errors import ConfigError, ShapeError

METRICS = ("l2", "l1")
NUM_LOOPS = (0, 1, 2)

# Upper bound on the (block, num_train, D) difference tensor of the vectorised L1 distance.
# 2**20 elements (4 MB in float32) stays in cache; blocks of 2**24 measured 3-5x slower on a
# 2-core CPU, the run turning memory-bound (experiments/bench_knn.py --metric l1).
_L1_BLOCK_ELEMENTS = 2**20


def _pair_distance(a, b, l1):
    diff = a - b
    if l1:
        return tf.reduce_sum(tf.abs(diff), axis=-1)
    return tf.sqrt(tf.reduce_sum(diff * diff, axis=-1))


@tf.function(reduce_retracing=True)
def _distances_two_loops(x, x_train, l1):
    num_test, num_train = tf.shape(x)[0], tf.shape(x_train)[0]
    rows = tf.TensorArray(x.dtype, size=num_test, element_shape=[None])
    for i in tf.range(num_test):
        row = tf.TensorArray(x.dtype, size=num_train, element_shape=[])
        for j in tf.range(num_train):
            row = row.write(j, _pair_distance(x[i], x_train[j], l1))
        rows = rows.write(i, row.stack())
    return tf.reshape(rows.stack(), [num_test, num_train])


@tf.function(reduce_retracing=True)
def _distances_one_loop(x, x_train, l1):
    num_test, num_train = tf.shape(x)[0], tf.shape(x_train)[0]
    rows = tf.TensorArray(x.dtype, size=num_test, element_shape=[None])
    for i in tf.range(num_test):
        # One test point against every training point at once, by broadcasting.
        rows = rows.write(i, _pair_distance(x[i][None, :], x_train, l1))
    return tf.reshape(rows.stack(), [num_test, num_train])


@tf.function(reduce_retracing=True, autograph=False)
def _l2_no_loop(x, x_train_t, train_sq_norms):
    # ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2: one matrix product does all the work, the rest is
    # O(num_test * num_train) elementwise. A transposed copy of the training matrix, (D, num_train),
    # is kept because on CPU x @ x_train_t measured about 1.2x faster than tf.matmul(x, x_train,
    # transpose_b=True) (experiments/bench_knn.py). Rounding can push the sum for nearly equal
    # points slightly below zero, hence the clip before the sqrt.
    sq = (tf.matmul(-2.0 * x, x_train_t)
          + tf.reduce_sum(x * x, axis=1, keepdims=True)
          + train_sq_norms[None, :])
    return tf.sqrt(tf.maximum(sq, 0.0))


@tf.function(reduce_retracing=True)
def _l1_no_loop(x, x_train, block_rows):
    # L1 has no matrix-product expansion, so |a - b| is broadcast over (test, train, D). The test
    # rows go through in blocks so that the intermediate stays below _L1_BLOCK_ELEMENTS; when
    # num_train * D alone exceeds it a block is one row, the same work as the one-loop version.
    num_test, num_train = tf.shape(x)[0], tf.shape(x_train)[0]
    num_blocks = (num_test + block_rows - 1) // block_rows
    blocks = tf.TensorArray(x.dtype, size=num_blocks, element_shape=[None, None], infer_shape=False)
    for bi in tf.range(num_blocks):
        xb = x[bi * block_rows:(bi + 1) * block_rows]
        blocks = blocks.write(bi, tf.reduce_sum(tf.abs(xb[:, None, :] - x_train[None, :, :]), axis=-1))
    return tf.reshape(blocks.concat(), [num_test, num_train])


class KNearestNeighbor:
    """k-NN classifier with L2 or L1 distance.

    Example::

        knn = KNearestNeighbor()
        knn.train(x_train, y_train)            # x: (N, ...) flattened to (N, D); y: (N,) ints
        y_pred = knn.predict(x_test, k=5)      # (num_test,) int32 NumPy array
    """

    def __init__(self):
        self.x_train = None
        self.y_train = None
        self.num_classes = None
        self._train_sq_norms = None
        self._x_train_t = None

    def train(self, x, y):
        """Memorise ``x`` of shape ``(N, ...)`` (stored flattened as ``(N, D)``) and labels ``y (N,)``.

        float64 data stays float64; everything else is stored as float32.
        """
        x = as_features(x, "x")
        if x.shape[0] == 0:
            raise ShapeError("x must hold at least one training example, got 0")
        y = as_labels(y, x.shape[0], "y")
        self.x_train = x
        self.y_train = y
        self.num_classes = int(tf.reduce_max(y)) + 1
        self._train_sq_norms = tf.reduce_sum(x * x, axis=1)
        self._x_train_t = tf.transpose(x)
        return self

    def _check_trained(self, what):
        if self.x_train is None:
            raise ConfigError(f"KNearestNeighbor.{what} called before train(); call train(x, y) first")

    def compute_distances(self, x, num_loops=0, metric="l2"):
        """Distances ``(num_test, num_train)`` from each row of ``x`` to each training example.

        ``num_loops`` picks the implementation (2: one pair at a time, 1: one test point at a time,
        0: fully vectorised); all three return the same matrix. ``metric`` is ``'l2'`` (Euclidean)
        or ``'l1'`` (Manhattan). The vectorised L2 uses the expansion ||a||^2 - 2ab + ||b||^2,
        which in float32 is accurate to about 1e-7 * ||a||^2 (absolute, before the sqrt).
        """
        self._check_trained("compute_distances")
        if isinstance(num_loops, bool) or num_loops not in NUM_LOOPS:
            raise ConfigError(f"num_loops must be one of 0, 1, 2; got {num_loops!r}")
        choice("metric", metric, METRICS)
        x = as_features(x, "x", dtype=self.x_train.dtype)
        if x.shape[0] == 0:
            raise ShapeError("x must hold at least one example to classify, got 0")
        if x.shape[1] != self.x_train.shape[1]:
            raise ShapeError(
                f"x has {x.shape[1]} features per example but the training data has "
                f"{self.x_train.shape[1]}"
            )
        l1 = metric == "l1"
        if num_loops == 2:
            return _distances_two_loops(x, self.x_train, l1)
        if num_loops == 1:
            return _distances_one_loop(x, self.x_train, l1)
        if not l1:
            return _l2_no_loop(x, self._x_train_t, self._train_sq_norms)
        num_train, dim = self.x_train.shape
        block_rows = max(1, _L1_BLOCK_ELEMENTS // max(1, num_train * dim))
        return _l1_no_loop(x, self.x_train, tf.constant(block_rows, tf.int32))

    def predict_labels(self, dists, k=1):
        """Majority vote among the ``k`` nearest training points for each row of ``dists``.

        ``dists`` has shape ``(num_test, num_train)``. Equal distances are resolved towards the
        lower training index; a tied vote goes to the smaller label. Returns ``(num_test,)`` int32.
        """
        self._check_trained("predict_labels")
        k = validation.positive_int("k", k)
        num_train = self.x_train.shape[0]
        if k > num_train:
            raise ConfigError(f"k must be at most the number of training examples ({num_train}), got {k}")
        dists = tf.convert_to_tensor(dists)
        if dists.shape.rank != 2 or dists.shape[1] != num_train:
            raise ShapeError(f"dists must have shape (num_test, {num_train}), got {tuple(dists.shape)}")
        return _vote(dists, self.y_train, tf.constant(k), tf.constant(self.num_classes)).numpy()

    def predict(self, x, k=1, num_loops=0, metric="l2"):
        """Predicted labels ``(num_test,)`` (int32 NumPy array) for ``x`` of shape ``(num_test, ...)``."""
        self._check_trained("predict")
        k = validation.positive_int("k", k)
        if k > self.x_train.shape[0]:
            raise ConfigError(
                f"k must be at most the number of training examples ({self.x_train.shape[0]}), got {k}"
            )
        return self.predict_labels(self.compute_distances(x, num_loops, metric), k)

    def cross_validate(self, x, y, ks, num_folds=5, metric="l2"):
        """``num_folds``-fold cross-validation of each ``k`` in ``ks``: ``{k: [accuracy per fold]}``.

        The folds are contiguous slices of ``x`` (as ``np.array_split`` cuts them), so shuffle the
        data first if it is ordered. Each fold's distance matrix is computed once and reused for
        every ``k``. The classifier's own training data (from :meth:`train`) is left untouched.
        """
        x = as_features(x, "x")
        y = as_labels(y, x.shape[0], "y")
        num_folds = validation.int_in("num_folds", num_folds, 2)
        n = x.shape[0]
        if num_folds > n:
            raise ConfigError(f"num_folds must be at most the number of examples ({n}), got {num_folds}")
        try:
            ks = [validation.positive_int("k", k) for k in ks]
        except TypeError:
            raise ConfigError(f"ks must be a sequence of positive ints, got {ks!r}") from None
        if not ks:
            raise ConfigError("ks must name at least one k, got an empty sequence")
        choice("metric", metric, METRICS)
        folds = np.array_split(np.arange(n), num_folds)
        smallest_train = n - max(len(f) for f in folds)
        if max(ks) > smallest_train:
            raise ConfigError(
                f"every k must be at most the smallest training split ({smallest_train} examples "
                f"with {num_folds} folds of {n}), got k={max(ks)}"
            )
        results = {k: [] for k in ks}
        for held_out in folds:
            keep = np.setdiff1d(np.arange(n), held_out)
            fold_knn = KNearestNeighbor().train(tf.gather(x, keep), tf.gather(y, keep))
            dists = fold_knn.compute_distances(tf.gather(x, held_out), 0, metric)
            y_held = tf.gather(y, held_out).numpy()
            for k in ks:
                results[k].append(float(np.mean(fold_knn.predict_labels(dists, k) == y_held)))
        return results


@tf.function(reduce_retracing=True, autograph=False)
def _vote(dists, y_train, k, num_classes):
    # top_k of the negated distances = the k smallest; top_k puts the lower index first on ties.
    _, nearest = tf.math.top_k(-dists, k=k)
    counts = tf.reduce_sum(tf.one_hot(tf.gather(y_train, nearest), num_classes, dtype=tf.int32), axis=1)
    most = tf.reduce_max(counts, axis=1, keepdims=True)
    # argmax does not promise which of several maxima it returns, so take the smallest label
    # among the most voted explicitly.
    labels = tf.range(num_classes, dtype=tf.int32)[None, :]
    return tf.reduce_min(tf.where(counts == most, labels, num_classes), axis=1)
