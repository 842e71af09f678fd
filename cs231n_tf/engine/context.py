"""What a task's step needs from the engine, the same on one device or many.

Losses are averaged over the *global* batch (``tf.nn.compute_average_loss``): each replica
returns its share, and the shares sum to the mean over the whole batch, so gradients are the same
on 1 or N replicas. Regularisation is divided by the replica count for the same reason.
"""

import contextlib

import tensorflow as tf

LossScaleOptimizer = tf.keras.mixed_precision.LossScaleOptimizer


class StepContext:
    """Per-replica helpers handed to :meth:`Task.train_step` and :meth:`Task.eval_step`.

    Attributes: ``strategy``, ``num_replicas``, ``global_batch_size``, ``mixed_precision`` (the
    policy name or ``None``) and ``step`` (the run's ``int64`` step variable, readable in the graph).
    """

    def __init__(self, strategy, global_batch_size, mixed_precision=None, step=None):
        self.strategy = strategy
        self.num_replicas = strategy.num_replicas_in_sync
        self.global_batch_size = int(global_batch_size)
        self.mixed_precision = mixed_precision
        self.step = step

    def mean(self, per_example, global_batch_size=None):
        """This replica's share of the global-batch mean of ``per_example`` values (shape ``[b, ...]``).

        Extra axes are averaged first, so ``per_example`` may be per pixel or per token.
        """
        values = tf.cast(per_example, tf.float32)
        if values.shape.rank and values.shape.rank > 1:
            values = tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))
        if global_batch_size is None:
            global_batch_size = self.global_batch_size
        return tf.nn.compute_average_loss(values, global_batch_size=global_batch_size)

    def scale_regularization(self, loss):
        """A term computed identically on every replica (weight decay), divided by the replica count."""
        return tf.nn.scale_regularization_loss(tf.cast(loss, tf.float32))

    def replica_share(self, value):
        """A value that is the same on every replica, as the share that sums to it over replicas."""
        return tf.cast(value, tf.float32) / self.num_replicas

    def optimizer(self, optimizer):
        """``optimizer`` wrapped for the run's precision: a dynamic ``LossScaleOptimizer`` under ``mixed_float16``.

        Call once per optimizer in :meth:`Task.build`, so every optimizer has its own loss scale.
        """
        if self.mixed_precision == "mixed_float16" and not isinstance(optimizer, LossScaleOptimizer):
            return LossScaleOptimizer(optimizer)
        return optimizer

    def minimize(self, tape, loss, variables, optimizer, gradient_transform=None):
        """Gradients of ``loss`` recorded on ``tape``, applied to ``variables`` with ``optimizer``.

        Under a ``LossScaleOptimizer`` the loss is scaled on the tape and the gradients unscaled
        before ``gradient_transform(grads) -> grads`` (masks, custom clipping) and the update; a
        non-finite scaled gradient makes the optimizer skip the step and lower its scale. Returns
        the (unscaled, transformed) gradients.
        """
        variables = list(variables)
        scaled = isinstance(optimizer, LossScaleOptimizer)
        target = loss
        if scaled:
            # Record the scaling too, so its gradient flows through the tape.
            with tape:
                target = optimizer.get_scaled_loss(loss)
        grads = tape.gradient(target, variables)
        if scaled:
            grads = optimizer.get_unscaled_gradients(grads)
        if gradient_transform is not None:
            grads = list(gradient_transform(grads))
        optimizer.apply_gradients(zip(grads, variables))
        return grads


@contextlib.contextmanager
def precision(policy):
    """Build models under the Keras mixed-precision ``policy`` (a name, or None for the current one).

    The global policy is restored afterwards, so building one task's models never changes how the
    next model in the process is built.
    """
    previous = tf.keras.mixed_precision.global_policy()
    if policy:
        tf.keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
