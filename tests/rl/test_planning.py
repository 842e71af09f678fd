"""Planning and tabular RL: closed forms, value iteration == policy iteration, AIMA's numbers, Q-learning."""

import json
import os

import gymnasium as gym
import numpy as np
import pytest

from cs231n_tf import cli
from cs231n_tf.errors import ConfigError, DataError, ShapeError
from cs231n_tf.rl import (
    GridWorldEnv, TabularMDP, bellman_optimality_backup, greedy_policy, plot_policy, policy_evaluation,
    policy_iteration, q_learning, q_values, solve, value_iteration,
)


def two_state_mdp(p_end=0.0):
    """State 0: stay (+1) or move to 1 (0). State 1: stay (+2) or move to 0 (0). Each step ends w.p. p_end."""
    def step(to, reward):
        out = [(1.0 - p_end, to, reward, False)]
        if p_end:
            out.append((p_end, to, reward, True))
        return out

    return {0: {0: step(0, 1.0), 1: step(1, 0.0)}, 1: {0: step(1, 2.0), 1: step(0, 0.0)}}


@pytest.mark.parametrize("p_end", [0.0, 0.25])
def test_two_state_closed_form(p_end):
    gamma = 0.9
    g = gamma * (1 - p_end)  # effective discount of the continuation
    v1 = 2.0 / (1 - g)
    v0 = max(1.0 / (1 - g), g * v1)
    for algo in (value_iteration, policy_iteration):
        V, policy = algo(two_state_mdp(p_end), gamma)
        np.testing.assert_allclose(V, [v0, v1], atol=1e-9)
        assert policy.tolist() == [1, 0]
    # A fixed policy's value solves its own linear equations: always stay in 0 -> 1 / (1 - g).
    np.testing.assert_allclose(policy_evaluation(two_state_mdp(p_end), np.array([0, 0]), gamma),
                               [1 / (1 - g), 2 / (1 - g)], rtol=1e-12)


def frozen_lake(map_name):
    return gym.make("FrozenLake-v1", map_name=map_name, is_slippery=True).unwrapped.P


def test_backup_is_the_lecture_formula_on_the_table():
    P = frozen_lake("4x4")
    V = np.random.default_rng(0).random(16)
    gamma = 0.95
    expected = np.array([max(sum(p * (r + (0.0 if done else gamma * V[s2])) for p, s2, r, done in P[s][a])
                             for a in P[s]) for s in P])
    np.testing.assert_allclose(bellman_optimality_backup(P, V, gamma), expected, rtol=1e-13)
    assert q_values(P, V, gamma).shape == (16, 4)


@pytest.mark.parametrize("name,gamma", [("4x4", 0.99), ("8x8", 0.99), ("grid", 0.99), ("grid", 1.0), ("taxi", 0.9)])
def test_value_and_policy_iteration_agree(name, gamma):
    if name == "grid":
        P = GridWorldEnv().P
    elif name == "taxi":
        P = gym.make("Taxi-v4").unwrapped.P
    else:
        P = frozen_lake(name)
    V_vi, pi_vi, it_vi = solve(P, gamma, "value_iteration")
    V_pi, pi_pi, it_pi = solve(P, gamma, "policy_iteration")
    assert np.array_equal(pi_vi, pi_pi)
    np.testing.assert_allclose(V_vi, V_pi, atol=1e-8, rtol=0)
    assert it_pi < it_vi  # Howard's iteration takes a handful of exact evaluations
    # V* is the backup's fixed point, and the greedy policy's own value.
    np.testing.assert_allclose(bellman_optimality_backup(P, V_pi, gamma), V_pi, atol=1e-10)
    np.testing.assert_allclose(policy_evaluation(P, pi_vi, gamma), V_pi, atol=1e-10)


def test_grid_world_reproduces_aima_figure_17_3():
    V, policy = value_iteration(GridWorldEnv().P, 1.0)
    aima = [[0.812, 0.868, 0.918, 0.0], [0.762, 0.0, 0.660, 0.0], [0.705, 0.655, 0.611, 0.388]]
    np.testing.assert_allclose(V.reshape(3, 4), aima, atol=5e-4)
    # AIMA Figure 17.2 (R = -0.04): right along the top, up the left column, left along the bottom.
    L, D, R, U = range(4)
    free = [0, 1, 2, 4, 6, 8, 9, 10, 11]
    assert policy[free].tolist() == [R, R, R, U, U, U, L, L, L]


