"""k-nearest neighbour: the three distance versions, voting, cross-validation and errors."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.distance import cdist
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier

from cs231n_tf.classic import KNearestNeighbor
from cs231n_tf.errors import ConfigError, DataError, InputTypeError, ShapeError


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(40, 3, 2, 2))  # flattened to D = 12
    y_train = rng.integers(0, 4, size=40)
    x_test = rng.normal(size=(9, 3, 2, 2))
    return x_train, y_train, x_test


@pytest.mark.parametrize("metric, scipy_name", [("l2", "euclidean"), ("l1", "cityblock")])
@pytest.mark.parametrize("num_loops", [0, 1, 2])
def test_distances_match_scipy_and_sklearn(data, metric, scipy_name, num_loops):
    x_train, y_train, x_test = data
    knn = KNearestNeighbor().train(x_train, y_train)
    dists = knn.compute_distances(x_test, num_loops=num_loops, metric=metric)
    assert dists.shape == (9, 40) and dists.dtype == tf.float64
    flat_test, flat_train = x_test.reshape(9, -1), x_train.reshape(40, -1)
    np.testing.assert_allclose(dists.numpy(), cdist(flat_test, flat_train, scipy_name), rtol=1e-10, atol=1e-12)
    sk_metric = "euclidean" if metric == "l2" else "manhattan"
    np.testing.assert_allclose(dists.numpy(), pairwise_distances(flat_test, flat_train, metric=sk_metric),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_three_versions_agree_in_float32(data, metric):
    x_train, y_train, x_test = data
    knn = KNearestNeighbor().train(x_train.astype(np.float32), y_train)
    d0, d1, d2 = (knn.compute_distances(x_test, n, metric).numpy() for n in (0, 1, 2))
    assert d0.dtype == np.float32
    np.testing.assert_allclose(d1, d2, rtol=1e-6)
    np.testing.assert_allclose(d0, d2, rtol=1e-5, atol=1e-5)


def test_no_loop_l2_clips_rounding_below_zero():
    # A point at distance zero from itself: the expansion can round to a tiny negative number,
    # which without the clip would give NaN after the sqrt.
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(30, 50)) * 100).astype(np.float32)
    knn = KNearestNeighbor().train(x, np.zeros(30, dtype=np.int64))
    d = knn.compute_distances(x, 0).numpy()
    assert np.all(np.isfinite(d)) and np.all(d >= 0)
    # Diagonal ~0 up to float32 cancellation error in ||a||^2 (~1e5 here).
    assert np.all(np.diag(d) < 1.0)


def test_l1_no_loop_blocks_give_the_full_matrix(monkeypatch, data):
    # Force blocks of 3 test rows (9 rows -> 3 blocks) to exercise the block loop's seams.
    import cs231n_tf.classic.knn as knn_module

    x_train, y_train, x_test = data
    monkeypatch.setattr(knn_module, "_L1_BLOCK_ELEMENTS", 3 * 40 * 12)
    knn = KNearestNeighbor().train(x_train, y_train)
    np.testing.assert_allclose(knn.compute_distances(x_test, 0, "l1").numpy(),
                               cdist(x_test.reshape(9, -1), x_train.reshape(40, -1), "cityblock"), rtol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_predictions_equal_sklearn(k, metric):
    # Random real-valued points: no two distances tie, so the neighbour sets are unambiguous.
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(3, 6)) * 4
    y_train = np.repeat([0, 1, 2], 20)
    x_train = centers[y_train] + rng.normal(size=(60, 6))
    x_test = centers[rng.integers(0, 3, 25)] + 1.5 * rng.normal(size=(25, 6))
    reference = KNeighborsClassifier(n_neighbors=k, p=2 if metric == "l2" else 1, algorithm="brute")
    expected = reference.fit(x_train, y_train).predict(x_test)
    knn = KNearestNeighbor().train(x_train, y_train)
    for num_loops in (0, 1, 2):
        np.testing.assert_array_equal(knn.predict(x_test, k=k, num_loops=num_loops, metric=metric), expected)
    # The test points straddle the clusters, so this is not the trivial all-one-class answer.
    assert len(set(expected)) == 3


def test_vote_tie_goes_to_smaller_label():
    # Training points on a line; the query at 0 has neighbours at distance 1 (label 3) and 2
    # (label 1), then 3 (label 5) and 4 (label 1).
    x_train = np.array([[1.0], [2.0], [3.0], [4.0]])
    y_train = np.array([3, 1, 5, 1])
    knn = KNearestNeighbor().train(x_train, y_train)
    query = np.array([[0.0]])
    assert knn.predict(query, k=1)[0] == 3
    assert knn.predict(query, k=2)[0] == 1  # one vote each for 3 and 1 -> smaller label
    assert knn.predict(query, k=3)[0] == 1  # 3, 1, 5: a three-way tie -> 1
    assert knn.predict(query, k=4)[0] == 1  # two votes for 1


def test_equal_distances_prefer_lower_training_index():
    # Two training points at the same distance; with k=1 the first one wins, whatever its label.
    knn = KNearestNeighbor().train(np.array([[1.0], [-1.0]]), np.array([7, 2]))
    assert knn.predict(np.array([[0.0]]), k=1)[0] == 7


def test_predict_labels_from_given_distances():
    knn = KNearestNeighbor().train(np.zeros((3, 2)), np.array([0, 1, 1]))
    dists = np.array([[0.1, 0.5, 0.6], [0.9, 0.2, 0.1], [0.1, 0.2, 9.0]])
    np.testing.assert_array_equal(knn.predict_labels(dists, k=1), [0, 1, 0])
    np.testing.assert_array_equal(knn.predict_labels(dists, k=2), [0, 1, 0])
    np.testing.assert_array_equal(knn.predict_labels(dists, k=3), [1, 1, 1])


def test_cross_validate_shapes_and_values():
    # Ten points on a line, labels 0 0 0 0 0 1 1 1 1 1; two folds of five contiguous points.
    x = np.arange(10, dtype=np.float64)[:, None]
    y = np.array([0] * 5 + [1] * 5)
    result = KNearestNeighbor().cross_validate(x, y, ks=[1, 5], num_folds=2)
    assert set(result) == {1, 5}
    assert all(len(v) == 2 for v in result.values())
    # Fold 1 holds out 0..4 and trains on 5..9 (all label 1): every prediction is 1, accuracy 0.
    # Fold 2 is the mirror image. Any k gives the same.
    assert result == {1: [0.0, 0.0], 5: [0.0, 0.0]}

    x5 = np.array([[0.0], [0.1], [10.0], [10.1], [0.2], [10.2]])
    y5 = np.array([0, 0, 1, 1, 0, 1])
    result = KNearestNeighbor().cross_validate(x5, y5, ks=[1, 3], num_folds=3)
    # Folds {0,1}, {2,3}, {4,5}: with k=1 every held-out point has a same-label neighbour left.
    assert result[1] == [1.0, 1.0, 1.0]
    # k=3 with 4 training points: fold {0,1} keeps 10, 10.1, 0.2, 10.2 -> two votes for 1 -> wrong.
    assert result[3] == [0.0, 0.0, 1.0]


def test_cross_validate_leaves_training_data_alone(data):
    x_train, y_train, x_test = data
    knn = KNearestNeighbor().train(x_train, y_train)
    before = knn.predict(x_test, k=3)
    knn.cross_validate(x_test, np.arange(9) % 2, ks=[1], num_folds=3)
    np.testing.assert_array_equal(knn.predict(x_test, k=3), before)
    assert knn.x_train.shape == (40, 12)


def test_errors(data):
    x_train, y_train, x_test = data
    knn = KNearestNeighbor()
    with pytest.raises(ConfigError, match="before train"):
        knn.predict(x_test)
    knn.train(x_train, y_train)
    with pytest.raises(ConfigError, match="at most the number of training examples \\(40\\), got 41"):
        knn.predict(x_test, k=41)
    with pytest.raises(ConfigError, match="k must be a positive int, got 0"):
        knn.predict(x_test, k=0)
    with pytest.raises(ConfigError, match="num_loops must be one of 0, 1, 2; got 3"):
        knn.compute_distances(x_test, num_loops=3)
    with pytest.raises(ConfigError, match="metric must be one of 'l2', 'l1'; got 'cosine'"):
        knn.predict(x_test, metric="cosine")
    with pytest.raises(ShapeError, match="x has 11 features per example but the training data has 12"):
        knn.predict(np.zeros((2, 11)))
    with pytest.raises(ShapeError, match="y has 39 labels but there are 40 examples"):
        KNearestNeighbor().train(x_train, y_train[:39])
    with pytest.raises(InputTypeError, match="integer class labels, got dtype float64"):
        KNearestNeighbor().train(x_train, y_train.astype(float))
    with pytest.raises(DataError, match="non-negative"):
        KNearestNeighbor().train(x_train, y_train - 1)
    with pytest.raises(InputTypeError, match="numeric"):
        KNearestNeighbor().train(np.array([["a"], ["b"]]), [0, 1])
    with pytest.raises(ShapeError, match="shape \\(N, D\\)"):
        KNearestNeighbor().train(np.zeros(5), np.zeros(5, dtype=int))
    with pytest.raises(ConfigError, match="every k must be at most the smallest training split"):
        knn.cross_validate(x_train[:10], y_train[:10], ks=[9], num_folds=5)
    with pytest.raises(ConfigError, match="num_folds must be an int >= 2"):
        knn.cross_validate(x_train, y_train, ks=[1], num_folds=1)
    # Errors are also the built-in kinds, so plain `except ValueError` callers still work.
    assert issubclass(ConfigError, ValueError) and issubclass(InputTypeError, TypeError)
