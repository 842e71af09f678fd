"""The parts of an RL environment loop that DQN and the policy-gradient methods share.

RL does not train through :class:`~cs231n_tf.engine.Engine` (there is no data set to iterate; the
data come from acting), but its loops are built from the engine's parts, assembled here once:

- :func:`open_run`: the run-directory rules of the engine (a new run refuses a directory that
  holds one; ``resume`` needs a checkpoint of the same task);
- :class:`RunCheckpoints`: a :class:`~cs231n_tf.engine.state.CheckpointKeeper` whose ``save`` first
  runs the NaN guard (:func:`~cs231n_tf.engine.state.check_finite`), so a non-finite loss stops the
  run before it is saved;
- :class:`VectorCollector`: a ``gymnasium.vector.SyncVectorEnv`` (same-step autoreset) with its
  current observations, the episodes in progress and the finished ones, as a checkpointable
  ``PythonState`` (every sub-environment's state through :mod:`cs231n_tf.rl.envstate`), which the
  algorithms extend with what they keep between updates (a partial rollout);
- :func:`episode_scalars`, :func:`finish_metrics` (``metrics.json`` and the return curve),
  :func:`policy_returns` and :func:`write_evaluation` (``rl evaluate``).
"""

import io
import json
import os

import gymnasium as gym
import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.engine.state import CHECKPOINT_DIR, CheckpointKeeper, check_finite
from cs231n_tf.errors import ConfigError, RunDirError
from cs231n_tf.fileio import atomic_write_json
from cs231n_tf.rl import envstate
from cs231n_tf.rl.envs import check_env_id, make_env

RETURNS_PNG = "returns.png"
EVAL_SEED_OFFSET = 10_000  # evaluation episodes are seeded apart from the training ones


