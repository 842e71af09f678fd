"""The course's update rules against closed forms and against each other's derivations."""

import numpy as np
import pytest
import tensorflow as tf

import cs231n_tf  # noqa: F401
from cs231n_tf.errors import ConfigError, InputTypeError, ShapeError
from cs231n_tf.optim import rules


def run(rule, w, grads, config=None):
    for g in grads:
        w, config = rule(w, g, config)
    return w, config


@pytest.fixture
def w0():
    return np.random.default_rng(0).normal(size=(4, 5))


@pytest.fixture
def g():
    # A constant gradient bounded away from zero, so the adaptive rules have closed forms.
    rng = np.random.default_rng(1)
    return rng.choice([-1.0, 1.0], size=(4, 5)) * rng.uniform(0.5, 2.0, size=(4, 5))


def test_sgd_is_a_plain_step(w0, g):
    w, config = rules.sgd(w0, g)
    np.testing.assert_allclose(w, w0 - 1e-2 * g, rtol=0, atol=1e-15)
    assert config == {"learning_rate": 1e-2}


def test_sgd_momentum_with_constant_gradient_is_a_geometric_sum(w0, g):
    lr, mu, k = 0.1, 0.8, 5
    w, config = run(rules.sgd_momentum, w0, [g] * k, {"learning_rate": lr, "momentum": mu})
    # v_j = -lr g (1 - mu^j) / (1 - mu); w_k = w_0 + sum_j v_j.
    steps = [(1 - mu**j) / (1 - mu) for j in range(1, k + 1)]
    np.testing.assert_allclose(config["velocity"], -lr * g * steps[-1], rtol=1e-13)
    np.testing.assert_allclose(w, w0 - lr * g * sum(steps), rtol=1e-13)


def test_nesterov_is_the_look_ahead_method_in_shifted_variables():
    """Sutskever's NAG evaluates the gradient at x + mu*v; the course stores phi = x + mu*v."""
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 3))
    hessian = a @ a.T + np.eye(3)
    grad = lambda x: hessian @ x  # noqa: E731  (f = 0.5 x^T H x)
    lr, mu = 0.05, 0.9
    x, v = rng.normal(size=3), np.zeros(3)
    phi, config = x.copy(), {"learning_rate": lr, "momentum": mu}
    for _ in range(6):
        v = mu * v - lr * grad(x + mu * v)
        x = x + v
        phi, config = rules.nesterov_momentum(phi, grad(phi), config)
        np.testing.assert_allclose(phi, x + mu * v, rtol=1e-12, atol=1e-14)


def test_adagrad_with_constant_gradient_takes_lr_over_sqrt_t_steps(w0, g):
    lr, k = 0.1, 4
    w, config = run(rules.adagrad, w0, [g] * k, {"learning_rate": lr, "epsilon": 0.0})
    np.testing.assert_allclose(config["cache"], k * g * g, rtol=1e-14)
    harmonic = sum(1 / np.sqrt(j) for j in range(1, k + 1))
    np.testing.assert_allclose(w, w0 - lr * np.sign(g) * harmonic, rtol=1e-13)


def test_rmsprop_with_constant_gradient(w0, g):
    lr, rho, eps, k = 0.01, 0.9, 1e-3, 3
    w, config = run(rules.rmsprop, w0, [g] * k,
                    {"learning_rate": lr, "decay_rate": rho, "epsilon": eps})
    # cache_j = (1 - rho^j) g^2 and each step is lr g / (sqrt(cache_j) + eps).
    steps = sum(g / (np.sqrt(1 - rho**j) * np.abs(g) + eps) for j in range(1, k + 1))
    np.testing.assert_allclose(config["cache"], (1 - rho**k) * g * g, rtol=1e-13)
    np.testing.assert_allclose(w, w0 - lr * steps, rtol=1e-13)


def test_adam_bias_correction_makes_constant_gradient_steps_exact(w0, g):
    """With t incremented first, m_hat = g and v_hat = g^2 from the very first step."""
    lr, eps, k = 1e-2, 1e-3, 4
    w, config = run(rules.adam, w0, [g] * k, {"learning_rate": lr, "epsilon": eps})
    assert config["t"] == k
    np.testing.assert_allclose(config["m"], (1 - 0.9**k) * g, rtol=1e-13)
    np.testing.assert_allclose(config["v"], (1 - 0.999**k) * g * g, rtol=1e-12)
    np.testing.assert_allclose(w, w0 - k * lr * g / (np.abs(g) + eps), rtol=1e-12)


