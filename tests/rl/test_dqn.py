"""DQN: network sizes by arithmetic, the loss and targets against NumPy/Keras, replay, exact resume, the CLI."""

import json
import os

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import cli
from cs231n_tf.errors import ConfigError, NonFiniteLossError
from cs231n_tf.rl import envstate
from cs231n_tf.rl.dqn import (
    DQNAgent, DQNConfig, check_spaces, greedy_returns, huber, linear_epsilon, td_targets, train,
)
from cs231n_tf.rl.qnetworks import mlp_q_network, nature_q_network
from cs231n_tf.rl.replay import ReplayBuffer

TINY = dict(total_steps=400, learning_starts=100, train_every=50, gradient_steps=4, hidden=[16, 16],
            buffer_size=500, batch_size=16, checkpoint_every=200, log_every=100, epsilon_decay_steps=300)


def conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def dense(n_in, n_out):
    return n_in * n_out + n_out


@pytest.mark.parametrize("actions", [4, 6])
def test_nature_network_parameter_count(actions):
    # 84 -> (84 - 8) / 4 + 1 = 20 -> (20 - 4) / 2 + 1 = 9 -> 9 - 3 + 1 = 7: 7 x 7 x 64 = 3136 features.
    body = conv(8, 4, 32) + conv(4, 32, 64) + conv(3, 64, 64)
    expected = body + dense(3136, 512) + dense(512, actions)
    assert expected == {4: 1_686_180, 6: 1_687_206}[actions]
    model = nature_q_network(actions)
    assert model.count_params() == expected
    assert model.output_shape == (None, actions)
    dueling = nature_q_network(actions, dueling=True)
    assert dueling.count_params() == body + 2 * dense(3136, 512) + dense(512, 1) + dense(512, actions)


