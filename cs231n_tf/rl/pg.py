"""Policy gradients on gymnasium vector environments (lecture 14): REINFORCE and A2C, with exact resume.

- ``algo="reinforce"`` (Williams 1992) with the two variance reductions the lecture gives: each
  ``log pi(a_t | s_t)`` is weighted by its reward-to-go (:func:`~cs231n_tf.rl.policy_gradient.reward_to_go`)
  rather than the episode's return, and a learned value baseline ``V(s_t)`` is subtracted. Whole
  episodes are collected on ``num_envs`` environments; an update runs once ``batch_episodes`` of them
  have finished, on all their steps.
- ``algo="a2c"`` (advantage actor-critic, Mnih et al. 2016, synchronous): every ``n_steps`` vector
  steps, one update on the ``n_steps x num_envs`` rollout with the n-step bootstrapped returns
  (:func:`~cs231n_tf.rl.policy_gradient.n_step_returns`), the advantage ``G_t - V(s_t)``, the critic's
  squared error (``value_coef``) and an entropy bonus (``entropy_coef``).

Both minimise ``policy_loss + value_coef * value_loss - entropy_coef * entropy`` in one compiled
update (:class:`~cs231n_tf.rl.policies.ActorCritic`). An episode cut by a time limit (truncated, not
terminated) is not an end of the task: its last reward gets ``gamma V(s_final)`` added, so both
returns bootstrap there. Actions are sampled on the host from the policy's softmax with the
collector's checkpointed generator.

The loop is built from the engine's parts as DQN's is (:mod:`cs231n_tf.rl.loop`): the run state
counts environment steps, checkpoints hold the networks, Adam, the counters, every environment's
state, the current observations and the partial rollout (A2C) or the episodes in progress and
those waiting for the next update (REINFORCE), so a resumed run continues bit-exactly; the NaN
guard stops a run before a non-finite loss is saved; TensorBoard gets ``episode_return``,
``episode_length``, ``loss``, ``policy_loss``, ``value_loss``, ``entropy`` and
``env_steps_per_second``; ``metrics.json`` and ``returns.png`` are written at the end.

Defaults follow rl-baselines3-zoo's CartPole-v1 A2C (8 environments, 5-step rollouts, gamma 0.99,
value coefficient 0.5, gradient norm 0.5, 64-64 tanh MLPs) with Adam at 7e-4 instead of RMSprop.
"""

import dataclasses
import os
import time

import gymnasium as gym
import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.engine.reporter import Reporter
from cs231n_tf.engine.state import restore_checkpoint
from cs231n_tf.errors import ConfigError, RunDirError
from cs231n_tf.rl.envs import check_env_id, make_env
from cs231n_tf.rl.loop import (
    RunCheckpoints, VectorCollector, check_discrete, episode_scalars, evaluation_seed, finish_metrics, mean_return,
    open_run, policy_returns, write_evaluation,
)
from cs231n_tf.rl.mdp import check_gamma
from cs231n_tf.rl.policies import ActorCritic, mlp
from cs231n_tf.rl.policy_gradient import n_step_returns, reward_to_go
from cs231n_tf.train.config import _flag

NAME = "rl_pg"
ALGOS = ("reinforce", "a2c")
LOSSES = ("loss", "policy_loss", "value_loss", "entropy")

_ALGO, _NET, _RUN = "algorithm", "network", "run directory and checkpoints"


