"""Fooling images (lecture 12, assignment 3): gradient ascent on a wrong class's score until the network
predicts it, with an imperceptible change. The work is :func:`cs231n_tf.adversarial.fool`.
"""

from cs231n_tf.adversarial.attacks import fool


def make_fooling_image(X, target_y, model, learning_rate=1.0, max_steps=100, clip_min=None, clip_max=None):
    """Assignment 3's function: ``X`` ``(N, H, W, C)`` changed until ``model`` predicts ``target_y``.

    Each step adds ``learning_rate * g / ||g||_2`` with ``g = d score_target / d X``. Returns a dict:
    ``images`` (like ``X``), ``steps``, ``success``, ``linf`` and ``l2`` (the size of the change),
    each ``(N,)``.
    """
    return fool(model, X, target_y, learning_rate, max_steps, clip_min=clip_min, clip_max=clip_max)
