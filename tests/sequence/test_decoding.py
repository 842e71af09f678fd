"""Beam search: the compiled search against exhaustive search, its Python twin and greedy arg-max."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.sequence import decoding

NULL, START, END = 0, 1, 2
V, H, L = 6, 5, 4


class ToyDecoder:
    """A random recurrent decoder: h' = tanh(E[token] + W h + context . U), log-softmax of h' Wo."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.E = tf.constant(rng.normal(size=(V, H)), tf.float32)
        self.W = tf.constant(rng.normal(size=(H, H)) * 0.8, tf.float32)
        self.U = tf.constant(rng.normal(size=(L, H)), tf.float32)
        self.Wo = tf.constant(rng.normal(size=(H, V)) * 2.0, tf.float32)
        self.A = tf.constant(rng.normal(size=(H, L)), tf.float32)

    def step(self, tokens, states, context):
        (h,) = states
        h = tf.tanh(tf.gather(self.E, tokens) + h @ self.W + context @ self.U)
        alpha = tf.nn.softmax(h @ self.A)
        return tf.nn.log_softmax(h @ self.Wo), [h], alpha


def _compiled(dec, states, context, **kw):
    @tf.function
    def run(states, context):
        return vars(decoding.beam_search(dec.step, states, context, start_id=START, end_id=END, null_id=NULL,
                                         attention_size=L, **kw))
    return {k: v.numpy() for k, v in run(states, context).items()}


def _sequence_log_prob(dec, h0, context, words):
    """Log-probability of generating ``words`` (ending with END or not) from START."""
    token, states, total = START, [h0[None]], 0.0
    for w in words:
        log_probs, states, _ = dec.step(tf.constant([token]), states, context[None])
        total += float(log_probs[0, w])
        token = w
    return total


def _exhaustive(dec, h0, context, max_length, length_penalty):
    best, best_words = -np.inf, None
    words_only = [w for w in range(V) if w not in (NULL, START, END)]
    for n in range(1, max_length + 1):
        for prefix in itertools.product(words_only + [END], repeat=n):
            if END in prefix[:-1]:
                continue
            lp = _sequence_log_prob(dec, h0, context, list(prefix))
            score = lp / decoding.length_penalty_factor(np.array(n), length_penalty)
            # Only complete captions (ended) or ones that used the whole length compete.
            if prefix[-1] == END or n == max_length:
                if score > best + 1e-6:
                    best, best_words = score, list(prefix)
    return best, best_words


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_beam_as_wide_as_the_search_space_finds_the_exhaustive_optimum(length_penalty):
    dec = ToyDecoder(seed=3)
    rng = np.random.default_rng(1)
    h0 = rng.normal(size=(2, H)).astype(np.float32)
    context = rng.normal(size=(2, L)).astype(np.float32)
    max_length = 3
    out = _compiled(dec, [tf.constant(h0)], tf.constant(context), max_length=max_length,
                    beam_width=V ** (max_length - 1), length_penalty=length_penalty)
    for b in range(2):
        best, words = _exhaustive(dec, h0[b], context[b], max_length, length_penalty)
        got = [int(t) for t in out["tokens"][b][:out["lengths"][b]]]
        assert got == words
        np.testing.assert_allclose(out["normalized_scores"][b], best, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out["scores"][b], _sequence_log_prob(dec, h0[b], context[b], got), atol=1e-4)


@pytest.mark.parametrize("beam_width", [1, 2, 4])
def test_the_compiled_search_equals_the_python_search(beam_width):
    dec = ToyDecoder(seed=5)
    rng = np.random.default_rng(2)
    h0 = rng.normal(size=(7, H)).astype(np.float32)
    context = rng.normal(size=(7, L)).astype(np.float32)
    kw = dict(max_length=6, beam_width=beam_width, length_penalty=0.6)
    out = _compiled(dec, [tf.constant(h0)], tf.constant(context), **kw)
    ref = decoding.beam_search_python(dec.step, [h0], context, start_id=START, end_id=END, null_id=NULL, **kw)
    np.testing.assert_array_equal(out["tokens"], ref.tokens)
    np.testing.assert_array_equal(out["lengths"], ref.lengths)
    np.testing.assert_allclose(out["scores"], ref.scores, atol=1e-5)
    np.testing.assert_allclose(out["attention"], ref.attention, atol=1e-6)


def test_width_one_is_greedy_argmax_and_output_layout():
    dec = ToyDecoder(seed=7)
    rng = np.random.default_rng(3)
    h0 = rng.normal(size=(5, H)).astype(np.float32)
    context = rng.normal(size=(5, L)).astype(np.float32)
    max_length = 8
    out = _compiled(dec, [tf.constant(h0)], tf.constant(context), max_length=max_length, beam_width=1)
    for b in range(5):
        token, states, words, alphas = START, [h0[b:b + 1]], [], []
        for _ in range(max_length):
            log_probs, states, alpha = dec.step(tf.constant([token]), states, context[b:b + 1])
            allowed = log_probs[0].numpy().copy()
            allowed[[NULL, START]] = -np.inf
            token = int(np.argmax(allowed))
            words.append(token)
            alphas.append(alpha[0].numpy())
            if token == END:
                break
        n = len(words)
        assert out["lengths"][b] == n
        np.testing.assert_array_equal(out["tokens"][b][:n], words)
        assert (out["tokens"][b][n:] == NULL).all()
        np.testing.assert_allclose(out["attention"][b][:n], np.stack(alphas), atol=1e-6)
        assert (out["attention"][b][n:] == 0).all()
    assert decoding.strip(out["tokens"], END) == [
        [int(t) for t in row[:n - (row[n - 1] == END)]] for row, n in zip(out["tokens"], out["lengths"])]


def test_search_settings_are_validated():
    with pytest.raises(ConfigError, match="beam_width"):
        decoding.check_search(0, 5, 0.0)
    with pytest.raises(ConfigError, match="length_penalty"):
        decoding.check_search(2, 5, -1.0)
    with pytest.raises(ConfigError, match="larger than the vocabulary"):
        decoding.check_beam_width(10, 6)
