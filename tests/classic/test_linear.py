"""Linear SVM and softmax classifiers: losses, gradients, regularisation and the SGD loop."""

import math

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.classic import LinearSVM, SoftmaxClassifier
from cs231n_tf.errors import ConfigError, DataError, ShapeError
from cs231n_tf.ops.gradcheck import numerical_gradient, relative_error

CLASSES = [LinearSVM, SoftmaxClassifier]


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6))
    y = rng.integers(0, 4, size=8)
    W = rng.normal(size=(6, 4)) * 0.5
    b = rng.normal(size=4) * 0.5
    return x, y, W, b


def make(cls, W, b):
    clf = cls()
    clf.W, clf.b = W, b
    return clf


def numpy_svm_loss(x, y, W, b, reg):
    scores = x @ W + b
    margins = np.maximum(0.0, scores - scores[np.arange(len(y)), y][:, None] + 1.0)
    margins[np.arange(len(y)), y] = 0.0
    return margins.sum() / len(y) + reg * np.sum(W * W)


def numpy_softmax_loss(x, y, W, b, reg):
    scores = x @ W + b
    scores = scores - scores.max(axis=1, keepdims=True)
    log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(y)), y].mean() + reg * np.sum(W * W)


@pytest.mark.parametrize("cls, reference", [(LinearSVM, numpy_svm_loss), (SoftmaxClassifier, numpy_softmax_loss)])
def test_loss_equals_numpy_reference(batch, cls, reference):
    x, y, W, b = batch
    loss, _, _ = make(cls, W, b).loss(x, y, reg=0.3)
    assert loss == pytest.approx(reference(x, y, W, b, 0.3), rel=1e-12)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("regularization, l1_ratio", [("l2", 0.5), ("l1", 0.5), ("elastic_net", 0.3)])
def test_gradients_match_numerical(batch, cls, regularization, l1_ratio):
    x, y, W, b = batch
    clf = make(cls, W, b)
    _, dW, db = clf.loss(x, y, 0.2, regularization, l1_ratio)

    def loss_w(w):
        return make(cls, w, b).loss(x, y, 0.2, regularization, l1_ratio)[0]

    def loss_b(bias):
        return make(cls, W, bias).loss(x, y, 0.2, regularization, l1_ratio)[0]

    assert dW.dtype == np.float64 and dW.shape == (6, 4) and db.shape == (4,)
    assert relative_error(dW, numerical_gradient(loss_w, W)) < 1e-7
    assert relative_error(db, numerical_gradient(loss_b, b)) < 1e-7


def test_regularizers(batch):
    x, y, W, b = batch
    clf = make(SoftmaxClassifier, W, b)
    data = clf.loss(x, y, 0.0)[0]
    l1, l2 = np.abs(W).sum(), (W * W).sum()
    assert clf.loss(x, y, 0.5, "l2")[0] - data == pytest.approx(0.5 * l2, rel=1e-10)
    assert clf.loss(x, y, 0.5, "l1")[0] - data == pytest.approx(0.5 * l1, rel=1e-10)
    elastic = clf.loss(x, y, 0.5, "elastic_net", 0.25)[0] - data
    assert elastic == pytest.approx(0.5 * (0.25 * l1 + 0.75 * l2), rel=1e-10)
    # The L1 gradient is reg * sign(W) on top of the data gradient.
    np.testing.assert_allclose(clf.loss(x, y, 0.5, "l1")[1] - clf.loss(x, y, 0.0)[1], 0.5 * np.sign(W), atol=1e-12)


@pytest.mark.parametrize("cls", CLASSES)
def test_bias_is_not_regularized(batch, cls):
    x, y, W, b = batch
    for bias in (b, b + 10.0):
        clf = make(cls, W, bias)
        loss0, _, db0 = clf.loss(x, y, 0.0)
        loss1, _, db1 = clf.loss(x, y, 3.0)
        # The regularisation term is reg * sum(W^2) whatever the bias, and db has no reg part.
        assert loss1 - loss0 == pytest.approx(3.0 * np.sum(W * W), rel=1e-10)
        np.testing.assert_array_equal(db0, db1)


