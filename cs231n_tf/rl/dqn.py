"""Deep Q-learning (Mnih et al., Nature 2015; lecture 14) on gymnasium vector environments, with exact resume.

The pieces of the paper, each an option of :class:`DQNConfig`:

- a Q-network (:mod:`cs231n_tf.rl.qnetworks`: an MLP for vector observations, the Nature conv net
  for ``84 x 84 x 4`` frames; ``dueling`` heads);
- experience replay (:class:`~cs231n_tf.rl.replay.ReplayBuffer`), ``learning_starts`` transitions
  collected before the first update;
- a target network, copied every ``target_update_every`` environment steps (``target_update="hard"``)
  or moved towards the online one by ``tau`` after every update (``"polyak"``);
- epsilon-greedy collection with epsilon decaying linearly from ``epsilon_start`` to ``epsilon_end``
  over ``epsilon_decay_steps`` environment steps (:func:`linear_epsilon`);
- the Huber loss (:func:`huber`) of the TD error against ``y = r + gamma (1 - terminated) Q_target(s',
  a*)``, with ``a* = argmax_a Q_target(s', a)`` (DQN) or ``argmax_a Q_online(s', a)`` (Double DQN, van
  Hasselt et al. 2016; :func:`td_targets`); truncated episodes (time limits) bootstrap, only
  ``terminated`` ones do not.

Collection runs ``num_envs`` environments in a ``gymnasium.vector.SyncVectorEnv`` (same-step
autoreset) with one batched Q-network call per vector step. Every ``train_every`` environment steps
the update runs ``gradient_steps`` times inside one ``tf.function`` (optionally XLA): the batches
are drawn from the buffer on the host and the loop over them runs in the graph.

The environment loop is built from the engine's parts: :class:`~cs231n_tf.engine.state.RunState`
(its ``step`` counts environment steps; the NaN/Inf guard records the first non-finite loss in the
graph, :func:`~cs231n_tf.engine.state.check_finite` stops the run at the next host check),
:class:`~cs231n_tf.engine.state.CheckpointKeeper`, :class:`~cs231n_tf.engine.reporter.Reporter`
(TensorBoard ``episode_return``, ``episode_length``, ``loss``, ``epsilon``, ``env_steps_per_second``),
:meth:`StepContext.minimize <cs231n_tf.engine.context.StepContext.minimize>` and the run-directory
layer, assembled in :mod:`cs231n_tf.rl.loop` (shared with the policy-gradient loop). A checkpoint
holds the networks, the optimizer, the step, the replay buffer (with its sampling generator), every
environment's state (:mod:`cs231n_tf.rl.envstate`), the current observations, the episodes in
progress, the exploration generator and the finished episodes' returns, so a resumed run continues
exactly as the uninterrupted run would have.

Defaults follow rl-baselines3-zoo's tuned CartPole-v1 DQN (lr 2.3e-3, batch 64, 100k buffer, 1000
steps before learning, 128 updates every 256 steps, epsilon to 0.04 over 8000 steps, 256-256 MLP,
target copied every 10 steps, 50k steps in all).
"""

import dataclasses
import os
import time

import gymnasium as gym
import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.engine.context import StepContext
from cs231n_tf.engine.reporter import Reporter
from cs231n_tf.engine.state import RunState, restore_checkpoint
from cs231n_tf.errors import ConfigError, RunDirError
from cs231n_tf.rl.envs import check_env_id, make_env
from cs231n_tf.rl.loop import (
    RunCheckpoints, VectorCollector, check_discrete, episode_scalars, evaluation_seed, finish_metrics, mean_return,
    open_run, policy_returns, write_evaluation,
)
from cs231n_tf.rl.mdp import check_gamma
from cs231n_tf.rl.qnetworks import mlp_q_network, nature_q_network
from cs231n_tf.rl.replay import ReplayBuffer
from cs231n_tf.train.config import _flag

NAME = "rl_dqn"
ALGOS = ("dqn", "double_dqn")
NETWORKS = ("auto", "mlp", "nature")
TARGET_UPDATES = ("hard", "polyak")

_ALGO, _NET, _RUN = "algorithm", "network", "run directory and checkpoints"