@dataclasses.dataclass
class PGConfig:
    """Everything that determines a REINFORCE or A2C run (saved in the run's ``config.json``)."""

    algo: str = _flag("a2c", "reinforce (whole episodes, reward-to-go) or a2c (n-step returns)", choices=ALGOS,
                      group=_ALGO)
    env: str = _flag("CartPole-v1", "gymnasium environment id (vector observations, discrete actions)",
                     group=_ALGO)
    total_steps: int = _flag(200_000, "environment steps in all (resumable)", kind="positive_int", group=_ALGO)
    num_envs: int = _flag(8, "environments stepped side by side (gymnasium.vector.SyncVectorEnv)",
                          kind="positive_int", group=_ALGO)
    n_steps: int = _flag(5, "a2c: vector steps per rollout (the n of the n-step return)", kind="positive_int",
                         group=_ALGO)
    batch_episodes: int = _flag(8, "reinforce: finished episodes per update", kind="positive_int", group=_ALGO)
    seed: int = _flag(0, "seed of the weights, environments and action sampling", kind="non_negative_int",
                      group=_ALGO)
    gamma: float = _flag(0.99, "discount, in (0, 1]", kind="positive_float", group=_ALGO)
    lr: float = _flag(7e-4, "Adam learning rate", kind="positive_float")
    value_coef: float = _flag(0.5, "weight of the critic's squared error", kind="positive_float")
    entropy_coef: float = _flag(0.0, "weight of the entropy bonus", kind="non_negative_float")
    clip_norm: float = _flag(0.5, "clip the gradient's global norm to this", kind="positive_float")
    hidden: list = _flag(None, "hidden widths of the policy and of the value MLP", kind="name_list",
                         factory=lambda: [64, 64], group=_NET, metavar="W,W")
    xla: bool = _flag(False, "compile the update with XLA (jit_compile)", kind="bool", group=_NET)
    checkpoint_every: int = _flag(10_000, "checkpoint every N environment steps (and at the end)",
                                  kind="positive_int", group=_RUN)
    keep_checkpoints: int = _flag(3, "checkpoints kept", kind="positive_int", group=_RUN)
    log_every: int = _flag(1000, "TensorBoard scalars every N environment steps", kind="positive_int", group=_RUN)

    def validate(self):
        validation.one_of("algo", self.algo, ALGOS)
        check_env_id(self.env)
        for name in ("total_steps", "num_envs", "n_steps", "batch_episodes", "checkpoint_every",
                     "keep_checkpoints", "log_every"):
            validation.positive_int(name, getattr(self, name))
        validation.non_negative_int("seed", self.seed)
        self.gamma = check_gamma(self.gamma)
        for name in ("lr", "value_coef", "clip_norm"):
            validation.positive_number(name, getattr(self, name))
        validation.positive_number("entropy_coef", self.entropy_coef, allow_zero=True)
        try:
            self.hidden = [int(h) for h in self.hidden]
        except (TypeError, ValueError):
            raise ConfigError(f"hidden must be positive layer widths, got {self.hidden!r}") from None
        for width in self.hidden:
            validation.positive_int("hidden", width)
        if self.total_steps % self.num_envs:
            raise ConfigError(f"total_steps {self.total_steps} must be a multiple of num_envs {self.num_envs} "
                              "(each vector step is num_envs environment steps)")
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        return rundir.config_from_json(cls, obj, "policy-gradient config")


def check_spaces(config, observation_space, action_space):
    """:class:`ConfigError` unless actions are ``Discrete`` and observations vectors (the MLP policy's input)."""
    check_discrete(config.env, action_space, config.algo)
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ConfigError(f"{config.algo} uses MLP policies on vector observations; {config.env} has "
                          f"{observation_space}")


def build_agent(config, observation_space, n_actions, state=None):
    """The :class:`ActorCritic` of ``config``, its weights seeded by ``config.seed``."""
    tf.keras.utils.set_random_seed(config.seed)
    return ActorCritic(observation_space.shape[0], n_actions, config.hidden, config.lr, config.value_coef,
                       config.entropy_coef, config.clip_norm, state=state, xla=config.xla)


def sample_actions(logits, rng):
    """One action per row of ``logits`` ``(E, A)`` from its softmax, by inverse CDF on ``rng.random(E)``."""
    logits = np.asarray(logits, np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(logits))[:, None]
    return np.minimum((cdf < u).sum(axis=1), logits.shape[1] - 1)