def test_ties_go_to_the_lowest_action():
    Q = np.array([[1.0, 1.0 + 1e-13, 0.5], [0.0, 2.0, 2.0], [3.0, 2.0, 1.0]])
    assert greedy_policy(Q).tolist() == [0, 1, 0]


def test_bad_tables_and_gammas():
    good = two_state_mdp()
    with pytest.raises(DataError, match=r"P\[0\]\[1\] sum to 0.5"):
        TabularMDP({**good, 0: {0: good[0][0], 1: [(0.5, 1, 0.0, False)]}})
    with pytest.raises(DataError, match="goes to state 7"):
        TabularMDP({**good, 1: {0: [(1.0, 7, 0.0, False)], 1: good[1][1]}})
    with pytest.raises(DataError, match="same actions"):
        TabularMDP({0: good[0], 1: {0: good[1][0]}})
    with pytest.raises(DataError, match="probability -0.5"):
        TabularMDP({**good, 0: {0: [(-0.5, 0, 1.0, False), (1.5, 1, 0.0, False)], 1: good[0][1]}})
    for gamma in (0.0, -0.1, 1.5, float("nan"), True):
        with pytest.raises(ConfigError, match="gamma must be a number in"):
            value_iteration(good, gamma)
    # gamma = 1 on an MDP that never terminates: refused, not looped on.
    with pytest.raises(DataError, match=r"states \[0, 1\] never reach a terminating transition"):
        policy_iteration(good, 1.0)
    with pytest.raises(DataError, match="did not converge in max_iterations=5"):
        value_iteration(frozen_lake("4x4"), 0.99, max_iterations=5)


def test_q_learning_reaches_the_value_iteration_policy():
    env = GridWorldEnv(random_start=True)
    gamma = 0.9
    _, optimal = value_iteration(env.P, gamma)
    result = q_learning(env, episodes=3000, gamma=gamma, seed=0)
    assert np.array_equal(result.policy[env.free_states], optimal[env.free_states])
    again = q_learning(GridWorldEnv(random_start=True), episodes=50, gamma=gamma, seed=3)
    assert np.array_equal(again.Q, q_learning(GridWorldEnv(random_start=True), episodes=50, gamma=gamma, seed=3).Q)
    with pytest.raises(ConfigError, match="Discrete observation"):
        q_learning(gym.make("CartPole-v1"), 1, 0.9)


def test_policy_png(tmp_path):
    import matplotlib.image

    env = gym.make("FrozenLake-v1").unwrapped
    V, policy = value_iteration(env.P, 0.99)
    path = plot_policy(env.desc, V, policy, str(tmp_path / "p.png"))
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0.05
    with pytest.raises(ShapeError, match="16 entries"):
        plot_policy(env.desc, V[:4], policy, str(tmp_path / "q.png"))


def _one_line_error(capsys, argv):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_cli_plan(tmp_path, capsys):
    out = str(tmp_path / "plan")
    assert cli.main(["rl", "plan", "--env", "FrozenLake-v1", "--map-size", "8x8", "--algo", "policy_iteration",
                     "--out", out]) == 0
    record = json.load(open(os.path.join(out, "plan.json")))
    _, optimal = value_iteration(frozen_lake("8x8"), 0.99)
    assert record["policy"] == optimal.tolist() and record["shape"] == [8, 8] and len(record["V"]) == 64
    assert os.path.getsize(os.path.join(out, "policy.png")) > 1000
    assert "policy_iteration" in capsys.readouterr().out
    assert "close matches: FrozenLake-v1" in _one_line_error(capsys, ["rl", "plan", "--env", "FrozenLak-v1",
                                                                      "--out", out])
    assert "gamma must be a number in (0, 1]" in _one_line_error(
        capsys, ["rl", "plan", "--gamma", "1.5", "--out", out])
    assert "no transition table" in _one_line_error(capsys, ["rl", "plan", "--env", "CartPole-v1", "--out", out])
    assert "FrozenLake only" in _one_line_error(capsys, ["rl", "plan", "--env", "Taxi-v4", "--map-size", "8x8",
                                                         "--out", out])