@dataclasses.dataclass
class DQNConfig:
    """Everything that determines a DQN run (saved in the run's ``config.json``)."""

    algo: str = _flag("dqn", "dqn, or double_dqn (the online network picks the next action)", choices=ALGOS,
                      group=_ALGO)
    env: str = _flag("CartPole-v1", "gymnasium environment id (a discrete action space)", group=_ALGO)
    total_steps: int = _flag(50_000, "environment steps in all (resumable)", kind="positive_int", group=_ALGO)
    num_envs: int = _flag(1, "environments stepped side by side (gymnasium.vector.SyncVectorEnv)",
                          kind="positive_int", group=_ALGO)
    seed: int = _flag(0, "seed of the weights, environments, exploration and replay sampling",
                      kind="non_negative_int", group=_ALGO)
    gamma: float = _flag(0.99, "discount, in (0, 1]", kind="positive_float", group=_ALGO)
    lr: float = _flag(2.3e-3, "Adam learning rate", kind="positive_float")
    batch_size: int = _flag(64, "transitions per update", kind="positive_int")
    buffer_size: int = _flag(100_000, "replay buffer capacity (transitions)", kind="positive_int")
    learning_starts: int = _flag(1000, "environment steps collected before the first update",
                                 kind="non_negative_int")
    train_every: int = _flag(256, "environment steps between rounds of updates", kind="positive_int")
    gradient_steps: int = _flag(128, "updates per round (one tf.function call)", kind="positive_int")
    target_update: str = _flag("hard", "hard: copy every target_update_every steps; polyak: tau after each update",
                               choices=TARGET_UPDATES)
    target_update_every: int = _flag(10, "environment steps between hard target copies", kind="positive_int")
    tau: float = _flag(0.005, "Polyak rate of the target network", kind="unit_float")
    epsilon_start: float = _flag(1.0, "exploration rate at step 0", kind="unit_float")
    epsilon_end: float = _flag(0.04, "exploration rate after the decay", kind="unit_float")
    epsilon_decay_steps: int = _flag(8000, "environment steps of the linear epsilon decay", kind="positive_int")
    huber_delta: float = _flag(1.0, "Huber loss threshold (quadratic inside, linear outside)",
                               kind="positive_float")
    clip_norm: float = _flag(10.0, "clip the gradient's global norm to this", kind="positive_float")
    network: str = _flag("auto", "Q-network: mlp for vectors, nature for 84x84x4 frames (auto: by the "
                         "observation shape)", choices=NETWORKS, group=_NET)
    hidden: list = _flag(None, "MLP hidden widths", kind="name_list", factory=lambda: [256, 256], group=_NET,
                         metavar="W,W")
    dueling: bool = _flag(False, "dueling value/advantage head", kind="bool", group=_NET)
    xla: bool = _flag(False, "compile the update with XLA (jit_compile)", kind="bool", group=_NET)
    checkpoint_every: int = _flag(10_000, "checkpoint every N environment steps (and at the end)",
                                  kind="positive_int", group=_RUN)
    keep_checkpoints: int = _flag(3, "checkpoints kept", kind="positive_int", group=_RUN)
    log_every: int = _flag(1000, "TensorBoard scalars every N environment steps", kind="positive_int", group=_RUN)

    def validate(self):
        validation.one_of("algo", self.algo, ALGOS)
        validation.one_of("network", self.network, NETWORKS)
        validation.one_of("target_update", self.target_update, TARGET_UPDATES)
        check_env_id(self.env)
        for name in ("total_steps", "num_envs", "batch_size", "buffer_size", "train_every", "gradient_steps",
                     "target_update_every", "epsilon_decay_steps", "checkpoint_every", "keep_checkpoints",
                     "log_every"):
            validation.positive_int(name, getattr(self, name))
        validation.non_negative_int("seed", self.seed)
        validation.non_negative_int("learning_starts", self.learning_starts)
        self.gamma = check_gamma(self.gamma)
        for name in ("lr", "huber_delta", "clip_norm"):
            validation.positive_number(name, getattr(self, name))
        for name in ("tau", "epsilon_start", "epsilon_end"):
            value = validation.positive_number(name, getattr(self, name), allow_zero=True)
            if value > 1:
                raise ConfigError(f"{name} must be in [0, 1], got {value!r}")
        try:
            self.hidden = [int(h) for h in self.hidden]
        except (TypeError, ValueError):
            raise ConfigError(f"hidden must be positive layer widths, got {self.hidden!r}") from None
        for width in self.hidden:
            validation.positive_int("hidden", width)
        if self.total_steps % self.num_envs or self.train_every % self.num_envs:
            raise ConfigError(f"total_steps {self.total_steps} and train_every {self.train_every} must be multiples "
                              f"of num_envs {self.num_envs} (each vector step is num_envs environment steps)")
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        return rundir.config_from_json(cls, obj, "DQN config")


