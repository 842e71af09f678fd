"""Corpus BLEU-1..4 of generated captions, computed by sacrebleu (Papineni et al. 2002).

Captions are compared as token lists made by :func:`cs231n_tf.sequence.captions.tokenize`
(lowercase, punctuation dropped) for hypotheses and references alike; they are joined with spaces
and given to sacrebleu with ``tokenize="none"``, so sacrebleu's own tokeniser changes nothing.
BLEU-n is the geometric mean of the clipped n-gram precisions 1..n times the brevity penalty,
with the corpus reference length summed from each hypothesis's closest reference length, without
smoothing — the definition the COCO caption evaluation uses. Images may have different numbers
of references. Scores are in [0, 1] (sacrebleu's score / 100), as captioning papers report them.
"""

from cs231n_tf.errors import DataError

ORDERS = (1, 2, 3, 4)


def _line(tokens, what):
    if isinstance(tokens, str):
        raise DataError(f"{what} must be a list of tokens, not a string ({tokens[:40]!r})")
    tokens = [str(t) for t in tokens]
    if any(not t or any(ch.isspace() for ch in t) for t in tokens):
        raise DataError(f"{what} has an empty token or one with whitespace: {tokens[:10]!r}")
    return " ".join(tokens)


def corpus_bleu(hypotheses, references, orders=ORDERS):
    """``{"bleu1": ..., "bleu4": ...}`` of ``hypotheses`` against ``references``.

    ``hypotheses``: one token list per image; ``references``: per image, a non-empty list of
    token lists. Returns floats in [0, 1] (``bleuN`` for each ``N`` in ``orders``).
    """
    from sacrebleu.metrics import BLEU

    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise DataError(f"{len(hypotheses)} hypotheses but references for {len(references)} images")
    if not hypotheses:
        raise DataError("BLEU needs at least one hypothesis")
    hyp_lines = [_line(h, f"hypothesis {i}") for i, h in enumerate(hypotheses)]
    ref_lines = []
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise DataError(f"image {i} needs a non-empty list of reference token lists, got {refs!r:.60}")
        ref_lines.append([_line(r, f"reference {j} of image {i}") for j, r in enumerate(refs)])
    # sacrebleu takes one stream per reference slot; None marks an image with fewer references.
    slots = max(len(r) for r in ref_lines)
    streams = [[r[j] if j < len(r) else None for r in ref_lines] for j in range(slots)]
    out = {}
    for n in orders:
        metric = BLEU(max_ngram_order=int(n), tokenize="none", smooth_method="none", effective_order=False,
                      force=True)
        out[f"bleu{int(n)}"] = float(metric.corpus_score(hyp_lines, streams).score) / 100.0
    return out
