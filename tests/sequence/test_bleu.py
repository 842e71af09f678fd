"""Corpus BLEU through sacrebleu against BLEU computed by hand (Papineni et al.'s definition)."""

import collections
import math

import numpy as np
import pytest

from cs231n_tf.errors import DataError
from cs231n_tf.sequence.bleu import corpus_bleu


def _ngrams(tokens, n):
    return collections.Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def hand_bleu(hypotheses, references, max_order):
    """Clipped n-gram precisions summed over the corpus, closest reference length, no smoothing."""
    matches, totals = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        hyp_len += len(hyp)
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
        for n in range(1, max_order + 1):
            counts = _ngrams(hyp, n)
            best = collections.Counter()
            for r in refs:
                best |= _ngrams(r, n)
            matches[n - 1] += sum(min(c, best[g]) for g, c in counts.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_order
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(log_precision)


def test_perfect_and_disjoint_captions():
    refs = [[["a", "red", "circle", "left", "of", "a", "blue", "square"]]]
    assert corpus_bleu([refs[0][0]], refs) == pytest.approx({f"bleu{n}": 1.0 for n in (1, 2, 3, 4)})
    assert corpus_bleu([["green", "green"]], refs)["bleu1"] == 0.0


def test_matches_the_hand_computation_with_varied_reference_counts():
    rng = np.random.default_rng(0)
    words = ["a", "red", "blue", "circle", "square", "left", "of", "above", "there", "is"]
    hyps, refs = [], []
    for i in range(40):
        hyps.append(list(rng.choice(words, size=rng.integers(3, 9))))
        refs.append([list(rng.choice(words, size=rng.integers(3, 9))) for _ in range(1 + i % 3)])
    got = corpus_bleu(hyps, refs)
    for n in (1, 2, 3, 4):
        assert got[f"bleu{n}"] == pytest.approx(hand_bleu(hyps, refs, n), abs=1e-9)
    assert got["bleu1"] > got["bleu2"] > got["bleu3"] >= got["bleu4"]


def test_brevity_penalty_uses_the_closest_reference():
    hyp = [["a", "red", "circle"]]
    refs = [[["a", "red", "circle", "is", "here"], ["a", "red", "circle", "is", "here", "now", "yes"]]]
    assert corpus_bleu(hyp, refs, orders=(1,))["bleu1"] == pytest.approx(math.exp(1 - 5 / 3))


def test_bad_input():
    with pytest.raises(DataError, match="hypotheses but references"):
        corpus_bleu([["a"]], [])
    with pytest.raises(DataError, match="non-empty list"):
        corpus_bleu([["a"]], [[]])
    with pytest.raises(DataError, match="not a string"):
        corpus_bleu(["a red circle"], [[["a"]]])
    with pytest.raises(DataError, match="whitespace"):
        corpus_bleu([["a red"]], [[["a"]]])
