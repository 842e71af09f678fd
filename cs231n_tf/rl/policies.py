"""Actor-critic networks and their compiled update (lecture 14, policy gradients).

:class:`ActorCritic` holds a policy MLP (observations ``(B, D)`` -> logits ``(B, A)``), a value MLP
(the learned baseline, ``(B, D)`` -> ``(B,)``) and one Adam; ``update`` is a ``tf.function`` that takes
a batch with its returns (reward-to-go for REINFORCE, n-step for A2C) and minimises
``policy_loss + value_coef * value_loss - entropy_coef * entropy`` through
:meth:`StepContext.minimize <cs231n_tf.engine.context.StepContext.minimize>`.
"""

import tensorflow as tf

from cs231n_tf.engine.context import StepContext
from cs231n_tf.rl.policy_gradient import actor_critic_losses


def _mlp(observation_dim, outputs, hidden, name):
    inputs = tf.keras.Input((observation_dim,), name="observations")
    x = inputs
    for i, width in enumerate(hidden):
        x = tf.keras.layers.Dense(width, activation="tanh", name=f"dense_{i}")(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(outputs, name="out")(x), name=name)


class ActorCritic(tf.Module):
    """Policy and value networks, Adam, and the compiled policy-gradient update."""

    def __init__(self, observation_dim, n_actions, hidden=(64, 64), lr=7e-4, value_coef=0.5, entropy_coef=0.0,
                 clip_norm=0.5):
        super().__init__(name="actor_critic")
        self.policy = _mlp(observation_dim, n_actions, hidden, "policy")
        self.value = _mlp(observation_dim, 1, hidden, "value")
        self.optimizer = tf.keras.optimizers.Adam(lr)
        self.value_coef, self.entropy_coef, self.clip_norm = value_coef, entropy_coef, clip_norm
        self.ctx = StepContext(tf.distribute.get_strategy(), 1)  # losses are batch means already
        self.update = tf.function(self._update, reduce_retracing=True)

    def _update(self, observations, actions, returns):
        variables = self.policy.trainable_variables + self.value.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.policy(observations, training=True)
            values = tf.squeeze(self.value(observations, training=True), -1)
            policy_loss, value_loss, entropy = actor_critic_losses(logits, values, actions, returns)
            loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy
        self.ctx.minimize(tape, loss, variables, self.optimizer,
                          gradient_transform=lambda g: tf.clip_by_global_norm(g, self.clip_norm)[0])
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}