def test_defaults_are_the_courses():
    w, dw = np.ones(2), np.ones(2)
    assert rules.sgd_momentum(w, dw)[1]["momentum"] == 0.9
    assert rules.nesterov_momentum(w, dw)[1]["learning_rate"] == 1e-2
    cfg = rules.rmsprop(w, dw)[1]
    assert (cfg["learning_rate"], cfg["decay_rate"], cfg["epsilon"]) == (1e-2, 0.99, 1e-8)
    cfg = rules.adam(w, dw)[1]
    assert (cfg["learning_rate"], cfg["beta1"], cfg["beta2"], cfg["epsilon"], cfg["t"]) == (
        1e-3, 0.9, 0.999, 1e-8, 1)
    assert set(rules.RULES) == {"sgd", "sgd_momentum", "nesterov_momentum", "adagrad", "rmsprop",
                                "adam"}


def test_rules_do_not_modify_their_input(w0, g):
    before = w0.copy()
    for rule in rules.RULES.values():
        rule(w0, g)
    np.testing.assert_array_equal(w0, before)


@pytest.mark.parametrize("name", sorted(rules.RULES))
def test_tensors_in_tensors_out_and_same_numbers(name, w0, g):
    rule = rules.RULES[name]
    grads = [g, -0.5 * g, 2.0 * g]
    w_np, cfg_np = run(rule, w0, grads)
    # tf.function may not mutate its arguments, so the rule gets a copy; only the state tensors
    # are carried between calls (hyperparameters stay Python floats, at their defaults).
    step = tf.function(lambda w, dw, state: rule(w, dw, dict(state)))
    w_tf, state = tf.constant(w0), {}
    for grad in grads:
        w_tf, cfg_tf = step(w_tf, tf.constant(grad), state)
        state = {k: v for k, v in cfg_tf.items() if k in ("velocity", "cache", "m", "v", "t")}
    assert tf.is_tensor(w_tf) and isinstance(w_np, np.ndarray)
    assert w_tf.dtype == tf.float64 and w_np.dtype == np.float64
    np.testing.assert_allclose(w_tf.numpy(), w_np, rtol=1e-12)
    for key in ("velocity", "cache", "m", "v"):
        if key in cfg_np:
            assert tf.is_tensor(cfg_tf[key])
            np.testing.assert_allclose(cfg_tf[key].numpy(), cfg_np[key], rtol=1e-12)


def test_float32_stays_float32():
    w, _ = rules.adam(np.ones(3, np.float32), np.ones(3, np.float32))
    assert w.dtype == np.float32
    w, _ = rules.rmsprop(tf.ones(3), np.ones(3))
    assert w.dtype == tf.float32


def test_tensor_hyperparameters_take_the_weights_dtype():
    w = tf.constant([1.0, 2.0], tf.float64)
    next_w, _ = rules.sgd_momentum(w, tf.ones(2, tf.float64),
                                   {"learning_rate": tf.constant(0.5), "momentum": tf.constant(0.5)})
    np.testing.assert_allclose(next_w.numpy(), [0.5, 1.5])


def test_bad_inputs():
    with pytest.raises(ShapeError, match=r"\(2,\)"):
        rules.sgd(np.ones(3), np.ones(2))
    with pytest.raises(ConfigError, match="momentum"):
        rules.sgd_momentum(np.ones(3), np.ones(3), {"momentum": 1.0})
    with pytest.raises(ConfigError, match="learning_rate"):
        rules.adam(np.ones(3), np.ones(3), {"learning_rate": -1.0})
    with pytest.raises(ConfigError, match="decay_rate"):
        rules.rmsprop(np.ones(3), np.ones(3), {"decay_rate": "0.9"})
    with pytest.raises(InputTypeError, match="floating"):
        rules.sgd(np.ones(3, np.int64), np.ones(3))
    with pytest.raises(InputTypeError, match="config"):
        rules.sgd(np.ones(3), np.ones(3), [("learning_rate", 1.0)])
