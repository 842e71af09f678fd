"""Weight initialisation by the course's names (lecture 6), as Keras initializers.

The lecture's recipes, for a weight matrix of shape ``(fan_in, fan_out)``::

    small_random   W = 0.01 * randn(fan_in, fan_out)
    large_random   W = 1.0  * randn(fan_in, fan_out)
    xavier         W = randn(fan_in, fan_out) / sqrt(fan_in)        Var = 1 / fan_in
    he / kaiming   W = randn(fan_in, fan_out) / sqrt(fan_in / 2)    Var = 2 / fan_in

The lecture's ``xavier`` is the fan-in form (Keras calls its truncated twin ``lecun_normal``);
Glorot & Bengio's paper averages the fans, Var = 2 / (fan_in + fan_out), which is what Keras's
``glorot_*`` do and what ``xavier_normal`` / ``xavier_uniform`` (= ``glorot_normal`` /
``glorot_uniform``) give here. The two agree for square layers. ``he_normal`` / ``he_uniform``
(= ``kaiming_*``) are Keras's He initializers, Var = 2 / fan_in; Keras's ``*_normal`` variants draw
from a normal truncated at two standard deviations, rescaled so the variance is still the formula's.
For convolution kernels ``(KH, KW, C_in, C_out)``, ``fan_in = KH*KW*C_in`` and
``fan_out = KH*KW*C_out``.

Any other name is looked up with ``tf.keras.initializers.get``.
"""

import tensorflow as tf

from cs231n_tf.errors import ConfigError, InputTypeError

_init = tf.keras.initializers


def _variance_scaling(scale, mode, distribution):
    return lambda seed: _init.VarianceScaling(scale=scale, mode=mode, distribution=distribution,
                                              seed=seed)


# course name -> factory(seed) -> initializer
_COURSE = {
    "small_random": lambda seed: _init.RandomNormal(stddev=0.01, seed=seed),
    "large_random": lambda seed: _init.RandomNormal(stddev=1.0, seed=seed),
    "xavier": _variance_scaling(1.0, "fan_in", "untruncated_normal"),
    "he": _variance_scaling(2.0, "fan_in", "untruncated_normal"),
    "kaiming": _variance_scaling(2.0, "fan_in", "untruncated_normal"),
    "xavier_normal": lambda seed: _init.GlorotNormal(seed=seed),
    "glorot_normal": lambda seed: _init.GlorotNormal(seed=seed),
    "xavier_uniform": lambda seed: _init.GlorotUniform(seed=seed),
    "glorot_uniform": lambda seed: _init.GlorotUniform(seed=seed),
    "he_normal": lambda seed: _init.HeNormal(seed=seed),
    "kaiming_normal": lambda seed: _init.HeNormal(seed=seed),
    "he_uniform": lambda seed: _init.HeUniform(seed=seed),
    "kaiming_uniform": lambda seed: _init.HeUniform(seed=seed),
}

COURSE_NAMES = tuple(_COURSE)


def get_initializer(name, seed=None):
    """Return a ``tf.keras.initializers.Initializer`` for a course name or any Keras name.

    Args:
      name: one of :data:`COURSE_NAMES`, any name ``tf.keras.initializers.get`` accepts
        (``"zeros"``, ``"lecun_normal"``, ...), or an ``Initializer`` instance (returned as is).
      seed: optional int seed, for every initializer that draws random numbers.
    """
    if isinstance(name, _init.Initializer):
        return name
    if not isinstance(name, str):
        raise InputTypeError(f"initializer must be a name or a tf.keras Initializer, got {name!r}")
    key = name.lower()
    if key in _COURSE:
        return _COURSE[key](seed)
    try:
        initializer = _init.get(name)
    except ValueError:
        raise ConfigError(
            f"unknown initializer {name!r}; accepted: {', '.join(COURSE_NAMES)} or any "
            "tf.keras.initializers name (e.g. 'zeros', 'lecun_normal', 'orthogonal')"
        ) from None
    config = initializer.get_config()
    if seed is not None and "seed" in config:
        initializer = type(initializer).from_config({**config, "seed": seed})
    return initializer
