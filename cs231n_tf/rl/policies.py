"""Actor-critic networks and their compiled update (lecture 14, policy gradients).

:class:`ActorCritic` holds a policy MLP (observations ``(B, D)`` -> logits ``(B, A)``), a value MLP
(the learned baseline, ``(B, D)`` -> ``(B,)``) and one Adam; ``update`` is a ``tf.function`` that takes
a batch with its returns (reward-to-go for REINFORCE, n-step for A2C) and minimises
``policy_loss + value_coef * value_loss - entropy_coef * entropy`` through
:meth:`StepContext.minimize <cs231n_tf.engine.context.StepContext.minimize>`. The update records a
non-finite loss in the :class:`~cs231n_tf.engine.state.RunState` it is given (the engine's NaN guard);
``forward`` is the compiled ``(logits, values)`` the environment loop acts with.
"""

import tensorflow as tf

from cs231n_tf.engine.context import StepContext
from cs231n_tf.engine.state import RunState
from cs231n_tf.rl.policy_gradient import actor_critic_losses


def mlp(observation_dim, outputs, hidden, name):
    """``(B, observation_dim) -> (B, outputs)``: tanh layers of widths ``hidden``, then a linear layer."""
    inputs = tf.keras.Input((observation_dim,), name="observations")
    x = inputs
    for i, width in enumerate(hidden):
        x = tf.keras.layers.Dense(width, activation="tanh", name=f"dense_{i}")(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(outputs, name="out")(x), name=name)


class ActorCritic(tf.Module):
    """Policy and value networks, Adam, and the compiled policy-gradient update."""

    def __init__(self, observation_dim, n_actions, hidden=(64, 64), lr=7e-4, value_coef=0.5, entropy_coef=0.0,
                 clip_norm=0.5, state=None, xla=False):
        super().__init__(name="actor_critic")
        self.n_actions = int(n_actions)
        self.policy = mlp(observation_dim, n_actions, hidden, "policy")
        self.value = mlp(observation_dim, 1, hidden, "value")
        self.optimizer = tf.keras.optimizers.Adam(lr)
        self.optimizer.build(self.policy.trainable_variables + self.value.trainable_variables)
        self.value_coef, self.entropy_coef, self.clip_norm = value_coef, entropy_coef, clip_norm
        self.state = state if state is not None else RunState()
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")
        self.ctx = StepContext(tf.distribute.get_strategy(), 1, step=self.state.step)  # losses are batch means
        observations = tf.TensorSpec((None, observation_dim), tf.float32)
        batch = [observations, tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.float32)]
        self.update = tf.function(self._update, input_signature=batch, jit_compile=bool(xla))
        self.forward = tf.function(self._forward, input_signature=[observations])

    def losses(self, observations, actions, returns):
        """``{"loss", "policy_loss", "value_loss", "entropy"}`` of a batch (recorded on the caller's tape)."""
        logits = self.policy(observations, training=True)
        values = tf.squeeze(self.value(observations, training=True), -1)
        policy_loss, value_loss, entropy = actor_critic_losses(logits, values, actions, returns)
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}

    def _update(self, observations, actions, returns):
        variables = self.policy.trainable_variables + self.value.trainable_variables
        with tf.GradientTape() as tape:
            out = self.losses(observations, actions, returns)
        self.ctx.minimize(tape, out["loss"], variables, self.optimizer,
                          gradient_transform=lambda g: tf.clip_by_global_norm(g, self.clip_norm)[0])
        self.state.record_finite(out["loss"])
        self.updates.assign_add(1)
        return out

    def _forward(self, observations):
        return self.policy(observations, training=False), tf.squeeze(self.value(observations, training=False), -1)

    def checkpoint_objects(self):
        return {"policy": self.policy, "value": self.value, "optimizer": self.optimizer, "updates": self.updates,
                **self.state.checkpoint_objects()}
