"""Atari (the `atari` extra): Nature-preprocessed games, exact capture/restore, and a DQN smoke run."""

import json

import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from cs231n_tf.rl import envs, envstate  # noqa: E402

PONG = "cs231n_tf/Pong-v5"


def _rollout(env, actions):
    out = []
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(int(a))
        out.append((obs.copy(), reward, terminated, truncated))
    return out


def test_preprocessed_pong_gives_nature_frames():
    env = envs.make_env(PONG)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8
    assert env.observation_space.shape == (84, 84, 4)
    nxt, *_ = env.step(0)
    # The stack shifts by one frame per step: the new stack's first three are the old last three.
    np.testing.assert_array_equal(nxt[..., :3], obs[..., 1:])


def test_capture_and_restore_reproduce_the_emulator_and_the_frame_stack():
    actions = np.random.default_rng(0).integers(0, 6, 120)
    env = envs.make_env(PONG)
    env.reset(seed=3)
    _rollout(env, actions[:40])
    envstate.check_capturable(env)
    saved = json.loads(json.dumps(envstate.capture(env)))  # what a checkpoint holds
    expected = _rollout(env, actions[40:])

    fresh = envs.make_env(PONG)
    fresh.reset(seed=99)  # a different episode, then overwritten
    envstate.restore(fresh, saved)
    got = _rollout(fresh, actions[40:])
    for (o1, r1, t1, u1), (o2, r2, t2, u2) in zip(expected, got):
        np.testing.assert_array_equal(o1, o2)
        assert (r1, t1, u1) == (r2, t2, u2)


@pytest.mark.slow
def test_dqn_smoke_run_on_pong_resumes_exactly(tmp_path):
    """1,200 environment steps of DQN with the Nature network on Pong, stopped at 600 and resumed: bit-exact."""
    from cs231n_tf.rl.dqn import DQNConfig, train

    tiny = dict(env=PONG, total_steps=1200, learning_starts=400, buffer_size=1500, batch_size=8, train_every=200,
                gradient_steps=2, epsilon_decay_steps=800, checkpoint_every=600, log_every=400, lr=1e-4)
    whole = train(DQNConfig(**tiny), str(tmp_path / "whole"), log=None)
    train(DQNConfig(**{**tiny, "total_steps": 600}), str(tmp_path / "split"), log=None)
    resumed = train(DQNConfig(**tiny), str(tmp_path / "split"), resume=True, log=None)
    assert whole.agent.q_network.input_shape == (None, 84, 84, 4)
    assert whole.metrics["steps"] == resumed.metrics["steps"] == 1200
    assert whole.metrics["updates"] == resumed.metrics["updates"] == 5 * 2  # rounds at 400, 600, ..., 1200
    assert whole.metrics["history"] == resumed.metrics["history"]
    for a, b in zip(whole.agent.q_network.get_weights() + whole.agent.target_network.get_weights(),
                    resumed.agent.q_network.get_weights() + resumed.agent.target_network.get_weights()):
        np.testing.assert_array_equal(a, b)