class Collector(VectorCollector):
    """The vector environment and its episodes, and what an update has not consumed yet.

    A2C keeps the current rollout (``rollout``: per vector step ``(observations, actions, rewards,
    done)``); REINFORCE the steps of every environment's episode in progress (``running[e]``:
    ``(observations, actions, rewards)``) and the finished episodes waiting for the next update
    (``ready``: ``(observations, actions, reward-to-go)``). All are checkpointed.
    """

    def __init__(self, config):
        super().__init__(config)
        check_spaces(config, self.envs.single_observation_space, self.envs.single_action_space)
        self.rollout = []
        self.running = [[] for _ in range(config.num_envs)]
        self.ready = []

    def collect(self, agent, step):
        """Act in every environment with the sampled policy and store the step; ``step`` counts after it."""
        c = self.config
        logits, _ = agent.forward(tf.convert_to_tensor(self.observations, tf.float32))
        actions = sample_actions(logits.numpy(), self.rng)
        observations, rewards, terminated, truncated, final = self.step(actions, step)
        rewards = rewards.astype(np.float64)
        cut = truncated & ~terminated
        if cut.any():  # a time limit is not the task's end: bootstrap from the critic's value there
            _, values = agent.forward(tf.convert_to_tensor(np.stack(final[cut]).astype(np.float32)))
            rewards[cut] += c.gamma * values.numpy()
        done = terminated | truncated
        if c.algo == "a2c":
            self.rollout.append((observations, actions, rewards, done))
            return
        for e in range(c.num_envs):
            self.running[e].append((observations[e], actions[e], rewards[e]))
            if done[e]:
                obs, acts, rews = (np.array(x) for x in zip(*self.running[e]))
                self.ready.append((obs, acts, reward_to_go(rews, c.gamma)))
                self.running[e] = []

    def batch(self, agent):
        """The ``(observations, actions, returns)`` of an update if one is due (and clear them), else None."""
        c = self.config
        if c.algo == "a2c":
            if len(self.rollout) < c.n_steps:
                return None
            observations, actions, rewards, done = (np.stack(x) for x in zip(*self.rollout))
            _, bootstrap = agent.forward(tf.convert_to_tensor(self.observations, tf.float32))
            returns = n_step_returns(rewards, done, bootstrap.numpy(), c.gamma)
            self.rollout = []
            return _batch(observations.reshape((-1,) + observations.shape[2:]), actions.reshape(-1),
                          returns.reshape(-1))
        if len(self.ready) < c.batch_episodes:
            return None
        observations, actions, returns = (np.concatenate(x) for x in zip(*self.ready))
        self.ready = []
        return _batch(observations, actions, returns)

    def extra_arrays(self):
        arrays = {}
        if self.rollout:
            for name, values in zip(("obs", "actions", "rewards", "done"), zip(*self.rollout)):
                arrays[f"rollout_{name}"] = np.stack(values)
        for e, steps in enumerate(self.running):
            if steps:
                for name, values in zip(("obs", "actions", "rewards"), zip(*steps)):
                    arrays[f"running{e}_{name}"] = np.stack(values)
        for i, episode in enumerate(self.ready):
            for name, values in zip(("obs", "actions", "returns"), episode):
                arrays[f"ready{i}_{name}"] = values
        return arrays

    def load_extra_arrays(self, arrays):
        rollout = [arrays.get(f"rollout_{name}") for name in ("obs", "actions", "rewards", "done")]
        self.rollout = list(zip(*rollout)) if rollout[0] is not None else []
        self.running = []
        for e in range(self.config.num_envs):
            steps = [arrays.get(f"running{e}_{name}") for name in ("obs", "actions", "rewards")]
            self.running.append(list(zip(*steps)) if steps[0] is not None else [])
        self.ready = []
        while f"ready{len(self.ready)}_obs" in arrays:
            i = len(self.ready)
            self.ready.append(tuple(arrays[f"ready{i}_{name}"] for name in ("obs", "actions", "returns")))


def _batch(observations, actions, returns):
    return (tf.convert_to_tensor(observations, tf.float32), tf.convert_to_tensor(actions, tf.int32),
            tf.convert_to_tensor(returns, tf.float32))


@dataclasses.dataclass
class PGResult:
    run_dir: str
    metrics: dict
    agent: ActorCritic


def load_run_config(run_dir):
    """The :class:`PGConfig` of a REINFORCE/A2C run; other runs raise :class:`RunDirError`."""
    obj = rundir.read_config(run_dir)
    rundir.require_task(run_dir, NAME)
    if "config" not in obj:
        raise RunDirError(f"{os.path.join(run_dir, rundir.CONFIG_FILE)} has no policy-gradient config")
    return PGConfig.from_json(obj["config"]).validate()