# ---- the math -------------------------------------------------------------------------------------


def linear_epsilon(step, start, end, decay_steps):
    """``start`` moving linearly to ``end`` over ``decay_steps`` steps, then ``end`` (a tensor or a float)."""
    if isinstance(step, (int, float, np.integer)):
        return start + min(1.0, step / decay_steps) * (end - start)
    fraction = tf.minimum(1.0, tf.cast(step, tf.float32) / decay_steps)
    return start + fraction * (end - start)


def huber(x, delta=1.0):
    """Elementwise Huber loss: ``x^2 / 2`` for ``|x| <= delta``, ``delta (|x| - delta / 2)`` beyond.

    The gradient is the TD error clipped to ``[-delta, delta]``: the Nature paper's error clipping.
    """
    absolute = tf.abs(x)
    quadratic = tf.minimum(absolute, delta)
    return 0.5 * tf.square(quadratic) + delta * (absolute - quadratic)


def td_targets(rewards, terminated, next_q_target, next_q_online, gamma, double):
    """``r + gamma (1 - terminated) Q_target(s', a*)``, ``[b]``; ``a*`` from the online net if ``double``."""
    chooser = next_q_online if double else next_q_target
    best = tf.argmax(chooser, axis=1, output_type=tf.int32)
    bootstrap = tf.gather(next_q_target, best, axis=1, batch_dims=1)
    return rewards + gamma * (1.0 - terminated) * bootstrap


# ---- the agent ------------------------------------------------------------------------------------


def check_spaces(env_id, observation_space, action_space):
    """:class:`ConfigError` unless the action space is ``Discrete`` and observations are a ``Box``."""
    check_discrete(env_id, action_space, "DQN")
    if not isinstance(observation_space, gym.spaces.Box):
        raise ConfigError(f"DQN needs Box observations (vectors or frames); {env_id} has {observation_space}")


def build_q_network(config, observation_space, n_actions, name):
    shape = tuple(observation_space.shape)
    kind = config.network
    if kind == "auto":
        kind = "mlp" if len(shape) == 1 else "nature"
    if kind == "mlp":
        if len(shape) != 1:
            raise ConfigError(f"network 'mlp' needs vector observations, {config.env} has shape {shape}")
        return mlp_q_network(shape[0], n_actions, config.hidden, config.dueling, name=name)
    if len(shape) != 3:
        raise ConfigError(f"network 'nature' needs [84, 84, 4] frames, {config.env} has shape {shape}")
    return nature_q_network(n_actions, shape, config.dueling, name=name)


