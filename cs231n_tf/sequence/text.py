"""The char-RNN's corpus and vocabulary (lecture 10), NumPy only.

- :func:`load_text`: ``"pydoc"`` (the default) is the text of Python's own ``pydoc_data.topics``
  (the ``topics`` dict's values joined in sorted key order: about 465 kB of English prose and
  code, shipped with every Python), anything else a UTF-8 text file.
- :class:`CharVocab`: the sorted unique characters, ``encode`` / ``decode``.
- :func:`split_text`: the validation split, the *end* of the text (the last ``validation_fraction``).
- :func:`tbptt_chunks`: the stateful truncated-backpropagation-through-time layout: the text is
  cut into ``streams`` contiguous streams and batch ``k`` holds chunk ``k`` of every stream, so
  chunk ``k + 1`` of stream ``i`` continues chunk ``k`` of stream ``i`` and a hidden state carried
  from one batch to the next is the state of the text read so far.
"""

import hashlib
import os

import numpy as np

from cs231n_tf.errors import ConfigError, DataError

PYDOC = "pydoc"


def load_text(spec=PYDOC):
    """The corpus named by ``spec``: ``"pydoc"`` or the path of a UTF-8 text file.

    A missing, empty, binary (NUL bytes) or non-UTF-8 file raises :class:`DataError`.
    """
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"text must be 'pydoc' or the path of a UTF-8 text file, got {spec!r}")
    if spec == PYDOC:
        from pydoc_data import topics

        return "".join(topics.topics[key] for key in sorted(topics.topics))
    if not os.path.exists(spec):
        raise DataError(f"text file {spec!r} does not exist")
    if not os.path.isfile(spec):
        raise DataError(f"text file {spec!r} is not a file")
    try:
        with open(spec, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DataError(f"cannot read text file {spec!r}: {exc.strerror or exc}") from None
    if not data:
        raise DataError(f"text file {spec!r} is empty")
    if b"\x00" in data:
        raise DataError(f"text file {spec!r} is binary (it contains NUL bytes), not UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"text file {spec!r} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    if text.startswith("\ufeff"):  # a byte-order mark is not part of the text
        text = text[1:]
    if not text:
        raise DataError(f"text file {spec!r} is empty")
    return text


def text_digest(text):
    """SHA-256 of the text's UTF-8 bytes (recorded with a run, checked on resume)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _codes(text):
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


def _shown(chars, limit=10):
    chars = sorted(chars)
    shown = ", ".join(repr(c) for c in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


class CharVocab:
    """The characters of a text, sorted by code point; id ``i`` is ``chars[i]``."""

    def __init__(self, chars):
        if isinstance(chars, (list, tuple)):
            chars = "".join(chars)
        if not isinstance(chars, str) or not chars:
            raise ConfigError(f"a vocabulary needs at least one character, got {chars!r}")
        codes = _codes(chars)
        if len(np.unique(codes)) != len(codes) or np.any(np.diff(codes.astype(np.int64)) <= 0):
            raise ConfigError("vocabulary characters must be unique and sorted")
        self.chars = chars
        self._codes = codes

    @classmethod
    def from_text(cls, text):
        if not text:
            raise DataError("the text is empty")
        return cls("".join(sorted(set(text))))

    def __len__(self):
        return len(self.chars)

    @property
    def size(self):
        return len(self.chars)

    def __eq__(self, other):
        return isinstance(other, CharVocab) and other.chars == self.chars

    def __repr__(self):
        return f"CharVocab({len(self)} characters)"

    def encode(self, text, what="text"):
        """``text`` as int32 ids; characters outside the vocabulary raise :class:`ConfigError` naming them."""
        if not isinstance(text, str):
            raise ConfigError(f"{what} must be a string, got {type(text).__name__}")
        codes = _codes(text)
        ids = np.searchsorted(self._codes, codes).astype(np.int32)
        known = self._codes[np.minimum(ids, len(self._codes) - 1)] == codes
        if not np.all(known):
            unknown = {text[i] for i in np.flatnonzero(~known)}
            raise ConfigError(f"{what} has character(s) the model's vocabulary does not: {_shown(unknown)}")
        return ids

    def decode(self, ids):
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ConfigError(f"ids must be in 0..{len(self) - 1}, got {ids.min()}..{ids.max()}")
        return "".join(self.chars[i] for i in ids)


def split_text(ids, validation_fraction=0.05):
    """``(train, validation)``: the validation split is the last ``validation_fraction`` of ``ids``."""
    if not (isinstance(validation_fraction, (int, float)) and not isinstance(validation_fraction, bool)
            and 0.0 <= validation_fraction < 1.0):
        raise ConfigError(f"validation_fraction must be a number in [0, 1), got {validation_fraction!r}")
    n_val = int(round(len(ids) * validation_fraction))
    if n_val == 0:
        return ids, ids[:0]
    return ids[:-n_val], ids[-n_val:]


def chunk_count(length, streams, seq_len):
    """How many ``seq_len`` chunks each of ``streams`` streams of ``length`` ids holds (targets included)."""
    return ((length - 1) // streams) // seq_len if length > 1 else 0


def tbptt_chunks(ids, streams, seq_len):
    """``(inputs, targets)``, each ``[chunks, streams, seq_len]`` int32, for stateful TBPTT.

    Stream ``i`` is ``ids[i * L : (i + 1) * L + 1]`` with ``L = (len(ids) - 1) // streams``;
    ``inputs[k, i]`` is its ``k``-th chunk of ``seq_len`` ids and ``targets[k, i]`` the same chunk
    shifted by one, so ``inputs[k + 1, i, 0] == targets[k, i, -1]``. Ids past the last whole chunk
    of a stream are dropped.
    """
    ids = np.asarray(ids, dtype=np.int32)
    chunks = chunk_count(len(ids), streams, seq_len)
    if chunks == 0:
        raise DataError(f"{len(ids)} characters hold no chunk of {seq_len} characters in each of {streams} "
                        f"stream(s); they need at least {streams * seq_len + 1}")
    stream_len = (len(ids) - 1) // streams
    used = chunks * seq_len
    starts = np.arange(streams) * stream_len
    index = starts[:, None] + np.arange(used)[None, :]  # [streams, used]
    x = ids[index].reshape(streams, chunks, seq_len).transpose(1, 0, 2)
    y = ids[index + 1].reshape(streams, chunks, seq_len).transpose(1, 0, 2)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)
