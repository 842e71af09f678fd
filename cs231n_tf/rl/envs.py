"""Environments by gymnasium id, and planning on their transition tables (the ``rl plan`` command's work).

:func:`make_env` is ``gymnasium.make`` with the package's errors: an unknown id raises
:class:`~cs231n_tf.errors.ConfigError` naming the closest registered ids (``difflib`` over
gymnasium's registry, Atari's ``ALE/...`` ids included). The package's grid world is registered as
``cs231n_tf/GridWorld-v0``, and with ale-py installed the Nature-preprocessed Atari games as
``cs231n_tf/<Game>-v5`` (:mod:`cs231n_tf.rl.atari`).
"""

import difflib
import os
import time

import gymnasium as gym
import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError
from cs231n_tf.fileio import atomic_write_json
from cs231n_tf.rl import mdp

GRID_WORLD_ID = "cs231n_tf/GridWorld-v0"
FROZEN_LAKE_MAPS = ("4x4", "8x8")
PLAN_FILE = "plan.json"
POLICY_PNG = "policy.png"

if GRID_WORLD_ID not in gym.registry:
    gym.register(GRID_WORLD_ID, entry_point="cs231n_tf.rl.gridworld:GridWorldEnv", max_episode_steps=200)


def _register_atari():
    try:
        import ale_py
    except ImportError:
        return False
    gym.register_envs(ale_py)
    from cs231n_tf.rl.atari import register_preprocessed

    register_preprocessed()  # cs231n_tf/<Game>-v5: the Nature DQN's 84x84x4 frames
    return True


def check_env_id(env_id):
    """``env_id`` if gymnasium knows it; otherwise :class:`ConfigError` listing close matches."""
    if not isinstance(env_id, str) or not env_id:
        raise ConfigError(f"env must be a gymnasium environment id such as CartPole-v1, got {env_id!r}")
    if env_id in gym.registry:
        return env_id
    _register_atari()  # Atari ids exist once ale_py has registered them
    if env_id in gym.registry:
        return env_id
    close = difflib.get_close_matches(env_id, list(gym.registry), n=5, cutoff=0.6)
    hint = f"close matches: {', '.join(close)}" if close else "see gymnasium.pprint_registry() for the ids"
    raise ConfigError(f"unknown environment {env_id!r}; {hint}")


def make_env(env_id, **kwargs):
    """``gymnasium.make(env_id, **kwargs)`` after :func:`check_env_id`."""
    return gym.make(check_env_id(env_id), **kwargs)


def transition_table(env):
    """``env.unwrapped.P``; an environment without one raises :class:`ConfigError`."""
    P = getattr(env.unwrapped, "P", None)
    if P is None:
        raise ConfigError(f"environment {env.spec.id if env.spec else env!r} has no transition table "
                          f"(env.unwrapped.P); planning needs a finite MDP such as FrozenLake-v1, Taxi-v4, "
                          f"CliffWalking-v1 or {GRID_WORLD_ID}")
    return P


def plan(env_id="FrozenLake-v1", algo="value_iteration", gamma=0.99, map_size=None, out=None, tol=1e-10):
    """Solve ``env_id``'s MDP with ``algo``; writes ``plan.json`` (+ ``policy.png`` for grids) to ``out``.

    ``map_size``: FrozenLake's ``4x4`` or ``8x8`` (FrozenLake only). Returns the JSON record:
    ``env``, ``algo``, ``gamma``, ``iterations``, ``seconds``, ``V``, ``policy``, ``start_state`` (the
    state ``reset(seed=0)`` gives) and its ``start_value`` (and ``shape`` for grids); ``V`` is
    ``[S]``, ``policy`` ``[S]`` action indices.
    """
    validation.one_of("algo", algo, mdp.ALGOS)
    gamma = mdp.check_gamma(gamma)
    env_id = check_env_id(env_id)
    kwargs = {}
    if map_size is not None:
        if not env_id.startswith("FrozenLake"):
            raise ConfigError(f"map_size applies to FrozenLake only, not {env_id!r}")
        kwargs["map_name"] = validation.one_of("map_size", map_size, FROZEN_LAKE_MAPS)
    env = make_env(env_id, **kwargs)
    table = mdp.TabularMDP(transition_table(env))
    start = time.perf_counter()
    V, policy, iterations = mdp.solve(table, gamma, algo, tol=tol)
    seconds = time.perf_counter() - start
    record = {"env": env_id, "algo": algo, "gamma": gamma, "map_size": map_size, "iterations": iterations,
              "seconds": seconds, "states": table.n_states, "actions": table.n_actions,
              "V": V.tolist(), "policy": policy.tolist()}
    start_state = int(env.reset(seed=0)[0])
    record["start_state"], record["start_value"] = start_state, float(V[start_state])
    desc = getattr(env.unwrapped, "desc", None)
    if desc is not None:
        record["shape"] = list(np.asarray(desc).shape)
    if out is not None:
        from cs231n_tf.engine import rundir
        from cs231n_tf.rl.plots import plot_policy

        out = rundir.create(out)
        if desc is not None:
            record["png"] = plot_policy(desc, V, policy, os.path.join(out, POLICY_PNG),
                                        title=f"{env_id} {algo} (gamma {gamma:g})")
        atomic_write_json(os.path.join(out, PLAN_FILE), record)
    env.close()
    return record
