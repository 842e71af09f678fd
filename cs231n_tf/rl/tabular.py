"""Tabular Q-learning (Watkins 1989; lecture 14) on any gymnasium environment with discrete states and actions.

The update after each transition ``(s, a, r, s', terminated)``:

    Q(s, a) <- Q(s, a) + alpha_n(s, a) [r + gamma (1 - terminated) max_a' Q(s', a') - Q(s, a)]

with the step size decaying per state-action pair, ``alpha_n = alpha / (1 + n(s, a)) ** alpha_decay``
(``n`` = earlier updates of the pair; ``alpha_decay`` in (0.5, 1] meets the Robbins-Monro conditions
under which Q-learning converges to Q*), and epsilon-greedy behaviour whose epsilon decays linearly
from ``epsilon_start`` to ``epsilon_end`` over the first half of the episodes. Greedy choices break
ties uniformly at random while learning (so untried actions get tried) and by the lowest index in
the returned policy, as the planners do.
"""

import dataclasses

import gymnasium as gym
import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError
from cs231n_tf.rl.mdp import check_gamma, greedy_policy


@dataclasses.dataclass
class QLearningResult:
    """``Q`` ``[S, A]``, its greedy ``policy`` ``[S]``, per-episode ``returns`` and the env ``steps`` taken."""

    Q: np.ndarray
    policy: np.ndarray
    returns: np.ndarray
    steps: int


def _epsilon(episode, episodes, start, end):
    fraction = min(1.0, episode / max(1.0, episodes / 2))
    return start + fraction * (end - start)


def q_learning(env, episodes, gamma, alpha=0.5, alpha_decay=0.8, epsilon_start=1.0, epsilon_end=0.1,
               max_episode_steps=1000, seed=0, callback=None):
    """Learn Q on ``env`` for ``episodes`` episodes; returns a :class:`QLearningResult`.

    ``env``: a gymnasium environment with ``Discrete`` observation and action spaces. The same
    ``seed`` gives the same Q (the environment is reset with it once, and a NumPy generator seeded
    with it draws the exploration). ``callback(episode, Q)``, if given, is called after every
    episode; returning True stops the learning early.
    """
    if not isinstance(env.observation_space, gym.spaces.Discrete) or not isinstance(env.action_space,
                                                                                    gym.spaces.Discrete):
        raise ConfigError(f"q_learning needs Discrete observation and action spaces, got "
                          f"{env.observation_space} and {env.action_space}")
    episodes = validation.positive_int("episodes", episodes)
    gamma = check_gamma(gamma)
    alpha = validation.positive_number("alpha", alpha)
    alpha_decay = validation.positive_number("alpha_decay", alpha_decay, allow_zero=True)
    for name, value in (("epsilon_start", epsilon_start), ("epsilon_end", epsilon_end)):
        if not 0.0 <= validation.positive_number(name, value, allow_zero=True) <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1], got {value!r}")
    max_episode_steps = validation.positive_int("max_episode_steps", max_episode_steps)
    seed = validation.non_negative_int("seed", seed)
    n_states, n_actions = int(env.observation_space.n), int(env.action_space.n)
    Q = np.zeros((n_states, n_actions))
    counts = np.zeros((n_states, n_actions))
    rng = np.random.default_rng(seed)
    returns = np.zeros(episodes)
    steps = 0
    for episode in range(episodes):
        s, _ = env.reset(seed=seed if episode == 0 else None)
        epsilon = _epsilon(episode, episodes, epsilon_start, epsilon_end)
        total = 0.0
        for _ in range(max_episode_steps):
            if rng.random() < epsilon:
                a = int(rng.integers(n_actions))
            else:
                best = np.flatnonzero(Q[s] == Q[s].max())
                a = int(best[rng.integers(len(best))])
            s_next, r, terminated, truncated, _ = env.step(a)
            target = r + (0.0 if terminated else gamma * Q[s_next].max())
            step_size = alpha / (1.0 + counts[s, a]) ** alpha_decay
            Q[s, a] += step_size * (target - Q[s, a])
            counts[s, a] += 1
            total += r
            steps += 1
            s = s_next
            if terminated or truncated:
                break
        returns[episode] = total
        if callback is not None and callback(episode, Q):
            returns = returns[:episode + 1]
            break
    return QLearningResult(Q=Q, policy=greedy_policy(Q), returns=returns, steps=steps)
