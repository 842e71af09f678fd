"""Decoding a captioner: batched beam search compiled into the graph, and the same search in Python.

Both searches take a *step function*, the decoder's one step:

    step_fn(tokens [N] int32, states [list of [N, ...]], context [N, ...]) -> (log_probs [N, V], states, alpha [N, L])

``context`` is what the decoder attends over (the encoder's feature grid), ``alpha`` the
attention weights of the step (``L = 0`` columns for a decoder without attention). The search
runs ``B`` images with ``k`` beams each as one batch of ``B * k`` rows (image-major: rows
``b * k .. b * k + k - 1`` are image ``b``'s beams).

The algorithm (the same in :func:`beam_search` and :func:`beam_search_python`):

1. Every image starts with one live beam (``<START>``, score 0); its other ``k - 1`` slots have
   score ``-inf``, so the first step expands the one beam only.
2. At each step every beam proposes all ``V`` continuations except ``<NULL>`` and ``<START>``
   (never words of a caption), scored ``score + log p(word)``; a finished beam (it emitted ``<END>``) proposes only ``<NULL>`` at no cost, so it stays in the
   beam with its score. The ``k`` best of the ``k * V`` candidates survive (``tf.math.top_k``; ties
   go to the lower candidate index, as NumPy's stable sort orders them), carrying their parent's
   states, words and attention maps.
3. The search stops after ``max_length`` steps or when every beam of every image has finished.
   Each image's result is the beam with the highest *normalised* score ``score / lp(length)``,
   with Wu et al.'s (2016) length penalty ``lp(n) = ((5 + n) / 6) ** length_penalty``, where
   ``n`` counts the generated tokens including ``<END>``. ``length_penalty = 0`` ranks by raw
   log-probability, which favours short captions; larger values favour longer ones.

Greedy decoding is the search with ``k = 1`` (the arg-max word at every step; the length penalty
cannot change a single beam's result). The compiled search is a ``tf.while_loop`` inside the
caller's ``tf.function``, so it runs in the graph of a SavedModel signature.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError


@dataclasses.dataclass
class Decoded:
    """A search's result per image, as NumPy arrays or tensors.

    ``tokens`` ``[B, max_length]`` int32: the words, then ``<END>`` (if emitted), then ``<NULL>``;
    ``lengths`` ``[B]``: generated tokens including ``<END>``; ``scores`` ``[B]``: total
    log-probability; ``normalized_scores`` ``[B]``: ``scores / lp(lengths)``; ``attention``
    ``[B, max_length, L]``: the attention weights of each generated token (zeros after the end).
    """

    tokens: object
    lengths: object
    scores: object
    normalized_scores: object
    attention: object


def length_penalty_factor(lengths, length_penalty):
    """Wu et al.'s ``((5 + n) / 6) ** length_penalty`` (NumPy or TensorFlow)."""
    if isinstance(lengths, np.ndarray):
        return ((5.0 + lengths.astype(np.float64)) / 6.0) ** length_penalty
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, length_penalty)


def check_search(beam_width, max_length, length_penalty):
    """Validated ``(beam_width, max_length, length_penalty)``."""
    beam_width = validation.positive_int("beam_width", beam_width)
    max_length = validation.positive_int("max_length", max_length)
    length_penalty = validation.positive_number("length_penalty", length_penalty, allow_zero=True)
    return beam_width, max_length, float(length_penalty)


def _by_beam(x, k):
    """``[B * k, ...]`` -> ``[B, k, ...]``."""
    return tf.reshape(x, tf.concat([[-1, k], tf.shape(x)[1:]], 0))


def _flat(x):
    """``[B, k, ...]`` -> ``[B * k, ...]``."""
    return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))


