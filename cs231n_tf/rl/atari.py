"""Atari for DQN (Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015).

``cs231n_tf/<Game>-v5`` (for every ``ALE/<Game>-v5`` once the ``atari`` extra, ale-py, is installed;
its wheels ship the ROMs) is the ALE game preprocessed as in the Nature paper by gymnasium's own
wrappers: ``ALE/<Game>-v5`` with ``frameskip=1`` inside ``AtariPreprocessing`` (each action repeated
4 frames with the last two max-pooled, up to 30 no-op starts, 84x84 grayscale, uint8), then
``FrameStackObservation(4)``, with the stack moved to the channel axis: observations are
``[84, 84, 4]`` uint8, what :func:`cs231n_tf.rl.qnetworks.nature_q_network` takes. The v5 games keep
their sticky actions (repeat probability 0.25, Machado et al. 2018) and full action sets off.

    cs231n-tf rl train --algo dqn --env cs231n_tf/Pong-v5 --buffer-size 100000 --lr 1e-4 ...

Exact resume works for these too: :mod:`cs231n_tf.rl.envstate` saves the emulator's state (with its
random generator) and the frame stack.
"""

import gymnasium as gym
import numpy as np

NAMESPACE = "cs231n_tf"
FRAME_STACK = 4
SCREEN_SIZE = 84


class FramesLast(gym.ObservationWrapper):
    """``[stack, H, W]`` observations -> ``[H, W, stack]`` (TensorFlow's NHWC)."""

    def __init__(self, env):
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(np.moveaxis(space.low, 0, -1), np.moveaxis(space.high, 0, -1),
                                                dtype=space.dtype)

    def observation(self, observation):
        return np.moveaxis(observation, 0, -1)


def make_atari(game, frame_stack=FRAME_STACK, screen_size=SCREEN_SIZE, noop_max=30, **kwargs):
    """``ALE/<game>-v5`` preprocessed as in the Nature DQN; ``kwargs`` go to ``gymnasium.make`` (e.g. ``render_mode``)."""
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    env = gym.make(f"ALE/{game}-v5", frameskip=1, **kwargs)
    env = AtariPreprocessing(env, frame_skip=4, screen_size=screen_size, grayscale_obs=True, noop_max=noop_max)
    return FramesLast(FrameStackObservation(env, frame_stack))


def register_preprocessed():
    """Register ``cs231n_tf/<Game>-v5`` for every registered ``ALE/<Game>-v5`` (idempotent)."""
    for env_id in [k for k in gym.registry if k.startswith("ALE/") and k.endswith("-v5")]:
        game = env_id[len("ALE/"):-len("-v5")]
        ours = f"{NAMESPACE}/{game}-v5"
        if ours not in gym.registry:
            gym.register(ours, entry_point="cs231n_tf.rl.atari:make_atari", kwargs={"game": game})