class DQNAgent(tf.Module):
    """The online and target Q-networks, Adam, and the compiled update and action selection.

    ``update(observations, actions, rewards, next_observations, terminated)`` takes ``[k, b, ...]``
    stacks (``k`` updates of ``b`` transitions) and runs the ``k`` updates in one graph; it returns the
    mean loss. :meth:`update_eager` is the same update run op by op (the benchmark's baseline).
    """

    def __init__(self, config, observation_space, n_actions, state=None):
        super().__init__(name="dqn_agent")
        self.config = config
        self.n_actions = int(n_actions)
        tf.keras.utils.set_random_seed(config.seed)
        self.q_network = build_q_network(config, observation_space, n_actions, "q_network")
        self.target_network = build_q_network(config, observation_space, n_actions, "target_network")
        self.target_network.set_weights(self.q_network.get_weights())
        self.optimizer = tf.keras.optimizers.Adam(config.lr)
        self.optimizer.build(self.q_network.trainable_variables)
        self.state = state if state is not None else RunState()
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")
        self.ctx = StepContext(tf.distribute.get_strategy(), config.batch_size, step=self.state.step)
        self.update = tf.function(self._updates, jit_compile=bool(config.xla), reduce_retracing=True)
        # A concrete function: calling it skips tf.function's argument dispatch, the bulk of a per-step call.
        spec = tf.TensorSpec((None,) + tuple(observation_space.shape), tf.as_dtype(observation_space.dtype))
        self.greedy_actions = tf.function(self._greedy_actions).get_concrete_function(spec)

    def loss(self, observations, actions, rewards, next_observations, terminated):
        """Per-transition Huber TD losses ``[b]`` (recorded on the caller's tape)."""
        c = self.config
        q = self.q_network(observations, training=True)
        chosen = tf.gather(q, tf.cast(actions, tf.int32), axis=1, batch_dims=1)
        next_target = self.target_network(next_observations, training=False)
        next_online = self.q_network(next_observations, training=False) if c.algo == "double_dqn" else None
        y = tf.stop_gradient(td_targets(rewards, terminated, next_target, next_online, c.gamma,
                                        c.algo == "double_dqn"))
        return huber(chosen - y, c.huber_delta)

    def train_step(self, observations, actions, rewards, next_observations, terminated):
        """One gradient step on one batch; returns its loss (the mean Huber TD error)."""
        variables = self.q_network.trainable_variables
        with tf.GradientTape() as tape:
            loss = self.ctx.mean(self.loss(observations, actions, rewards, next_observations, terminated))
        self.ctx.minimize(tape, loss, variables, self.optimizer,
                          gradient_transform=lambda g: tf.clip_by_global_norm(g, self.config.clip_norm)[0])
        if self.config.target_update == "polyak":
            self.polyak_update(self.config.tau)
        self.updates.assign_add(1)
        return loss

    def _updates(self, observations, actions, rewards, next_observations, terminated):
        k = tf.shape(actions)[0]
        total = tf.constant(0.0)
        for i in tf.range(k):
            loss = self.train_step(observations[i], actions[i], rewards[i], next_observations[i], terminated[i])
            total += loss
        mean = total / tf.cast(k, tf.float32)
        self.state.record_finite(mean)
        return mean

    def update_eager(self, observations, actions, rewards, next_observations, terminated):
        """:meth:`update` without ``tf.function``: the same ops, dispatched one at a time from Python."""
        total = 0.0
        for i in range(len(actions)):
            total += self.train_step(observations[i], actions[i], rewards[i], next_observations[i], terminated[i])
        mean = total / len(actions)
        self.state.record_finite(mean)
        return mean

    def polyak_update(self, tau):
        for target, online in zip(self.target_network.variables, self.q_network.variables):
            target.assign((1.0 - tau) * target + tau * online)

    def hard_update(self):
        for target, online in zip(self.target_network.variables, self.q_network.variables):
            target.assign(online)

    def _greedy_actions(self, observations):
        return tf.argmax(self.q_network(observations, training=False), axis=1, output_type=tf.int64)

    def checkpoint_objects(self):
        return {"q_network": self.q_network, "target_network": self.target_network, "optimizer": self.optimizer,
                "updates": self.updates, **self.state.checkpoint_objects()}


# ---- collection -----------------------------------------------------------------------------------


class Collector(VectorCollector):
    """The vector environment and its episodes (:class:`~cs231n_tf.rl.loop.VectorCollector`), acting
    epsilon-greedily (exploration drawn from its checkpointed ``rng``) and filling the replay buffer."""

    def __init__(self, config):
        super().__init__(config)
        check_spaces(config.env, self.envs.single_observation_space, self.envs.single_action_space)

    def act(self, agent, epsilon):
        greedy = agent.greedy_actions(tf.convert_to_tensor(self.observations)).numpy()
        explore = self.rng.random(len(greedy)) < epsilon
        random_actions = self.rng.integers(0, agent.n_actions, size=len(greedy))
        return np.where(explore, random_actions, greedy)

    def collect(self, actions, buffer, step):
        """Step every environment, store the transitions in ``buffer``; ``step`` = environment steps after it."""
        observations, rewards, terminated, truncated, final = self.step(actions, step)
        stored_next = np.array(self.observations, copy=True)
        for i in np.flatnonzero(terminated | truncated):
            stored_next[i] = final[i]
        buffer.add(observations, actions, rewards, stored_next, terminated)


# ---- training and evaluation ----------------------------------------------------------------------


@dataclasses.dataclass
class DQNResult:
    run_dir: str
    metrics: dict
    agent: DQNAgent


def load_run_config(run_dir):
    """The :class:`DQNConfig` of a DQN run; other runs raise :class:`RunDirError`."""
    obj = rundir.read_config(run_dir)
    rundir.require_task(run_dir, NAME)
    if "config" not in obj:
        raise RunDirError(f"{os.path.join(run_dir, rundir.CONFIG_FILE)} has no DQN config")
    return DQNConfig.from_json(obj["config"]).validate()


