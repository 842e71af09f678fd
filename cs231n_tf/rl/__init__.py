"""Reinforcement learning (lecture 14) on gymnasium: MDP planning, tabular Q-learning, DQN, policy gradients.

- ``mdp.py`` (tier 1): gymnasium transition tables (``env.unwrapped.P``) as :class:`TabularMDP`,
  :func:`bellman_optimality_backup`, :func:`value_iteration`, :func:`policy_iteration`,
  :func:`q_values`, :func:`policy_evaluation`, :func:`greedy_policy` (lowest-index tie-breaking).
- ``gridworld.py``: :class:`GridWorldEnv`, the package's own grid world (walls, goals, pits, slip).
- ``tabular.py``: :func:`q_learning`, epsilon-greedy with a decaying step size.
- ``plots.py``: :func:`plot_policy` (arrows over V), :func:`plot_returns`.
- ``envs.py``: :func:`make_env` (close matches for unknown ids), :func:`plan` (the ``rl plan`` command).
- ``dqn.py``: deep Q-learning (Mnih et al. 2015) with replay, target networks, Double DQN, dueling
  heads, on ``gymnasium.vector`` environments, with exact resume (``rl train`` / ``rl evaluate``):
  :class:`~cs231n_tf.rl.dqn.DQNConfig`, :func:`~cs231n_tf.rl.dqn.train`,
  :func:`~cs231n_tf.rl.dqn.evaluate_run`; ``qnetworks.py`` (MLP and Nature Q-networks), ``replay.py``
  (the replay buffer) and ``envstate.py`` (environment state for checkpoints) beside it.
- ``policy_gradient.py``: :func:`~cs231n_tf.rl.policy_gradient.reward_to_go` (REINFORCE),
  :func:`~cs231n_tf.rl.policy_gradient.n_step_returns` (A2C, cut off at terminal steps) and
  :func:`~cs231n_tf.rl.policy_gradient.actor_critic_losses`; ``policies.py``:
  :class:`~cs231n_tf.rl.policies.ActorCritic`, policy and value MLPs with the compiled update;
  ``pg.py``: the REINFORCE and A2C environment loop with exact resume
  (:class:`~cs231n_tf.rl.pg.PGConfig`, :func:`~cs231n_tf.rl.pg.train`,
  :func:`~cs231n_tf.rl.pg.evaluate_run`).
- ``loop.py``: the environment-loop parts DQN and the policy-gradient loop share (run directory,
  NaN-guarded checkpoints, the checkpointable vector collector, metrics, evaluation).
- ``export.py``: :func:`~cs231n_tf.rl.export.export_run`, any run's greedy policy as a SavedModel and
  a ``.tflite`` (``observations`` -> ``actions`` and ``q_values``/``logits``), action-checked (``rl export``).

The planning side imports no TensorFlow, so only the deep-learning modules above are imported from
their own modules (``from cs231n_tf.rl.dqn import train``).
"""

from cs231n_tf.rl.gridworld import AIMA_LAYOUT, GridWorldEnv
from cs231n_tf.rl.mdp import (
    TabularMDP, bellman_optimality_backup, greedy_policy, policy_evaluation, policy_iteration, q_values, solve,
    value_iteration,
)
from cs231n_tf.rl.plots import plot_policy, plot_returns
from cs231n_tf.rl.tabular import QLearningResult, q_learning

__all__ = ["AIMA_LAYOUT", "GridWorldEnv", "QLearningResult", "TabularMDP", "bellman_optimality_backup",
           "greedy_policy", "plot_policy", "plot_returns", "policy_evaluation", "policy_iteration", "q_learning",
           "q_values", "solve", "value_iteration"]
