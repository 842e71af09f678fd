"""Recurrent sequence models on the hand-written ops (lecture 10, assignment 3).

- :class:`CaptioningRNN`: the assignment's image-captioning network (vanilla RNN or LSTM), with
  the course's ``params`` dict, ``loss(features, captions) -> (loss, grads)`` and greedy
  ``sample(features, max_length)``.
- :class:`Parameter`: the ``tf.Variable`` its ``params`` hold, which also has NumPy's ``size``.
"""

from cs231n_tf.sequence.captioning_rnn import CaptioningRNN, Parameter

__all__ = ["CaptioningRNN", "Parameter"]