def train(config, run_dir=None, resume=False, log=print, progress=False):
    """Train a DQN for ``config.total_steps`` environment steps; returns a :class:`DQNResult`.

    ``resume`` continues the run in ``run_dir`` from its newest readable checkpoint (a larger
    ``total_steps`` extends it). ``metrics.json`` gets ``steps``, ``updates``, ``episodes``,
    ``train_return_mean_100`` (the last 100 finished episodes), ``env_steps_per_second`` and the
    per-episode ``history``; ``returns.png`` the return curve.
    """
    config = config.validate()
    log = log or (lambda _: None)
    run_dir = open_run(run_dir, resume, NAME)
    collector = Collector(config)
    agent = DQNAgent(config, collector.envs.single_observation_space, collector.envs.single_action_space.n)
    buffer = ReplayBuffer(config.buffer_size, collector.envs.single_observation_space.shape,
                          collector.envs.single_observation_space.dtype, seed=[config.seed, 2])
    checkpoints = RunCheckpoints(tf.train.Checkpoint(**agent.checkpoint_objects(), replay=buffer, collector=collector),
                                 run_dir, config.keep_checkpoints, agent.state)
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
    start_wall = time.perf_counter()
    start_step, loss = step, float("nan")
    last_loss = None
    try:
        while step < config.total_steps:
            epsilon = linear_epsilon(step, config.epsilon_start, config.epsilon_end, config.epsilon_decay_steps)
            actions = collector.act(agent, epsilon)
            step += n
            collector.collect(actions, buffer, step)
            if config.target_update == "hard" and step % config.target_update_every < n:
                agent.hard_update()
            if step >= config.learning_starts and step % config.train_every == 0 and len(buffer):
                batch = buffer.sample(config.batch_size, config.gradient_steps)
                state.step.assign(step)  # the NaN guard records this step
                last_loss = agent.update(*batch)
            if step % config.log_every < n:
                checkpoints.check()
                loss = float(last_loss.numpy()) if last_loss is not None else float("nan")
                speed = (step - start_step) / max(time.perf_counter() - start_wall, 1e-9)
                scalars = {"epsilon": epsilon, "env_steps_per_second": speed, **episode_scalars(collector.episodes)}
                if last_loss is not None:
                    scalars["loss"] = loss
                reporter.scalars("train", step, scalars)
            if step % config.checkpoint_every < n:
                checkpoints.save(step)
        if last_loss is not None:
            loss = float(last_loss.numpy())
        checkpoints.save(step)
    finally:
        reporter.close()
        collector.close()
    wall = time.perf_counter() - start_wall
    episodes = collector.episodes
    metrics = {"steps": step, "updates": int(agent.updates.numpy()), "episodes": len(episodes),
               "train_return_mean_100": mean_return(episodes), "final_loss": loss, "wall_seconds": wall,
               "env_steps_per_second": (step - start_step) / max(wall, 1e-9), "checkpoint": checkpoints.latest}
    metrics = finish_metrics(run_dir, metrics, episodes, f"{config.algo} on {config.env}")
    log(f"step {step}: {len(episodes)} episodes, mean return of the last 100 {metrics['train_return_mean_100']:.1f}, "
        f"{metrics['env_steps_per_second']:.0f} env steps/s")
    return DQNResult(run_dir, metrics, agent)


def greedy_returns(q_network, env_id, episodes, seed, max_steps=100_000):
    """Returns ``[episodes]`` of the greedy policy of ``q_network`` (:func:`~cs231n_tf.rl.loop.policy_returns`)."""
    act = tf.function(lambda x: tf.argmax(q_network(x, training=False), axis=1, output_type=tf.int64),
                      reduce_retracing=True)
    return policy_returns(lambda x: act(x).numpy(), env_id, episodes, seed, max_steps)


def load_q_network(run_dir, checkpoint=None):
    """``(config, q_network)`` of a DQN run, the online network restored from ``checkpoint`` (default: the latest)."""
    config = load_run_config(run_dir)
    checkpoint = rundir.latest_checkpoint(run_dir, checkpoint)
    env = make_env(config.env)
    check_spaces(config.env, env.observation_space, env.action_space)
    q_network = build_q_network(config, env.observation_space, env.action_space.n, "q_network")
    env.close()
    restore_checkpoint(tf.train.Checkpoint(q_network=q_network), checkpoint, partial=True)
    return config, q_network, checkpoint


def evaluate_run(run_dir, episodes=100, seed=None, checkpoint=None):
    """Mean and std of the greedy return over ``episodes`` episodes; merged into the run's ``metrics.json``.

    ``seed`` defaults to the run's seed + 10000 (episodes unseen in training). Returns
    ``{"eval_return_mean", "eval_return_std", "eval_episodes", "eval_seed", "eval_checkpoint"}``.
    """
    config, q_network, checkpoint = load_q_network(run_dir, checkpoint)
    seed = evaluation_seed(config, seed)
    return write_evaluation(run_dir, greedy_returns(q_network, config.env, episodes, seed), seed, checkpoint)
