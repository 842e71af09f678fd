"""Training: the tf.function loop, strategies, checkpoints, logging and training tools."""
