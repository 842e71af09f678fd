"""The state of running gymnasium environments as plain data, so a checkpoint can hold it.

Exact resume of an RL run needs the environments exactly where they were: the physics state,
the time-limit counter and the random generator of every sub-environment. Gymnasium keeps these as
plain attributes of the wrappers and the base environment (CartPole's ``state``,
``steps_beyond_terminated``, ``TimeLimit._elapsed_steps``, ``np_random``), so :func:`capture` walks the
wrapper chain and records every attribute whose value is plain data (numbers, strings, ``None``,
NumPy arrays, tuples, lists and deques of them, e.g. a frame stack) plus the generator's
``bit_generator.state``; :func:`restore` sets them back. Atari's ALE emulator is saved through its own
``clone_state(include_rng=True)`` (the sticky-action generator included). Other objects (spaces,
renderers, simulators) are not captured: an environment whose state lives in one (MuJoCo) is
refused by :func:`check_capturable` rather than resumed inexactly.
"""

import base64
import collections
import numbers

import numpy as np

from cs231n_tf.errors import ConfigError, RunDirError

# Attributes that are configuration or links, not state.
_SKIP = {"env", "spec", "_saved_kwargs", "_cached_spec", "metadata", "_metadata"}
_GENERATOR = "_np_random"
_ALE_STATE = "__ale_state__"


def _encode(value):
    if value is None or isinstance(value, (bool, str)):
        return value, True
    if isinstance(value, numbers.Integral):
        return int(value), True
    if isinstance(value, numbers.Real):
        return float(value), True
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"ndarray": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}, True
    if isinstance(value, (tuple, list, collections.deque)):
        items = [_encode(v) for v in value]
        if all(ok for _, ok in items):
            if isinstance(value, collections.deque):
                return {"deque": [v for v, _ in items], "maxlen": value.maxlen}, True
            return {"tuple" if isinstance(value, tuple) else "list": [v for v, _ in items]}, True
    return None, False


def _decode(value):
    if isinstance(value, dict):
        if "ndarray" in value:
            return np.array(value["ndarray"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        if "tuple" in value:
            return tuple(_decode(v) for v in value["tuple"])
        if "deque" in value:
            return collections.deque((_decode(v) for v in value["deque"]), maxlen=value["maxlen"])
        return [_decode(v) for v in value["list"]]
    return value


def _chain(env):
    while True:
        yield env
        if not hasattr(env, "env"):
            return
        env = env.env


def check_capturable(env):
    """:class:`ConfigError` if ``env`` keeps state outside plain attributes (an emulator or simulator)."""
    base = env.unwrapped
    if _is_ale(base):
        return
    for attribute in ("ale", "model", "data", "sim"):
        if hasattr(base, attribute):
            raise ConfigError(f"environment {env.spec.id if env.spec else type(base).__name__!r} keeps its state in "
                              f"{type(base).__name__}.{attribute}; exact resume supports environments whose state "
                              "is plain data (classic control, toy text)")


def _is_ale(env):
    return hasattr(env, "ale") and hasattr(env, "clone_state") and hasattr(env, "restore_state")


def capture(env):
    """``[ {attribute: value}, ... ]`` per object of ``env``'s wrapper chain (JSON-able)."""
    layers = []
    for layer in _chain(env):
        record = {}
        for key, value in vars(layer).items():
            if key in _SKIP:
                continue
            if key == _GENERATOR and isinstance(value, np.random.Generator):
                record[key] = {"generator": value.bit_generator.state}
                continue
            encoded, ok = _encode(value)
            if ok:
                record[key] = encoded
        if _is_ale(layer):
            record[_ALE_STATE] = base64.b64encode(layer.clone_state(include_rng=True).serialize()).decode("ascii")
        layers.append({"type": type(layer).__name__, "attributes": record})
    return layers


def restore(env, layers):
    """Set the attributes :func:`capture` recorded back on ``env`` (built the same way)."""
    chain = list(_chain(env))
    if [type(layer).__name__ for layer in chain] != [layer["type"] for layer in layers]:
        raise RunDirError(f"the checkpoint's environment wrappers {[layer['type'] for layer in layers]} differ from "
                          f"this run's {[type(layer).__name__ for layer in chain]}")
    for layer, saved in zip(chain, layers):
        for key, value in saved["attributes"].items():
            if key == _ALE_STATE:
                import ale_py

                layer.restore_state(ale_py.ALEState(base64.b64decode(value)))
                continue
            if isinstance(value, dict) and "generator" in value:
                generator = getattr(layer, key, None)
                if not isinstance(generator, np.random.Generator):
                    generator = np.random.default_rng()
                generator.bit_generator.state = value["generator"]
                setattr(layer, key, generator)
            else:
                setattr(layer, key, _decode(value))
