"""Policy gradients (lecture 14): reward-to-go, n-step bootstrapped returns and the actor-critic loss.

REINFORCE weights ``log pi(a_t | s_t)`` by the reward-to-go ``G_t = sum_{k>=t} gamma^(k-t) r_k`` of
its episode rather than the whole episode's return: rewards before ``t`` do not depend on ``a_t``, so
dropping them removes variance without bias. A2C replaces the tail after ``n`` steps with the critic's
estimate, ``G_t = r_t + gamma r_{t+1} + ... + gamma^(n-1) r_{t+n-1} + gamma^n V(s_{t+n})``, cut off at
the first terminated step (no bootstrap past a terminal state).

The returns are host-side NumPy (float64; rollouts are short and they run once per update);
:func:`actor_critic_losses` is TensorFlow, for use inside a compiled update.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ShapeError
from cs231n_tf.rl.mdp import check_gamma


def reward_to_go(rewards, gamma):
    """``G_t = r_t + gamma G_{t+1}`` for one episode; ``rewards`` ``(T,)`` -> returns ``(T,)``."""
    gamma = check_gamma(gamma)
    rewards = np.asarray(rewards, np.float64)
    if rewards.ndim != 1:
        raise ShapeError(f"rewards must have shape (T,), got {rewards.shape}")
    returns = np.zeros_like(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def n_step_returns(rewards, terminated, bootstrap, gamma):
    """Bootstrapped returns of a rollout of ``n`` steps from ``E`` environments.

    ``rewards`` and ``terminated`` are ``(n, E)``; ``terminated[t, e]`` says the step ``t`` ended an
    episode in environment ``e``. ``bootstrap`` ``(E,)`` is ``V(s_n)``, the critic's value of the
    observation after the last step. Step ``t`` gets ``r_t + gamma G_{t+1}``, with ``G_{t+1}`` replaced
    by 0 when step ``t`` terminated, so every return stops at its episode's end. Returns ``(n, E)``.
    """
    gamma = check_gamma(gamma)
    rewards = np.asarray(rewards, np.float64)
    done = np.asarray(terminated, bool)
    running = np.asarray(bootstrap, np.float64)
    if rewards.ndim != 2 or done.shape != rewards.shape or running.shape != rewards.shape[1:]:
        raise ShapeError(f"rewards and terminated must be (n, E) and bootstrap (E,), got {rewards.shape}, "
                         f"{done.shape} and {running.shape}")
    returns = np.zeros_like(rewards)
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * np.where(done[t], 0.0, running)
        returns[t] = running
    return returns


def actor_critic_losses(logits, values, actions, returns):
    """Policy-gradient, baseline and entropy terms of one batch, each a scalar mean.

    ``logits`` ``(B, A)``, ``values`` ``(B,)`` (the learned baseline ``V(s)``), ``actions`` ``(B,)``
    int, ``returns`` ``(B,)``. The advantage ``returns - V(s)`` is held constant (``stop_gradient``) in
    the policy term ``-log pi(a|s) A``; the baseline regresses on the returns (squared error / 2); the
    entropy ``-sum pi log pi`` is returned for the caller to subtract with its bonus coefficient.
    """
    log_pi = tf.nn.log_softmax(logits)
    chosen = tf.gather(log_pi, actions, batch_dims=1)
    advantages = tf.stop_gradient(returns - values)
    policy_loss = -tf.reduce_mean(chosen * advantages)
    value_loss = 0.5 * tf.reduce_mean(tf.square(returns - values))
    entropy = -tf.reduce_mean(tf.reduce_sum(tf.exp(log_pi) * log_pi, axis=-1))
    return policy_loss, value_loss, entropy