def train(config, run_dir=None, resume=False, log=print, progress=False):
    """Train REINFORCE or A2C for ``config.total_steps`` environment steps; returns a :class:`PGResult`.

    ``resume`` continues the run in ``run_dir`` from its newest readable checkpoint (a larger
    ``total_steps`` extends it). ``metrics.json`` gets ``steps``, ``updates``, ``episodes``,
    ``train_return_mean_100``, the last update's losses, ``env_steps_per_second`` and the
    per-episode ``history``; ``returns.png`` the return curve.
    """
    config = config.validate()
    log = log or (lambda _: None)
    run_dir = open_run(run_dir, resume, NAME)
    collector = Collector(config)
    agent = build_agent(config, collector.envs.single_observation_space, collector.envs.single_action_space.n)
    checkpoints = RunCheckpoints(tf.train.Checkpoint(**agent.checkpoint_objects(), collector=collector), run_dir,
                                 config.keep_checkpoints, agent.state)
    if resume:
        path = checkpoints.restore(log)
        log(f"resumed from {path} (step {int(agent.state.step.numpy())})")
    if run_dir is not None:
        rundir.write_config(run_dir, NAME, {"config": config.to_json()})
    reporter = Reporter(run_dir, progress=progress)
    state, n = agent.state, config.num_envs
    step = int(state.step.numpy())
    log(f"training {config.algo} on {config.env} ({n} env(s)) from step {step} to {config.total_steps} -> "
        f"{run_dir or 'memory'}")
    start_wall, start_step = time.perf_counter(), step
    last = None
    try:
        while step < config.total_steps:
            step += n
            collector.collect(agent, step)
            batch = collector.batch(agent)
            if batch is not None:
                state.step.assign(step)  # the NaN guard records this step
                last = agent.update(*batch)
            if step % config.log_every < n:
                checkpoints.check()
                speed = (step - start_step) / max(time.perf_counter() - start_wall, 1e-9)
                scalars = {"env_steps_per_second": speed, **episode_scalars(collector.episodes)}
                if last is not None:
                    scalars.update({k: float(last[k].numpy()) for k in LOSSES})
                reporter.scalars("train", step, scalars)
            if step % config.checkpoint_every < n:
                checkpoints.save(step)
        checkpoints.save(step)
    finally:
        reporter.close()
        collector.close()
    wall = time.perf_counter() - start_wall
    episodes = collector.episodes
    metrics = {"algo": config.algo, "steps": step, "updates": int(agent.updates.numpy()), "episodes": len(episodes),
               "train_return_mean_100": mean_return(episodes), "wall_seconds": wall,
               "env_steps_per_second": (step - start_step) / max(wall, 1e-9), "checkpoint": checkpoints.latest}
    metrics.update({f"final_{k}": float(last[k].numpy()) if last is not None else float("nan") for k in LOSSES})
    metrics = finish_metrics(run_dir, metrics, episodes, f"{config.algo} on {config.env}")
    log(f"step {step}: {len(episodes)} episodes, mean return of the last 100 {metrics['train_return_mean_100']:.1f}, "
        f"{metrics['env_steps_per_second']:.0f} env steps/s")
    return PGResult(run_dir, metrics, agent)


def greedy_returns(policy, env_id, episodes, seed, max_steps=100_000):
    """Returns ``[episodes]`` of the policy network's argmax actions (:func:`~cs231n_tf.rl.loop.policy_returns`)."""
    act = tf.function(lambda x: tf.argmax(policy(tf.cast(x, tf.float32), training=False), axis=1,
                                          output_type=tf.int64), reduce_retracing=True)
    return policy_returns(lambda x: act(x).numpy(), env_id, episodes, seed, max_steps)


def load_policy(run_dir, checkpoint=None):
    """``(config, policy network, checkpoint path)`` of a REINFORCE/A2C run (default: the latest checkpoint)."""
    config = load_run_config(run_dir)
    checkpoint = rundir.latest_checkpoint(run_dir, checkpoint)
    env = make_env(config.env)
    check_spaces(config, env.observation_space, env.action_space)
    policy = mlp(env.observation_space.shape[0], env.action_space.n, config.hidden, "policy")
    env.close()
    restore_checkpoint(tf.train.Checkpoint(policy=policy), checkpoint, partial=True)
    return config, policy, checkpoint


def evaluate_run(run_dir, episodes=100, seed=None, checkpoint=None):
    """Mean and std of the greedy (most probable action) return over ``episodes`` episodes, into ``metrics.json``.

    ``seed`` defaults to the run's seed + 10000 (episodes unseen in training). Returns
    ``{"eval_return_mean", "eval_return_std", "eval_episodes", "eval_seed", "eval_checkpoint"}``.
    """
    config, policy, checkpoint = load_policy(run_dir, checkpoint)
    seed = evaluation_seed(config, seed)
    return write_evaluation(run_dir, greedy_returns(policy, config.env, episodes, seed), seed, checkpoint)