def test_initial_softmax_loss_is_log_num_classes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 20)).astype(np.float32)
    y = rng.integers(0, 10, size=500)
    clf = SoftmaxClassifier()
    history = clf.train(x, y, learning_rate=0.0, reg=0.0, num_iters=1, batch_size=500)
    # W ~ N(0, 0.001^2): all scores ~ 0, so each class gets probability ~ 1/10.
    assert history[0] == pytest.approx(math.log(10), abs=0.01)
    assert clf.W.shape == (20, 10) and clf.W.dtype == tf.float32
    assert 0.0005 < float(tf.math.reduce_std(clf.W)) < 0.0015
    np.testing.assert_array_equal(clf.b.numpy(), np.zeros(10))


@pytest.mark.parametrize("cls", CLASSES)
def test_learns_separable_problem(cls):
    rng = np.random.default_rng(2)
    centers = np.array([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = rng.integers(0, 3, size=90)
    x = centers[y] + rng.normal(size=(90, 2)) * 0.5
    clf = cls()
    history = clf.train(x, y, learning_rate=0.1, reg=1e-4, num_iters=300, batch_size=30, seed=0)
    assert len(history) == 300 and all(isinstance(v, float) for v in history)
    assert np.mean(history[-20:]) < 0.2 * history[0]
    np.testing.assert_array_equal(clf.predict(x), y)


def test_sgd_loop_follows_its_stateless_minibatches():
    # Replay the compiled loop by hand: minibatch i is stateless_uniform with seed (seed, i), and
    # each step is W -= lr * dW, b -= lr * db with the gradients of `loss`.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 5))
    y = rng.integers(0, 3, size=50)
    W0, b0 = rng.normal(size=(5, 3)) * 0.1, np.zeros(3)
    trained = make(LinearSVM, W0, b0)
    history = trained.train(x, y, learning_rate=0.05, reg=0.01, num_iters=4, batch_size=7, seed=11,
                            regularization="elastic_net", l1_ratio=0.4)
    W, b = W0.copy(), b0.copy()
    for it in range(4):
        idx = tf.random.stateless_uniform([7], seed=[11, it], minval=0, maxval=50, dtype=tf.int32).numpy()
        loss, dW, db = make(LinearSVM, W, b).loss(x[idx], y[idx], 0.01, "elastic_net", 0.4)
        assert history[it] == pytest.approx(loss, rel=1e-12)
        W, b = W - 0.05 * dW, b - 0.05 * db
    np.testing.assert_allclose(trained.W.numpy(), W, rtol=1e-12)
    np.testing.assert_allclose(trained.b.numpy(), b, rtol=1e-12, atol=1e-15)


def test_training_is_reproducible_and_continues():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 3))
    y = rng.integers(0, 2, size=40)
    a, b = SoftmaxClassifier(), SoftmaxClassifier()
    assert a.train(x, y, num_iters=5, batch_size=8, seed=1) == b.train(x, y, num_iters=5, batch_size=8, seed=1)
    np.testing.assert_array_equal(a.W.numpy(), b.W.numpy())
    # A second call continues from the current W instead of re-initialising it.
    W_before = a.W.numpy().copy()
    a.train(x, y, learning_rate=0.0, num_iters=1, seed=2)
    np.testing.assert_array_equal(a.W.numpy(), W_before)
    assert SoftmaxClassifier().train(x, y, num_iters=5, batch_size=8, seed=2) != b.train(
        x, y, num_iters=5, batch_size=8, seed=1)


def test_errors(batch):
    x, y, W, b = batch
    with pytest.raises(ConfigError, match="needs W and b"):
        SoftmaxClassifier().predict(x)
    clf = make(LinearSVM, W, b)
    with pytest.raises(ConfigError, match="regularization must be one of 'l2', 'l1', 'elastic_net'; got 'l3'"):
        clf.loss(x, y, 0.1, regularization="l3")
    with pytest.raises(ConfigError, match="l1_ratio must be in \\[0, 1\\], got 1.5"):
        clf.train(x, y, regularization="elastic_net", l1_ratio=1.5)
    with pytest.raises(ConfigError, match="reg must be a finite non-negative number, got -1"):
        clf.loss(x, y, -1)
    with pytest.raises(ConfigError, match="num_iters must be a positive int, got 0"):
        clf.train(x, y, num_iters=0)
    with pytest.raises(ShapeError, match="x has 5 features per example but W expects 6"):
        clf.predict(x[:, :5])
    with pytest.raises(DataError, match="label 4 but the classifier has 4 classes"):
        clf.loss(x, np.full(8, 4), 0.0)
    with pytest.raises(ShapeError, match="W must have shape \\(D, C\\)"):
        clf.W = np.zeros(3)