def make_vector_env(env_id, num_envs):
    """``num_envs`` copies of ``env_id`` in a same-step-autoreset ``SyncVectorEnv``."""
    env_id = check_env_id(env_id)
    return gym.vector.SyncVectorEnv([lambda: make_env(env_id) for _ in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def check_discrete(env_id, action_space, algorithm):
    """:class:`ConfigError` unless ``action_space`` is ``Discrete`` (``algorithm`` names who needs it)."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(f"{algorithm} needs a discrete action space; {env_id} has {action_space} (a continuous "
                          "space has no argmax over actions)")


def open_run(run_dir, resume, task):
    """The absolute run directory, created; ``None`` stays ``None`` (a run in memory)."""
    if run_dir is None:
        if resume:
            raise ConfigError("resume needs a run directory")
        return None
    run_dir = os.path.abspath(run_dir)
    exists = rundir.has_checkpoint(run_dir)
    if resume and not exists:
        raise RunDirError(f"cannot resume: {run_dir} has no checkpoint in {CHECKPOINT_DIR}/")
    if not resume and exists:
        raise RunDirError(f"{run_dir} already holds a run; resume it, or choose another output directory")
    if resume:
        rundir.require_task(run_dir, task)
    rundir.create(run_dir)
    return run_dir


class RunCheckpoints:
    """Checkpoints of ``checkpoint`` in ``run_dir/checkpoints`` (none without a run directory), NaN-guarded."""

    def __init__(self, checkpoint, run_dir, keep, state):
        self.state = state
        self.keeper = None
        if run_dir is not None:
            self.keeper = CheckpointKeeper(checkpoint, os.path.join(run_dir, CHECKPOINT_DIR), keep)
        self.saved_at = None

    @property
    def latest(self):
        return self.keeper.latest if self.keeper else None

    def restore(self, log):
        path = self.keeper.restore_latest(log=log)
        self.saved_at = int(self.state.step.numpy())
        return path

    def check(self):
        check_finite(self.state, self.latest)

    def save(self, step):
        """Record ``step`` in the run state, stop on a recorded NaN/Inf, save (once per step)."""
        self.state.step.assign(step)
        self.check()
        if self.keeper is not None and self.saved_at != step:
            self.keeper.save(step)
            self.saved_at = step


class VectorCollector(tf.train.experimental.PythonState):
    """``config.num_envs`` environments of ``config.env``, seeded ``config.seed + i``, and their episodes.

    A ``PythonState``: checkpoints hold the sub-environments' states (:func:`envstate.capture`), the
    observations, the running returns and lengths, the generator ``rng`` (seeded ``[seed, 1]``, for
    the algorithm's own randomness in acting) and every finished episode as ``(end step, return,
    length)``. Subclasses add what they keep between updates through :meth:`extra_arrays` and
    :meth:`load_extra_arrays`.
    """

    def __init__(self, config):
        self.config = config
        self.envs = make_vector_env(config.env, config.num_envs)
        for env in self.envs.envs:
            envstate.check_capturable(env)
        self.observations, _ = self.envs.reset(seed=[config.seed + i for i in range(config.num_envs)])
        self.returns = np.zeros(config.num_envs)
        self.lengths = np.zeros(config.num_envs, np.int64)
        self.rng = np.random.default_rng([config.seed, 1])
        self.episodes = []  # (environment step at the end, return, length)

    def step(self, actions, step):
        """Step every environment; returns ``(next_observations, rewards, terminated, truncated, final)``.

        ``final`` is the last observation of every episode that ended (``None`` where none did):
        with same-step autoreset ``next_observations`` already holds the new episodes' first ones.
        ``step`` is the environment step count after this step (recorded with finished episodes).
        """
        next_observations, rewards, terminated, truncated, info = self.envs.step(actions)
        done = terminated | truncated
        final = info["final_obs"] if done.any() else None
        self.returns += rewards
        self.lengths += 1
        for i in np.flatnonzero(done):
            self.episodes.append((int(step), float(self.returns[i]), int(self.lengths[i])))
            self.returns[i], self.lengths[i] = 0.0, 0
        previous, self.observations = self.observations, next_observations
        return previous, rewards, terminated, truncated, final

    def extra_arrays(self):
        """``{name: array}`` a subclass keeps in checkpoints besides the environments."""
        return {}

    def load_extra_arrays(self, arrays):
        """Set back what :meth:`extra_arrays` returned (``arrays`` maps the same names)."""

    def serialize(self):
        record = {"envs": [envstate.capture(env) for env in self.envs.envs],
                  "returns": self.returns.tolist(), "lengths": self.lengths.tolist(),
                  "rng": self.rng.bit_generator.state, "episodes": self.episodes}
        buffer = io.BytesIO()
        np.savez(buffer, record=np.frombuffer(json.dumps(record).encode(), np.uint8), observations=self.observations,
                 **{f"extra_{k}": v for k, v in self.extra_arrays().items()})
        return buffer.getvalue()

    def deserialize(self, string_value):
        try:
            data = np.load(io.BytesIO(string_value), allow_pickle=False)
            record = json.loads(data["record"].tobytes().decode())
            observations = data["observations"]
            extra = {k[len("extra_"):]: data[k] for k in data.files if k.startswith("extra_")}
        except (ValueError, OSError, KeyError) as exc:
            raise RunDirError(f"the checkpoint's environment state does not read ({exc})") from None
        if len(record["envs"]) != len(self.envs.envs):
            raise RunDirError(f"the checkpoint has {len(record['envs'])} environments, this run "
                              f"{len(self.envs.envs)}")
        for env, layers in zip(self.envs.envs, record["envs"]):
            envstate.restore(env, layers)
        self.observations = observations
        self.returns = np.array(record["returns"], np.float64)
        self.lengths = np.array(record["lengths"], np.int64)
        self.rng.bit_generator.state = record["rng"]
        self.episodes = [tuple(e) for e in record["episodes"]]
        self.load_extra_arrays(extra)

    def close(self):
        self.envs.close()


def mean_return(episodes, last=100):
    """Mean return of the last ``last`` finished episodes (NaN before the first)."""
    returns = [r for _, r, _ in episodes[-last:]]
    return float(np.mean(returns)) if returns else float("nan")


def episode_scalars(episodes, last=10):
    """TensorBoard's ``episode_return`` and ``episode_length``: means over the last ``last`` episodes."""
    recent = episodes[-last:]
    if not recent:
        return {}
    return {"episode_return": float(np.mean([r for _, r, _ in recent])),
            "episode_length": float(np.mean([length for _, _, length in recent]))}


def read_metrics(run_dir):
    """The run's ``metrics.json`` as a dict (``{}`` before there is one)."""
    path = os.path.join(run_dir, rundir.METRICS_FILE)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from None
    return obj if isinstance(obj, dict) else {}


def finish_metrics(run_dir, metrics, episodes, title):
    """Add the episode ``history`` to ``metrics``; with a run directory also keep the earlier ``eval_*``
    entries (a resumed run keeps its evaluation), draw ``returns.png`` and write ``metrics.json``."""
    metrics["history"] = [{"step": s, "return": r, "length": length} for s, r, length in episodes]
    if run_dir is None:
        return metrics
    from cs231n_tf.rl.plots import plot_returns

    previous = read_metrics(run_dir)
    metrics.update({k: v for k, v in previous.items() if k.startswith("eval_") and k not in metrics})
    if episodes:
        metrics["returns_png"] = plot_returns([s for s, _, _ in episodes], [r for _, r, _ in episodes],
                                              os.path.join(run_dir, RETURNS_PNG), title=title)
    rundir.write_metrics(run_dir, metrics)
    return metrics


def policy_returns(act, env_id, episodes, seed, max_steps=100_000):
    """Returns ``[episodes]`` of the policy ``act`` (observations ``[n, ...]`` -> actions ``[n]``).

    ``episodes`` environments (seeded ``seed, seed + 1, ...``) run side by side, one batched ``act``
    call per step, until each has finished its first episode, so short episodes are not over-counted.
    """
    episodes = validation.positive_int("episodes", episodes)
    envs = make_vector_env(env_id, episodes)
    try:
        observations, _ = envs.reset(seed=[seed + i for i in range(episodes)])
        returns = np.zeros(episodes)
        running = np.ones(episodes, bool)
        for _ in range(max_steps):
            actions = np.asarray(act(tf.convert_to_tensor(observations)))
            observations, rewards, terminated, truncated, _ = envs.step(actions)
            returns += rewards * running
            running &= ~(terminated | truncated)
            if not running.any():
                break
    finally:
        envs.close()
    return returns


def write_evaluation(run_dir, returns, seed, checkpoint):
    """``eval_return_mean``/``eval_return_std`` (and the episodes, seed, checkpoint) merged into ``metrics.json``."""
    result = {"eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
              "eval_episodes": int(len(returns)), "eval_seed": int(seed), "eval_checkpoint": checkpoint}
    metrics = read_metrics(run_dir)
    metrics.update(result)
    atomic_write_json(os.path.join(run_dir, rundir.METRICS_FILE), metrics)
    return result


def evaluation_seed(config, seed):
    """``seed``, or the run's seed + 10000 (episodes unseen in training)."""
    return validation.non_negative_int("seed", config.seed + EVAL_SEED_OFFSET if seed is None else seed)


def observation_batch(env_id, n, seed):
    """``n`` observations ``[n, ...]`` met by a uniformly random policy (seeded): a batch to verify exports on."""
    n = validation.positive_int("n", n)
    env = make_env(env_id)
    env.action_space.seed(seed)
    observation, _ = env.reset(seed=seed)
    batch = []
    while len(batch) < n:
        batch.append(observation)
        observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            observation, _ = env.reset()
    env.close()
    return np.stack(batch)
