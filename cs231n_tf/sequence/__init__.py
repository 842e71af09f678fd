"""Recurrent sequence models (lecture 10, assignment 3): the course's hand-written ops and a Keras char-RNN.

- :class:`CaptioningRNN`: the assignment's image-captioning network (vanilla RNN or LSTM), with
  the course's ``params`` dict, ``loss(features, captions) -> (loss, grads)`` and greedy
  ``sample(features, max_length)``.
- :class:`Parameter`: the ``tf.Variable`` its ``params`` hold, which also has NumPy's ``size``.
- :class:`CharRNNTask` / :class:`CharRNNConfig` (``charrnn.py``): Karpathy's char-RNN on the
  engine (stateful truncated BPTT, LSTM/GRU), :func:`train_charrnn` and :func:`sample_charrnn`
  (``charrnn.train`` / ``charrnn.sample``);
  :class:`CharVocab` and :func:`load_text` (``text.py``) its corpus and vocabulary.
- ``captions.py``, the captioner's data: :class:`Vocabulary` (``<NULL> <START> <END> <UNK>``),
  :func:`tokenize`, :func:`synthetic_captions` (generated shapes with true captions),
  :func:`load_coco_captions` (the COCO captions format) and :func:`load_captions` (splits by image,
  vocabulary from the training split, epoch pipelines, BLEU references).
"""

from cs231n_tf.sequence.captioning_rnn import CaptioningRNN, Parameter
from cs231n_tf.sequence.captions import (
    CaptionData, CaptionSet, Vocabulary, load_captions, load_coco_captions, synthetic_captions, tokenize,
)
from cs231n_tf.sequence.charrnn import CharRNNConfig, CharRNNSampler, CharRNNTask, load_sampler
from cs231n_tf.sequence.charrnn import sample as sample_charrnn
from cs231n_tf.sequence.charrnn import train as train_charrnn
from cs231n_tf.sequence.text import CharVocab, load_text

__all__ = ["CaptionData", "CaptionSet", "CaptioningRNN", "CharRNNConfig", "CharRNNSampler", "CharRNNTask", "CharVocab", "Parameter", "load_sampler",
           "Vocabulary", "load_captions", "load_coco_captions", "load_text", "sample_charrnn", "synthetic_captions",
           "tokenize", "train_charrnn"]
