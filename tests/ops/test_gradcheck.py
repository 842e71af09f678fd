"""gradcheck itself, on closed forms."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.ops import check_gradients, numerical_gradient, relative_error


def test_numerical_gradient_of_sum_of_squares_is_2x():
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -0.25]])
    grad = numerical_gradient(lambda v: np.sum(v ** 2), x)
    np.testing.assert_allclose(grad, 2 * x, atol=1e-8)


def test_numerical_gradient_with_upstream_weights_each_output():
    x = np.array([1.0, -2.0, 3.0])
    dout = np.array([0.5, 2.0, -1.0])
    # f(x) = x^3 elementwise: d/dx sum(f * dout) = 3 x^2 dout
    grad = numerical_gradient(lambda v: v ** 3, x, upstream=dout)
    np.testing.assert_allclose(grad, 3 * x ** 2 * dout, rtol=1e-8)


def test_numerical_gradient_through_a_tuple_of_outputs():
    x = np.array([0.3, -0.7])
    dout = (np.array([1.0, 2.0]), np.array([-1.0, 0.5]))
    grad = numerical_gradient(lambda v: (tf.sin(v), v ** 2), x, upstream=dout)
    np.testing.assert_allclose(grad, np.cos(x) * dout[0] + 2 * x * dout[1], rtol=1e-8)


def test_numerical_gradient_keeps_x_unchanged_and_refuses_integers():
    x = np.array([1.0, 2.0])
    numerical_gradient(lambda v: v * 2, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])
    with pytest.raises(InputTypeError):
        numerical_gradient(lambda v: v, np.array([1, 2]))


def test_relative_error_closed_forms():
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert relative_error([1.0], [3.0]) == pytest.approx(0.5)
    assert relative_error([0.0, 1.0], [0.0, 1.5]) == pytest.approx(0.2)
    # Below the 1e-8 floor the denominator stops shrinking.
    assert relative_error([0.0], [1e-12]) == pytest.approx(1e-4)
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0


def _square_with_gradient(scale):
    """x^2 whose hand-written gradient is ``scale * 2x``: right for scale 1, wrong otherwise."""
    @tf.custom_gradient
    def op(x):
        def grad(dout):
            return dout * scale * 2 * x

        return x * x, grad

    return op


def test_check_gradients_accepts_a_right_gradient_and_catches_a_wrong_one():
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert check_gradients(_square_with_gradient(1.0), [x])[0] < 1e-9
    assert check_gradients(_square_with_gradient(1.01), [x])[0] == pytest.approx(0.01 / 2.01, rel=1e-4)


def test_check_gradients_skips_python_numbers_and_reports_every_float_input():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    errors = check_gradients(lambda a, b, power: a * b ** power, [a, b, 3])
    assert set(errors) == {0, 1} and max(errors.values()) < 1e-8


def test_check_gradients_by_name_with_argnums_and_upstream():
    rng = np.random.default_rng(2)
    inputs = {"x": rng.standard_normal(4), "y": rng.standard_normal(4)}
    errors = check_gradients(lambda x, y: tf.exp(x) * y, inputs, upstream=np.ones(4), argnums="x")
    assert list(errors) == ["x"] and errors["x"] < 1e-8
    with pytest.raises(ConfigError):
        check_gradients(lambda x, y: x * y, inputs, argnums=["z"])
    with pytest.raises(ConfigError):
        check_gradients(lambda n: tf.ones(3) * n, [2])


def test_check_gradients_ignores_integer_outputs():
    x = np.array([0.5, -1.5, 2.0])

    def op(x):
        return tf.square(x), tf.argmax(x)

    assert check_gradients(op, [x])[0] < 1e-9
    assert check_gradients(op, [x], use_tf_function=False)[0] < 1e-9
