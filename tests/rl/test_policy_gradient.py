"""Reward-to-go and n-step returns against hand computations."""

import numpy as np
import pytest

from cs231n_tf.errors import ConfigError, ShapeError
import tensorflow as tf

from cs231n_tf.rl.policy_gradient import actor_critic_losses, n_step_returns, reward_to_go


def test_reward_to_go_closed_form():
    # r = (1, 2, 3), gamma = 0.5: G_2 = 3, G_1 = 2 + 1.5, G_0 = 1 + 0.5 * 3.5
    np.testing.assert_allclose(reward_to_go([1.0, 2.0, 3.0], 0.5), [2.75, 3.5, 3.0])
    # constant reward 1 for T steps: G_t = (1 - gamma^(T-t)) / (1 - gamma)
    gamma, T = 0.9, 7
    expected = [(1 - gamma ** (T - t)) / (1 - gamma) for t in range(T)]
    np.testing.assert_allclose(reward_to_go(np.ones(T), gamma), expected)


def test_n_step_returns_with_terminal_cut_off():
    gamma = 0.9
    rewards = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    terminated = np.array([[False, False], [True, False], [False, False]])
    bootstrap = np.array([10.0, 5.0])
    # env 0: episode ends at t=1, a new one starts at t=2 and bootstraps from V = 10
    g2 = 3 + gamma * 10
    g1 = 2.0
    g0 = 1 + gamma * g1
    # env 1: no terminal, the 3-step return plus gamma^3 * 5
    h0 = 1 + gamma + gamma ** 2 + gamma ** 3 * 5
    h1 = 1 + gamma + gamma ** 2 * 5
    h2 = 1 + gamma * 5
    np.testing.assert_allclose(n_step_returns(rewards, terminated, bootstrap, gamma),
                               [[g0, h0], [g1, h1], [g2, h2]])


def test_bad_input():
    with pytest.raises(ConfigError, match="gamma"):
        reward_to_go([1.0], 1.5)
    with pytest.raises(ShapeError):
        n_step_returns(np.zeros((3, 2)), np.zeros((3, 1), bool), np.zeros(2), 0.9)


def test_actor_critic_losses_match_numpy_and_gradient():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3))
    values = rng.normal(size=4)
    actions = np.array([0, 2, 1, 2])
    returns = rng.normal(size=4)
    pi = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    adv = returns - values
    logits_t = tf.constant(logits)
    values_t = tf.constant(values)
    with tf.GradientTape() as tape:
        tape.watch([logits_t, values_t])
        policy_loss, value_loss, entropy = tf.function(actor_critic_losses)(
            logits_t, values_t, tf.constant(actions), tf.constant(returns))
    np.testing.assert_allclose(policy_loss, -np.mean(np.log(pi[np.arange(4), actions]) * adv))
    np.testing.assert_allclose(value_loss, 0.5 * np.mean(adv ** 2))
    np.testing.assert_allclose(entropy, -np.mean((pi * np.log(pi)).sum(1)))
    g_logits, g_values = tape.gradient(policy_loss, [logits_t, values_t])
    # d(-mean log pi(a) A)/d logits = (pi - onehot(a)) A / B; the baseline gets no policy gradient
    np.testing.assert_allclose(g_logits, (pi - np.eye(3)[actions]) * adv[:, None] / 4)
    np.testing.assert_array_equal(g_values, np.zeros(4))


def test_compiled_update_raises_chosen_action_probability():
    from cs231n_tf.rl.policies import ActorCritic
    tf.keras.utils.set_random_seed(0)
    agent = ActorCritic(3, 2, hidden=(8,), lr=1e-2, clip_norm=10.0)
    obs = tf.constant(np.random.default_rng(0).normal(size=(16, 3)), tf.float32)
    actions = tf.zeros(16, tf.int32)
    returns = tf.fill([16], 5.0)  # above any initial baseline: action 0 has positive advantage
    before = tf.nn.softmax(agent.policy(obs))[:, 0].numpy().mean()
    gap_before = abs(float(tf.reduce_mean(agent.value(obs))) - 5.0)
    for _ in range(20):
        out = agent.update(obs, actions, returns)
    after = tf.nn.softmax(agent.policy(obs))[:, 0].numpy().mean()
    assert after > before + 0.1
    assert np.isfinite(float(out["loss"]))
    # the baseline moves towards the returns
    assert abs(float(tf.reduce_mean(agent.value(obs))) - 5.0) < gap_before - 0.1