def test_dueling_head_combines_value_and_centred_advantage():
    model = mlp_q_network(3, 5, hidden=(8, 6), dueling=True)
    assert model.count_params() == dense(3, 8) + 2 * dense(8, 6) + dense(6, 1) + dense(6, 5)
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    parts = tf.keras.Model(model.input, [model.get_layer("value").output, model.get_layer("advantage").output])
    value, advantage = (t.numpy() for t in parts(x))
    np.testing.assert_allclose(model(x).numpy(), value + advantage - advantage.mean(axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)


def test_huber_matches_keras_and_clips_the_gradient():
    x = tf.constant(np.linspace(-4, 4, 41), tf.float32)
    for delta in (0.5, 1.0, 2.0):
        keras = tf.keras.losses.Huber(delta=delta, reduction="none")(tf.zeros([41, 1]), x[:, None])
        np.testing.assert_allclose(huber(x, delta).numpy(), keras.numpy(), rtol=1e-6, atol=1e-7)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(huber(x, delta))
        np.testing.assert_allclose(tape.gradient(loss, x).numpy(), np.clip(x.numpy(), -delta, delta), atol=1e-6)


def test_td_targets_dqn_and_double():
    rng = np.random.default_rng(1)
    r = rng.normal(size=6).astype(np.float32)
    done = np.array([0, 1, 0, 0, 1, 0], np.float32)
    q_target = rng.normal(size=(6, 3)).astype(np.float32)
    q_online = rng.normal(size=(6, 3)).astype(np.float32)
    dqn = td_targets(r, done, q_target, q_online, 0.9, double=False).numpy()
    np.testing.assert_allclose(dqn, r + 0.9 * (1 - done) * q_target.max(axis=1), rtol=1e-6)
    double = td_targets(r, done, q_target, q_online, 0.9, double=True).numpy()
    picked = q_target[np.arange(6), q_online.argmax(axis=1)]
    np.testing.assert_allclose(double, r + 0.9 * (1 - done) * picked, rtol=1e-6)


def test_linear_epsilon():
    assert [linear_epsilon(s, 1.0, 0.1, 100) for s in (0, 50, 100, 1000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    assert float(linear_epsilon(tf.constant(50, tf.int64), 1.0, 0.1, 100)) == pytest.approx(0.55)


def test_replay_ring_buffer_sampling_and_round_trip():
    buffer = ReplayBuffer(5, (2,), seed=3)
    for i in range(7):  # wraps: the two oldest transitions are overwritten
        buffer.add(np.full((1, 2), i), [i % 2], [float(i)], np.full((1, 2), i + 1), [i == 6])
    assert len(buffer) == 5 and sorted(buffer.rewards.tolist()) == [2, 3, 4, 5, 6]
    copy = ReplayBuffer(5, (2,), seed=99)
    copy.deserialize(buffer.serialize())
    first, second = buffer.sample(4, 3), copy.sample(4, 3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    obs, actions, rewards, next_obs, terminated = first
    assert obs.shape == (3, 4, 2) and np.array_equal(obs[..., 0], rewards) and np.array_equal(next_obs, obs + 1)
    assert np.array_equal(actions, rewards.astype(int) % 2) and np.array_equal(terminated, rewards == 6)


def test_environment_state_capture_continues_the_same_trajectory():
    env, twin = gym.make("CartPole-v1"), gym.make("CartPole-v1")
    env.reset(seed=5)
    twin.reset(seed=123)
    for _ in range(7):
        env.step(1)
    envstate.restore(twin, json.loads(json.dumps(envstate.capture(env))))
    for t in range(40):
        a = t % 2
        got, want = twin.step(a), env.step(a)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1:4] == want[1:4]
        if want[2]:
            np.testing.assert_array_equal(twin.reset()[0], env.reset()[0])  # the generator continues too


def _agent(**overrides):
    config = DQNConfig(**{**TINY, **overrides}).validate()
    env = gym.make(config.env)
    return DQNAgent(config, env.observation_space, env.action_space.n), config


def _batch(k=3, b=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(k, b, 4)).astype(np.float32), rng.integers(0, 2, (k, b)),
            rng.normal(size=(k, b)).astype(np.float32), rng.normal(size=(k, b, 4)).astype(np.float32),
            (rng.random((k, b)) < 0.2).astype(np.float32))


@pytest.mark.parametrize("algo", ["dqn", "double_dqn"])
def test_loss_is_the_huber_td_error(algo):
    agent, config = _agent(algo=algo)
    obs, actions, rewards, next_obs, done = (x[0] for x in _batch())
    agent.q_network.set_weights([w + 0.1 for w in agent.q_network.get_weights()])  # online != target
    q = agent.q_network(obs).numpy()
    q_next_target = agent.target_network(next_obs).numpy()
    q_next_online = agent.q_network(next_obs).numpy()
    a_star = q_next_online.argmax(1) if algo == "double_dqn" else q_next_target.argmax(1)
    y = rewards + config.gamma * (1 - done) * q_next_target[np.arange(16), a_star]
    error = q[np.arange(16), actions] - y
    expected = np.where(np.abs(error) <= 1, 0.5 * error ** 2, np.abs(error) - 0.5)
    np.testing.assert_allclose(agent.loss(obs, actions, rewards, next_obs, done).numpy(), expected, rtol=1e-5,
                               atol=1e-6)


def test_compiled_update_equals_eager_and_polyak_moves_the_target():
    batch = _batch()
    results = []
    for compiled in (True, False):
        agent, _ = _agent(target_update="polyak", tau=0.25)
        before_target = [w.copy() for w in agent.target_network.get_weights()]
        loss = (agent.update if compiled else agent.update_eager)(*batch)
        results.append((float(loss), agent.q_network.get_weights(), agent.target_network.get_weights(),
                        int(agent.updates.numpy())))
        if not compiled:
            # Three updates: target_k = 0.75 target_{k-1} + 0.25 online_k; check the last from the online weights.
            assert results[-1][3] == 3
            assert not np.allclose(before_target[0], results[-1][2][0])
    (loss_c, online_c, target_c, _), (loss_e, online_e, target_e, _) = results
    assert loss_c == pytest.approx(loss_e, rel=1e-5)
    for a, b in zip(online_c + target_c, online_e + target_e):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    agent, _ = _agent()
    target, online = agent.target_network.get_weights(), [w + 1.0 for w in agent.q_network.get_weights()]
    agent.q_network.set_weights(online)
    agent.polyak_update(0.1)
    for t_new, t, o in zip(agent.target_network.get_weights(), target, online):
        np.testing.assert_allclose(t_new, 0.9 * t + 0.1 * o, rtol=1e-6)


def test_nan_guard_stops_the_run():
    agent, _ = _agent()
    obs, actions, rewards, next_obs, done = _batch()
    rewards[1, 3] = np.nan
    agent.update(obs, actions, rewards, next_obs, done)
    from cs231n_tf.engine.state import check_finite

    with pytest.raises(NonFiniteLossError, match="non-finite"):
        check_finite(agent.state)


def test_greedy_returns_match_a_plain_gymnasium_loop():
    agent, _ = _agent()
    returns = greedy_returns(agent.q_network, "CartPole-v1", 3, seed=40)
    for i in range(3):
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=40 + i)
        total, done = 0.0, False
        while not done:
            action = int(np.argmax(agent.q_network(obs[None]).numpy()[0]))
            obs, r, terminated, truncated, _ = env.step(action)
            total, done = total + r, terminated or truncated
        assert returns[i] == total


def _state(result):
    agent = result.agent
    return ([w for w in agent.q_network.get_weights()] + agent.target_network.get_weights()
            + [v.numpy() for v in agent.optimizer.variables()], result.metrics)


def test_resume_equals_uninterrupted(tmp_path):
    whole = train(DQNConfig(**TINY), str(tmp_path / "whole"), log=None)
    half = DQNConfig(**{**TINY, "total_steps": 200})
    train(half, str(tmp_path / "split"), log=None)
    resumed = train(DQNConfig(**TINY), str(tmp_path / "split"), resume=True, log=None)
    (w_whole, m_whole), (w_split, m_split) = _state(whole), _state(resumed)
    assert m_split["steps"] == m_whole["steps"] == 400
    assert m_split["updates"] == m_whole["updates"] == 7 * 4  # rounds at steps 100, 150, ..., 400
    assert m_split["history"] == m_whole["history"]  # every episode's end, return and length
    for a, b in zip(w_whole, w_split):
        np.testing.assert_array_equal(a, b)  # bit-exact: weights, target, Adam moments and step
    with pytest.raises(Exception, match="already holds a run"):
        train(DQNConfig(**TINY), str(tmp_path / "whole"), log=None)


def test_bad_configs():
    with pytest.raises(ConfigError, match="discrete action space"):
        check_spaces("Pendulum-v1", gym.make("Pendulum-v1").observation_space, gym.make("Pendulum-v1").action_space)
    with pytest.raises(ConfigError, match="close matches: CartPole-v1"):
        DQNConfig(env="CartPol-v1").validate()
    with pytest.raises(ConfigError, match="gamma"):
        DQNConfig(gamma=1.5).validate()
    with pytest.raises(ConfigError, match="multiples of num_envs"):
        DQNConfig(num_envs=3).validate()


def _one_line_error(capsys, argv):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_cli_train_evaluate_and_errors(tmp_path, capsys):
    run = str(tmp_path / "run")
    flags = ["--total-steps", "200", "--learning-starts", "50", "--train-every", "50", "--gradient-steps", "2",
             "--hidden", "8", "--buffer-size", "300", "--log-every", "100", "--num-envs", "2"]
    assert cli.main(["rl", "train", "--algo", "double_dqn", "--env", "CartPole-v1", *flags, "--out", run]) == 0
    assert cli.main(["rl", "evaluate", "--run", run, "--episodes", "4"]) == 0
    assert "eval_return_mean=" in capsys.readouterr().out
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["eval_episodes"] == 4 and metrics["steps"] == 200 and metrics["eval_return_std"] >= 0
    assert 8 <= metrics["eval_return_mean"] <= 500
    assert os.path.isfile(os.path.join(run, "returns.png")) and os.listdir(os.path.join(run, "logs", "train"))
    assert cli.main(["rl", "train", "--out", run, "--resume", "--total-steps", "300"]) == 0
    assert json.load(open(os.path.join(run, "metrics.json")))["eval_episodes"] == 4  # kept over the resume
    capsys.readouterr()
    assert "hidden" in _one_line_error(capsys, ["rl", "train", "--out", run, "--resume", "--hidden", "4"])
    assert "discrete action space" in _one_line_error(capsys, ["rl", "train", "--env", "Pendulum-v1",
                                                               "--out", str(tmp_path / "p")])
    assert "close matches" in _one_line_error(capsys, ["rl", "train", "--env", "CartPol-v1",
                                                       "--out", str(tmp_path / "q")])
    assert "does not exist" in _one_line_error(capsys, ["rl", "evaluate", "--run", str(tmp_path / "none")])
