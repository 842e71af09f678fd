"""REINFORCE and A2C: loss gradients in closed form, the returns they train on, learning, exact resume, export, CLI."""

import json
import os

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import cli
from cs231n_tf.engine.state import check_finite
from cs231n_tf.errors import ConfigError, NonFiniteLossError
from cs231n_tf.rl.pg import Collector, PGConfig, build_agent, sample_actions, train

TINY = dict(total_steps=400, num_envs=2, n_steps=5, batch_episodes=2, hidden=[16], checkpoint_every=100,
            log_every=100, lr=3e-3)


def _linear_agent(value_coef=0.5, entropy_coef=0.1):
    config = PGConfig(hidden=[], value_coef=value_coef, entropy_coef=entropy_coef).validate()
    env = gym.make(config.env)
    agent = build_agent(config, env.observation_space, env.action_space.n)
    rng = np.random.default_rng(0)
    agent.policy.set_weights([rng.normal(size=(4, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)])
    agent.value.set_weights([rng.normal(size=(4, 1)).astype(np.float32), rng.normal(size=1).astype(np.float32)])
    return agent


def test_loss_gradients_equal_the_closed_forms():
    """Linear policy z = xW + b and critic v = xU + c: every gradient of the A2C/REINFORCE loss by hand."""
    value_coef, entropy_coef = 0.5, 0.1
    agent = _linear_agent(value_coef, entropy_coef)
    rng = np.random.default_rng(1)
    B = 6
    x = rng.normal(size=(B, 4)).astype(np.float32)
    actions = rng.integers(0, 2, B).astype(np.int32)
    returns = rng.normal(size=B).astype(np.float32) * 3
    variables = agent.policy.trainable_variables + agent.value.trainable_variables
    with tf.GradientTape() as tape:
        out = agent.losses(x, actions, returns)
    g_W, g_b, g_U, g_c = (g.numpy() for g in tape.gradient(out["loss"], variables))

    W, b = (w.astype(np.float64) for w in agent.policy.get_weights())
    U, c = (w.astype(np.float64) for w in agent.value.get_weights())
    z = x @ W + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    v = (x @ U + c)[:, 0]
    A = returns - v
    H = -(p * np.log(p)).sum(1)
    onehot = np.eye(2)[actions]
    # d(-mean log pi(a|s) A)/dz = (p - onehot) A / B; d(mean H)/dz = -p (log p + H) / B (entropy is subtracted)
    d_z = (p - onehot) * A[:, None] / B + entropy_coef * p * (np.log(p) + H[:, None]) / B
    # d(value_coef * mean (R - v)^2 / 2)/dv = -value_coef (R - v) / B
    d_v = -value_coef * A / B
    np.testing.assert_allclose(g_W, x.T @ d_z, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g_b, d_z.sum(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g_U[:, 0], x.T @ d_v, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g_c, [d_v.sum()], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["entropy"], H.mean(), rtol=1e-5)
    np.testing.assert_allclose(out["value_loss"], 0.5 * np.mean(A ** 2), rtol=1e-5)


def test_sample_actions_follows_the_softmax():
    logits = np.array([[0.0, np.log(3.0)], [np.log(2.0), 0.0], [5.0, -5.0]])
    draws = np.stack([sample_actions(logits, np.random.default_rng(i)) for i in range(4000)])
    np.testing.assert_allclose((draws == 1).mean(0), [0.75, 1 / 3, np.exp(-10) / (1 + np.exp(-10))], atol=0.03)
    np.testing.assert_array_equal(sample_actions(logits, np.random.default_rng(7)),
                                  sample_actions(logits, np.random.default_rng(7)))


def _collect_until_batch(config):
    collector = Collector(PGConfig(**{**TINY, **config}).validate())
    agent = build_agent(collector.config, collector.envs.single_observation_space, 2)
    step = 0
    while True:
        step += collector.config.num_envs
        collector.collect(agent, step)
        bootstrap = agent.forward(tf.constant(collector.observations, tf.float32))[1].numpy()
        batch = collector.batch(agent)
        if batch is not None:
            collector.close()
            return collector, bootstrap, [t.numpy() for t in batch]


def test_reinforce_trains_on_reward_to_go():
    collector, _, (observations, actions, returns) = _collect_until_batch({"algo": "reinforce", "batch_episodes": 1})
    (end, total, length), = collector.episodes[:1]
    assert len(returns) == length == total  # CartPole pays 1 per step; this episode terminated (< 500 steps)
    gamma = collector.config.gamma
    np.testing.assert_allclose(returns, [(1 - gamma ** (length - t)) / (1 - gamma) for t in range(length)], rtol=1e-6)
    assert observations.shape == (length, 4) and set(actions) <= {0, 1}


def test_a2c_trains_on_n_step_returns():
    collector, bootstrap, (observations, actions, returns) = _collect_until_batch({"algo": "a2c"})
    assert not collector.episodes  # no episode ends in the first 5 steps of CartPole
    gamma, n, E = collector.config.gamma, 5, 2
    # step t of env e: sum_{k<n-t} gamma^k * 1 + gamma^(n-t) V(s_n)
    expected = [[(1 - gamma ** (n - t)) / (1 - gamma) + gamma ** (n - t) * bootstrap[e] for e in range(E)]
                for t in range(n)]
    np.testing.assert_allclose(returns.reshape(n, E), expected, rtol=1e-5)
    assert observations.shape == (n * E, 4)


def test_nan_guard_stops_the_run():
    agent = _linear_agent()
    x = np.zeros((3, 4), np.float32)
    agent.update(x, np.zeros(3, np.int32), np.array([1.0, np.nan, 0.0], np.float32))
    with pytest.raises(NonFiniteLossError, match="non-finite"):
        check_finite(agent.state)


def _weights(result):
    agent = result.agent
    return agent.policy.get_weights() + agent.value.get_weights() + [v.numpy() for v in agent.optimizer.variables()]


@pytest.mark.parametrize("algo", ["a2c", "reinforce"])
def test_resume_equals_uninterrupted(tmp_path, algo):
    whole = train(PGConfig(**TINY, algo=algo), str(tmp_path / "whole"), log=None)
    # 198 steps: mid-rollout (A2C's rollouts are 10 steps) and mid-episode (REINFORCE)
    train(PGConfig(**{**TINY, "total_steps": 198}, algo=algo), str(tmp_path / "split"), log=None)
    resumed = train(PGConfig(**TINY, algo=algo), str(tmp_path / "split"), resume=True, log=None)
    assert resumed.metrics["steps"] == whole.metrics["steps"] == 400
    assert resumed.metrics["updates"] == whole.metrics["updates"] > 0
    assert resumed.metrics["history"] == whole.metrics["history"]
    for a, b in zip(_weights(whole), _weights(resumed)):
        np.testing.assert_array_equal(a, b)  # bit-exact: both networks, Adam's moments and step


@pytest.mark.slow
def test_a2c_learns_cartpole():
    result = train(PGConfig(total_steps=16_000, log_every=4000, checkpoint_every=16_000), None, log=None)
    returns = [e["return"] for e in result.metrics["history"]]
    assert np.mean(returns[:20]) < 40  # a random policy lasts ~22 steps
    assert np.mean(returns[-20:]) > 150


def _one_line_error(capsys, argv):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def _tiny_flags(algo):
    common = ["--total-steps", "200", "--hidden", "8", "--log-every", "100", "--num-envs", "2"]
    if algo in ("dqn", "double_dqn"):
        return common + ["--learning-starts", "50", "--train-every", "50", "--gradient-steps", "2",
                         "--buffer-size", "300"]
    return common + ["--n-steps", "4", "--batch-episodes", "2"]


@pytest.mark.parametrize("algo", ["a2c", "dqn"])
def test_cli_train_evaluate_export(tmp_path, capsys, algo):
    run = str(tmp_path / "run")
    assert cli.main(["rl", "train", "--algo", algo, "--env", "CartPole-v1", *_tiny_flags(algo), "--out", run]) == 0
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["config"]["algo"] == algo and config["config"]["hidden"] == [8]
    # the generic verbs forward to `rl` through the run's task
    assert cli.main(["evaluate", "--run", run]) == 0
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["eval_episodes"] == 100 and metrics["steps"] == 200 and 8 <= metrics["eval_return_mean"] <= 500
    out = str(tmp_path / "export")
    assert cli.main(["export", "--run", run, "--out", out]) == 0
    report = json.load(open(os.path.join(out, "export.json")))
    assert report["action_agreement"] == {"saved_model": 1.0, "tflite": 1.0}
    output = "q_values" if algo == "dqn" else "logits"
    assert report["outputs"] == ["actions", output]
    # the artifacts themselves: the SavedModel's and the LiteRT interpreter's actions are the argmax of the output
    from cs231n_tf.export import TFLiteRunner

    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    served = tf.saved_model.load(os.path.join(out, "saved_model")).signatures["serving_default"](
        observations=tf.constant(x))
    lite = TFLiteRunner(model_path=os.path.join(out, "policy.tflite")).run(observations=x)
    np.testing.assert_array_equal(served["actions"].numpy(), np.argmax(served[output].numpy(), 1))
    np.testing.assert_array_equal(lite["actions"], served["actions"].numpy())
    np.testing.assert_allclose(lite[output], served[output].numpy(), rtol=1e-4, atol=1e-5)
    assert cli.main(["rl", "train", "--out", run, "--resume", "--total-steps", "240"]) == 0
    assert json.load(open(os.path.join(run, "metrics.json")))["steps"] == 240
    capsys.readouterr()
    assert "--resume keeps the run's settings" in _one_line_error(
        capsys, ["rl", "train", "--out", run, "--resume", "--algo", "a2c" if algo != "a2c" else "reinforce"])


class _BadTableEnv(gym.Env):
    """Two states, one action whose probabilities sum to 0.5: a transition table planning must refuse."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(1)
    P = {0: {0: [(0.5, 1, 0.0, True)]}, 1: {0: [(1.0, 1, 0.0, True)]}}


def test_cli_bad_input(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert "discrete action space" in _one_line_error(capsys, ["rl", "train", "--algo", "a2c", "--env",
                                                               "Pendulum-v1", "--out", out])
    assert "discrete action space" in _one_line_error(capsys, ["rl", "train", "--algo", "dqn", "--env",
                                                               "MountainCarContinuous-v0", "--out", out])
    assert "close matches: CartPole-v1" in _one_line_error(capsys, ["rl", "train", "--algo", "reinforce", "--env",
                                                                    "CartPol-v1", "--out", out])
    assert "gamma must be a number in (0, 1]" in _one_line_error(capsys, ["rl", "train", "--algo", "a2c", "--gamma",
                                                                          "1.5", "--out", out])
    assert "--buffer-size does not apply to reinforce/a2c" in _one_line_error(
        capsys, ["rl", "train", "--algo", "a2c", "--buffer-size", "10", "--out", out])
    assert "--n-steps does not apply to dqn/double_dqn" in _one_line_error(
        capsys, ["rl", "train", "--n-steps", "10", "--out", out])
    assert "does not exist" in _one_line_error(capsys, ["rl", "export", "--run", str(tmp_path / "none")])
    assert "positive integer" in _one_line_error(capsys, ["rl", "evaluate", "--run", out, "--episodes", "0"])
    if "cs231n_tf_test/BadTable-v0" not in gym.registry:
        gym.register("cs231n_tf_test/BadTable-v0", entry_point=_BadTableEnv)
    assert "sum to 0.5, not 1" in _one_line_error(capsys, ["rl", "plan", "--env", "cs231n_tf_test/BadTable-v0",
                                                           "--out", out])
    with pytest.raises(ConfigError, match="multiple of num_envs"):
        PGConfig(num_envs=3, total_steps=100).validate()
