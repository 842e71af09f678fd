"""Experience replay (Lin 1992; Mnih et al. 2015): a NumPy ring buffer of transitions, sampled uniformly.

:class:`ReplayBuffer` stores ``(observation, action, reward, next_observation, terminated)`` in
preallocated arrays; when full, the oldest transition is overwritten. Sampling draws indices with
its own seeded ``numpy.random.Generator``. It is a ``tf.train.experimental.PythonState``: a
``tf.train.Checkpoint`` holding it saves the filled part of the arrays, the write position and the
generator's state (as an ``.npz``, read back with ``allow_pickle=False``), so a resumed run samples
exactly the batches the uninterrupted one would have.
"""

import io
import json

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import RunDirError, ShapeError


class ReplayBuffer(tf.train.experimental.PythonState):
    """``capacity`` transitions of observations shaped ``observation_shape`` (dtype ``observation_dtype``)."""

    def __init__(self, capacity, observation_shape, observation_dtype=np.float32, seed=0):
        self.capacity = validation.positive_int("capacity", capacity)
        self.observation_shape = tuple(int(d) for d in observation_shape)
        shape = (self.capacity,) + self.observation_shape
        self.observations = np.zeros(shape, observation_dtype)
        self.next_observations = np.zeros(shape, observation_dtype)
        self.actions = np.zeros(self.capacity, np.int64)
        self.rewards = np.zeros(self.capacity, np.float32)
        self.terminated = np.zeros(self.capacity, np.float32)
        self.position = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.size

    def add(self, observations, actions, rewards, next_observations, terminated):
        """Append a batch of ``n`` transitions (``observations`` ``[n, *observation_shape]``...)."""
        observations = np.asarray(observations)
        n = len(observations)
        if observations.shape[1:] != self.observation_shape:
            raise ShapeError(f"observations of shape {observations.shape[1:]} do not fit a buffer of "
                             f"{self.observation_shape}")
        index = (self.position + np.arange(n)) % self.capacity
        self.observations[index] = observations
        self.next_observations[index] = next_observations
        self.actions[index] = actions
        self.rewards[index] = rewards
        self.terminated[index] = terminated
        self.position = int((self.position + n) % self.capacity)
        self.size = int(min(self.capacity, self.size + n))

    def sample(self, batch_size, batches=1):
        """``batches`` uniform batches as arrays shaped ``[batches, batch_size, ...]`` (with replacement)."""
        index = self.rng.integers(0, self.size, size=(batches, batch_size))
        return (self.observations[index], self.actions[index], self.rewards[index],
                self.next_observations[index], self.terminated[index])

    # ---- tf.train.experimental.PythonState ----------------------------------------------------

    def serialize(self):
        header = {"position": self.position, "size": self.size, "capacity": self.capacity,
                  "rng": self.rng.bit_generator.state}
        buffer = io.BytesIO()
        n = self.size
        np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), np.uint8),
                 observations=self.observations[:n], next_observations=self.next_observations[:n],
                 actions=self.actions[:n], rewards=self.rewards[:n], terminated=self.terminated[:n])
        return buffer.getvalue()

    def deserialize(self, string_value):
        try:
            data = np.load(io.BytesIO(string_value), allow_pickle=False)
            header = json.loads(data["header"].tobytes().decode())
        except (ValueError, OSError, KeyError) as exc:
            raise RunDirError(f"the checkpoint's replay buffer does not read ({exc})") from None
        if header["capacity"] != self.capacity or data["observations"].shape[1:] != self.observation_shape:
            raise RunDirError(f"the checkpoint's replay buffer holds {header['capacity']} transitions of "
                              f"{data['observations'].shape[1:]}; this run has {self.capacity} of "
                              f"{self.observation_shape}")
        n = header["size"]
        for name in ("observations", "next_observations", "actions", "rewards", "terminated"):
            getattr(self, name)[:n] = data[name]
        self.position, self.size = header["position"], n
        self.rng.bit_generator.state = header["rng"]
