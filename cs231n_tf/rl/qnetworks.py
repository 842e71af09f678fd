"""Q-network builders (Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015).

Each maps observations to one Q-value per action, ``[b, *obs] -> [b, n_actions]`` float32:

- :func:`mlp_q_network`: fully connected ReLU layers for vector observations (CartPole's 4 numbers).
- :func:`nature_q_network`: the Nature DQN's conv net for ``84 x 84 x 4`` stacks of frames (NHWC,
  uint8 pixels scaled by 1/255 inside): conv 32 8x8/4, conv 64 4x4/2, conv 64 3x3/1, dense 512,
  dense ``n_actions``, ReLU throughout: 1,687,206 parameters for Pong's 6 actions, 1,686,180 for
  Breakout's 4.

``dueling=True`` (Wang et al., "Dueling network architectures", ICML 2016) splits the last hidden
layer into a value stream ``V(s)`` and an advantage stream ``A(s, a)``, each with its own hidden
layer, and combines them as ``Q = V + A - mean_a A`` (the mean makes the split identifiable).
"""

import tensorflow as tf

from cs231n_tf import validation

NATURE_INPUT = (84, 84, 4)


def _head(features, n_actions, hidden, dueling, name):
    layers = tf.keras.layers
    if not dueling:
        x = layers.Dense(hidden, activation="relu", name="fc")(features) if hidden else features
        return layers.Dense(n_actions, name="q_values")(x)
    value = layers.Dense(hidden, activation="relu", name="value_fc")(features)
    value = layers.Dense(1, name="value")(value)
    advantage = layers.Dense(hidden, activation="relu", name="advantage_fc")(features)
    advantage = layers.Dense(n_actions, name="advantage")(advantage)
    centred = layers.Lambda(lambda a: a - tf.reduce_mean(a, axis=1, keepdims=True), name="centre")(advantage)
    return layers.Add(name="q_values")([value, centred])


def mlp_q_network(observation_dim, n_actions, hidden=(256, 256), dueling=False, name="mlp_q_network"):
    """``[b, observation_dim] -> [b, n_actions]``: ``hidden`` ReLU layers, then a linear (or dueling) head.

    With ``dueling``, the last entry of ``hidden`` is the width of each stream's own hidden layer.
    """
    observation_dim = validation.positive_int("observation_dim", observation_dim)
    n_actions = validation.positive_int("n_actions", n_actions)
    hidden = [validation.positive_int("hidden", h) for h in hidden]
    inputs = tf.keras.Input((observation_dim,), name="observations")
    x = inputs
    body = hidden[:-1] if hidden else []
    for i, width in enumerate(body):
        x = tf.keras.layers.Dense(width, activation="relu", name=f"dense_{i}")(x)
    last = hidden[-1] if hidden else 0
    if dueling and not last:
        last = 64
    outputs = _head(x, n_actions, last, dueling, name)
    return tf.keras.Model(inputs, outputs, name=name)


def nature_q_network(n_actions, input_shape=NATURE_INPUT, dueling=False, name="nature_q_network"):
    """The Nature DQN: ``[b, 84, 84, 4]`` uint8 (or float in 0..255) frames -> ``[b, n_actions]``."""
    n_actions = validation.positive_int("n_actions", n_actions)
    layers = tf.keras.layers
    inputs = tf.keras.Input(tuple(input_shape), name="observations")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    x = layers.Conv2D(32, 8, strides=4, activation="relu", name="conv1")(x)
    x = layers.Conv2D(64, 4, strides=2, activation="relu", name="conv2")(x)
    x = layers.Conv2D(64, 3, strides=1, activation="relu", name="conv3")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = _head(x, n_actions, 512, dueling, name)
    return tf.keras.Model(inputs, outputs, name=name)
