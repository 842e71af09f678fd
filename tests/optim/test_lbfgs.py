"""Full-batch L-BFGS converges to closed-form and scikit-learn solutions."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.linear_model import LogisticRegression

import cs231n_tf  # noqa: F401
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.optim.lbfgs import lbfgs_minimize


def test_quadratic_reaches_the_linear_solve():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    hessian = tf.constant(a @ a.T + 0.5 * np.eye(6))  # condition number in the hundreds
    b = tf.constant(rng.normal(size=(6, 1)))
    x = tf.Variable(np.zeros((6, 1)))

    def loss():
        return 0.5 * tf.reduce_sum(x * (hessian @ x)) - tf.reduce_sum(b * x)

    result = lbfgs_minimize(loss, x, max_iters=200, tolerance=1e-10)
    expected = np.linalg.solve(hessian.numpy(), b.numpy())
    assert result.converged, result.message
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6, atol=1e-8)
    assert result.loss == pytest.approx(-0.5 * (b.numpy().T @ expected).item(), rel=1e-10)
    assert 1 <= result.iterations <= 200


def test_logistic_regression_matches_scikit_learn():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(120, 4))
    labels = (features @ [1.0, -2.0, 0.5, 0.0] + 0.3 + rng.normal(size=120) > 0).astype(np.float64)
    c = 0.5
    reference = LogisticRegression(C=c, tol=1e-10, max_iter=1000).fit(features, labels)

    w = tf.Variable(np.zeros((4, 1)))
    bias = tf.Variable(np.zeros(1))
    x, y = tf.constant(features), tf.constant(labels[:, None])

    def loss():
        # scikit-learn's objective: C * sum of log-losses + 0.5 * ||w||^2 (bias not penalised).
        logits = x @ w + bias
        nll = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits))
        return c * nll + 0.5 * tf.reduce_sum(w * w)

    result = lbfgs_minimize(loss, [w, bias], max_iters=500, tolerance=1e-9)
    assert result.converged, result.message
    np.testing.assert_allclose(w.numpy().ravel(), reference.coef_.ravel(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias.numpy(), reference.intercept_, rtol=1e-5, atol=1e-6)


def test_float32_keras_model_least_squares():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = (x @ np.array([[2.0], [-1.0], [0.5]]) + 1.0 + 0.1 * rng.normal(size=(50, 1))).astype(np.float32)
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
    result = lbfgs_minimize(lambda: tf.reduce_mean(tf.square(model(x) - y)),
                            model.trainable_variables, max_iters=50)
    design = np.hstack([x, np.ones((50, 1))]).astype(np.float64)
    solution = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]
    kernel, bias = model.get_weights()
    assert kernel.dtype == np.float32
    np.testing.assert_allclose(np.vstack([kernel, bias[:, None]]), solution, rtol=1e-4, atol=1e-4)
    assert result.loss == pytest.approx(np.mean((design @ solution - y) ** 2), rel=1e-4)


def test_bad_arguments():
    v = tf.Variable(1.0)
    with pytest.raises(InputTypeError, match="variables"):
        lbfgs_minimize(lambda: v * v, [])
    with pytest.raises(InputTypeError, match="floating"):
        lbfgs_minimize(lambda: v * v, [tf.Variable(1)])
    with pytest.raises(InputTypeError, match="loss_fn"):
        lbfgs_minimize(3.0, [v])
    with pytest.raises(ConfigError, match="max_iters"):
        lbfgs_minimize(lambda: v * v, [v], max_iters=0)
    with pytest.raises(ConfigError, match="tolerance"):
        lbfgs_minimize(lambda: v * v, [v], tolerance=-1.0)