def beam_search(step_fn, states, context, *, start_id, end_id, null_id=0, max_length=16, beam_width=3,
                length_penalty=0.0, attention_size=0):
    """Batched beam search in the graph (see the module docstring); returns :class:`Decoded` tensors.

    ``states``: the decoder's initial states, each ``[B, ...]``; ``context``: ``[B, ...]``;
    ``attention_size``: ``L``, the width of ``alpha`` (a static int). Call it inside a
    ``tf.function``: the steps are a ``tf.while_loop``.
    """
    k, max_length, length_penalty = check_search(beam_width, max_length, length_penalty)
    batch = tf.shape(context)[0]
    context = tf.repeat(context, k, axis=0)
    states = [tf.repeat(s, k, axis=0) for s in states]
    first = tf.constant([0.0] + [-np.inf] * (k - 1), tf.float32)
    scores = tf.tile(first[None, :], [batch, 1])
    finished = tf.zeros([batch, k], tf.bool)
    lengths = tf.zeros([batch, k], tf.int32)
    tokens = tf.fill([batch * k], tf.constant(start_id, tf.int32))
    words = tf.zeros([batch, k, max_length], tf.int32)
    attention = tf.zeros([batch, k, max_length, attention_size], tf.float32)

    def body(t, tokens, states, scores, finished, lengths, words, attention):
        log_probs, new_states, alpha = step_fn(tokens, states, context)
        log_probs = _by_beam(tf.cast(log_probs, tf.float32), k)
        vocab = tf.shape(log_probs)[-1]
        only_null = tf.one_hot(null_id, vocab, on_value=0.0, off_value=-np.inf)
        never = tf.one_hot(null_id, vocab, on_value=True, off_value=False) | tf.one_hot(
            start_id, vocab, on_value=True, off_value=False)
        log_probs = tf.where(never, -np.inf, log_probs)
        log_probs = tf.where(finished[..., None], only_null, log_probs)
        candidates = tf.reshape(scores[..., None] + log_probs, [batch, -1])
        top_scores, top = tf.math.top_k(candidates, k)
        parent, word = top // vocab, top % vocab
        was_finished = tf.gather(finished, parent, batch_dims=1)
        word = tf.where(was_finished, tf.constant(null_id, tf.int32), word)
        here = tf.one_hot(t, max_length, dtype=tf.int32)
        words = tf.gather(words, parent, batch_dims=1) + word[..., None] * here
        alpha = tf.where(was_finished[..., None], 0.0,
                         tf.gather(_by_beam(tf.cast(alpha, tf.float32), k), parent, batch_dims=1))
        attention = tf.gather(attention, parent, batch_dims=1) + alpha[:, :, None, :] * tf.cast(here, tf.float32)[:, None]
        lengths = tf.gather(lengths, parent, batch_dims=1) + tf.cast(~was_finished, tf.int32)
        finished = was_finished | tf.equal(word, end_id)
        new_states = [_flat(tf.gather(_by_beam(s, k), parent, batch_dims=1)) for s in new_states]
        return t + 1, _flat(word), new_states, top_scores, finished, lengths, words, attention

    def cond(t, tokens, states, scores, finished, *_):
        return (t < max_length) & ~tf.reduce_all(finished)

    _, _, _, scores, finished, lengths, words, attention = tf.while_loop(
        cond, body, (tf.constant(0), tokens, states, scores, finished, lengths, words, attention),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]), [tf.TensorShape([None]).concatenate(s.shape[1:])
                                                                        for s in states],
                          tf.TensorShape([None, k]), tf.TensorShape([None, k]), tf.TensorShape([None, k]),
                          tf.TensorShape([None, k, max_length]), tf.TensorShape([None, k, max_length, attention_size])))
    normalized = scores / length_penalty_factor(lengths, length_penalty)
    best = tf.argmax(normalized, axis=1, output_type=tf.int32)

    def pick(x):
        return tf.gather(x, best, batch_dims=1)

    return Decoded(pick(words), pick(lengths), pick(scores), pick(normalized), pick(attention))


def beam_search_python(step_fn, states, context, *, start_id, end_id, null_id=0, max_length=16, beam_width=3,
                       length_penalty=0.0):
    """The same search as :func:`beam_search`, step by step in Python with NumPy bookkeeping.

    The teaching version and the benchmark's baseline: ``step_fn`` is called once per step
    (eagerly, or a compiled step), everything else happens on the host. Returns :class:`Decoded`
    NumPy arrays equal to the compiled search's.
    """
    k, max_length, length_penalty = check_search(beam_width, max_length, length_penalty)
    context = np.asarray(context)
    batch = len(context)
    context = np.repeat(context, k, axis=0)
    states = [np.repeat(np.asarray(s), k, axis=0) for s in states]
    scores = np.tile(np.array([0.0] + [-np.inf] * (k - 1), np.float32), (batch, 1))
    finished = np.zeros((batch, k), bool)
    lengths = np.zeros((batch, k), np.int32)
    tokens = np.full(batch * k, start_id, np.int32)
    words = np.zeros((batch, k, max_length), np.int32)
    attention = None
    rows = np.arange(batch)[:, None]
    for t in range(max_length):
        if finished.all():
            break
        log_probs, new_states, alpha = step_fn(tf.constant(tokens), [tf.constant(s) for s in states],
                                               tf.constant(context))
        log_probs = np.array(log_probs, np.float32).reshape(batch, k, -1)
        alpha = np.asarray(alpha, np.float32).reshape(batch, k, -1)
        if attention is None:
            attention = np.zeros((batch, k, max_length, alpha.shape[-1]), np.float32)
        vocab = log_probs.shape[-1]
        log_probs[..., [null_id, start_id]] = -np.inf
        log_probs[finished] = -np.inf
        log_probs[finished, null_id] = 0.0
        candidates = (scores[..., None] + log_probs).reshape(batch, -1)
        top = np.argsort(-candidates, axis=1, kind="stable")[:, :k]
        parent, word = top // vocab, (top % vocab).astype(np.int32)
        was_finished = finished[rows, parent]
        word[was_finished] = null_id
        words = words[rows, parent]
        words[:, :, t] = word
        attention = attention[rows, parent]
        attention[:, :, t] = np.where(was_finished[..., None], 0.0, alpha[rows, parent])
        lengths = lengths[rows, parent] + (~was_finished)
        finished = was_finished | (word == end_id)
        scores = candidates[rows, top]
        flat_parent = (rows * k + parent).reshape(-1)
        states = [np.asarray(s)[flat_parent] for s in new_states]
        tokens = word.reshape(-1)
    if attention is None:
        attention = np.zeros((batch, k, max_length, 0), np.float32)
    normalized = (scores / length_penalty_factor(lengths, length_penalty)).astype(np.float32)
    best = normalized.argmax(axis=1)
    pick = np.arange(batch), best
    return Decoded(words[pick], lengths[pick], scores[pick], normalized[pick], attention[pick])


def strip(tokens, end_id, null_id=0):
    """Each row of ``tokens`` cut before its first ``<END>`` (and ``<NULL>``), as lists of ids."""
    out = []
    for row in np.asarray(tokens):
        words = []
        for token in row.tolist():
            if token in (end_id, null_id):
                break
            words.append(token)
        out.append(words)
    return out


def check_beam_width(beam_width, vocab_size):
    """A beam cannot be wider than the vocabulary: the first step has only ``V`` candidates."""
    beam_width = validation.positive_int("beam_width", beam_width)
    if beam_width > vocab_size:
        raise ConfigError(f"beam_width {beam_width} is larger than the vocabulary ({vocab_size} words)")
    return beam_width
