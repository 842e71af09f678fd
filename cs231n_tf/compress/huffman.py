"""Canonical Huffman coding and Deep Compression's relative sparse indexing (tier 1, by hand).

Huffman (1952), "A method for the construction of minimum-redundancy codes": repeatedly merge
the two least frequent subtrees; a symbol's code length is its depth. The code is stored
*canonically* (Schwartz & Kallick 1964): only the length of every symbol is kept, and codes are
handed out in order of (length, symbol), so the table costs a few bytes per symbol and the
decoder rebuilds exactly the encoder's codes. For at least two distinct symbols the average code
length L satisfies ``H <= L < H + 1`` where ``H`` is the entropy in bits (Shannon's bound).

Han et al. 2016, "Deep Compression" (sec. 2, fig. 2) store a pruned weight matrix as the list of
its nonzeros, each with the *gap* to the previous nonzero in a few bits; a gap larger than the
biggest representable one is bridged with a *filler zero* (an entry whose value is zero).
:func:`relative_index` / :func:`from_relative_index` implement that exactly.

Serialised layout of :func:`encode` (all integers are LEB128 varints):
``num_distinct, (symbol, length) * num_distinct, num_symbols, payload bytes`` where the payload is
the concatenated codes, most significant bit first, zero-padded to a whole byte.
"""

import dataclasses
import heapq
import math

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, DataError, InputTypeError

# Codes longer than this are decoded bit by bit instead of through a 2**L lookup table.
_MAX_TABLE_BITS = 20


def write_varint(value, out):
    """Append ``value`` (int >= 0) to bytearray ``out`` as an unsigned LEB128 varint."""
    value = int(value)
    if value < 0:
        raise ConfigError(f"varints hold integers >= 0, got {value}")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def read_varint(buf, offset):
    """Read a varint from ``buf`` at ``offset``; returns ``(value, new_offset)``."""
    value, shift = 0, 0
    while True:
        if offset >= len(buf):
            raise DataError("truncated Huffman stream: a varint runs past the end of the data")
        byte = buf[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def _as_symbols(symbols):
    arr = np.asarray(symbols)
    if arr.size == 0:
        return arr.reshape(0).astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputTypeError(f"Huffman symbols must be integers >= 0, got dtype {arr.dtype}")
    arr = arr.reshape(-1).astype(np.int64)
    if arr.min() < 0:
        raise ConfigError(f"Huffman symbols must be integers >= 0, got {int(arr.min())}")
    return arr


def frequencies(symbols):
    """``{symbol: count}`` of an integer sequence."""
    values, counts = np.unique(_as_symbols(symbols), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def entropy_bits(symbols):
    """Empirical entropy ``H = -sum p log2 p`` in bits per symbol (0 for fewer than two symbols)."""
    counts = np.array(list(frequencies(symbols).values()), np.float64)
    if counts.size < 2:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def code_lengths(freqs):
    """Huffman code length of every symbol of ``freqs`` (``{symbol: count > 0}``).

    A lone symbol gets a 1-bit code (a code must have at least one bit to be decodable).
    """
    if not freqs:
        return {}
    if len(freqs) == 1:
        return {next(iter(freqs)): 1}
    # Heap entries: (weight, tie-break id, symbols in the subtree). Merging two subtrees makes every
    # symbol in them one level deeper.
    heap = [(count, i, [sym]) for i, (sym, count) in enumerate(sorted(freqs.items()))]
    heapq.heapify(heap)
    lengths = {sym: 0 for sym in freqs}
    next_id = len(heap)
    while len(heap) > 1:
        w1, _, s1 = heapq.heappop(heap)
        w2, _, s2 = heapq.heappop(heap)
        for sym in s1 + s2:
            lengths[sym] += 1
        heapq.heappush(heap, (w1 + w2, next_id, s1 + s2))
        next_id += 1
    return lengths


@dataclasses.dataclass
class HuffmanCode:
    """A canonical prefix code: ``lengths[symbol]`` bits each, codes assigned by (length, symbol)."""

    lengths: dict

    def __post_init__(self):
        self.codes = {}
        code, prev_len = 0, 0
        for sym, length in sorted(self.lengths.items(), key=lambda item: (item[1], item[0])):
            code <<= length - prev_len
            self.codes[sym] = code
            code += 1
            prev_len = length
        if self.lengths and code > (1 << prev_len):
            raise DataError("code lengths violate the Kraft inequality; the Huffman table is corrupt")

    @classmethod
    def from_symbols(cls, symbols):
        return cls(code_lengths(frequencies(symbols)))

    @property
    def max_length(self):
        return max(self.lengths.values(), default=0)

    def average_bits(self, freqs):
        """Average code length (bits per symbol) over the counts ``freqs``."""
        total = sum(freqs.values())
        return sum(self.lengths[s] * c for s, c in freqs.items()) / total if total else 0.0

    def table_bytes(self):
        out = bytearray()
        write_varint(len(self.lengths), out)
        for sym in sorted(self.lengths):
            write_varint(sym, out)
            write_varint(self.lengths[sym], out)
        return bytes(out)

    @classmethod
    def from_table_bytes(cls, buf, offset=0):
        """Parse a table written by :meth:`table_bytes`; returns ``(code, new_offset)``."""
        count, offset = read_varint(buf, offset)
        lengths = {}
        for _ in range(count):
            sym, offset = read_varint(buf, offset)
            length, offset = read_varint(buf, offset)
            if length < 1 or sym in lengths:
                raise DataError("corrupt Huffman table: zero-length code or repeated symbol")
            lengths[sym] = length
        return cls(lengths), offset

    def encode_bits(self, symbols):
        """Concatenated codes of ``symbols`` packed MSB-first; returns ``(payload bytes, num_bits)``."""
        symbols = _as_symbols(symbols)
        if symbols.size == 0:
            return b"", 0
        unknown = set(np.unique(symbols).tolist()) - set(self.codes)
        if unknown:
            raise ConfigError(f"symbols {sorted(unknown)[:5]} are not in this Huffman code")
        # Bit pattern of each distinct symbol, then one gather + concatenate for the whole stream.
        patterns = {s: np.array([(c >> (self.lengths[s] - 1 - i)) & 1 for i in range(self.lengths[s])], np.uint8)
                    for s, c in self.codes.items()}
        bits = np.concatenate([patterns[s] for s in symbols.tolist()])
        return np.packbits(bits).tobytes(), int(bits.size)

    def decode_bits(self, payload, count):
        """Decode ``count`` symbols from ``payload``; returns ``(int64 symbols, bits consumed)``."""
        out = np.empty(count, np.int64)
        if count == 0:
            return out, 0
        bits = np.unpackbits(np.frombuffer(payload, np.uint8))
        width = self.max_length
        if width <= _MAX_TABLE_BITS:
            # Every ``width``-bit window starting at each bit position, as an integer; a window's
            # leading bits are the code of the symbol starting there (canonical codes are prefix-free).
            padded = np.concatenate([bits, np.zeros(width, np.uint8)]).astype(np.int64)
            windows = np.zeros(bits.size, np.int64)
            for i in range(width):
                windows = (windows << 1) | padded[i:i + bits.size]
            table_sym = np.full(1 << width, -1, np.int64)
            table_len = np.zeros(1 << width, np.int64)
            for sym, code in self.codes.items():
                shift = width - self.lengths[sym]
                table_sym[code << shift:(code + 1) << shift] = sym
                table_len[code << shift:(code + 1) << shift] = self.lengths[sym]
            windows, table_sym, table_len = windows.tolist(), table_sym.tolist(), table_len.tolist()
            pos, nbits = 0, bits.size
            for i in range(count):
                if pos >= nbits:
                    raise DataError(f"truncated Huffman payload: {i} of {count} symbols decoded")
                w = windows[pos]
                sym = table_sym[w]
                if sym < 0:
                    raise DataError("corrupt Huffman payload: a bit pattern matches no code")
                out[i] = sym
                pos += table_len[w]
            if pos > nbits:
                raise DataError("truncated Huffman payload: the last code runs past the end")
            return out, pos
        by_code = {(self.lengths[s], c): s for s, c in self.codes.items()}
        bits = bits.tolist()
        pos = 0
        for i in range(count):
            code, length = 0, 0
            while (length, code) not in by_code:
                if pos >= len(bits) or length >= width:
                    raise DataError(f"corrupt or truncated Huffman payload after {i} symbols")
                code = (code << 1) | bits[pos]
                pos += 1
                length += 1
            out[i] = by_code[(length, code)]
        return out, pos


@dataclasses.dataclass
class Encoded:
    """One Huffman-coded stream: its code and the parts that are stored."""

    code: HuffmanCode
    payload: bytes
    num_symbols: int
    num_bits: int

    def to_bytes(self):
        out = bytearray(self.code.table_bytes())
        write_varint(self.num_symbols, out)
        return bytes(out) + self.payload

    @property
    def table_size(self):
        return len(self.code.table_bytes())

    @property
    def bits_per_symbol(self):
        """Payload bits (no table) per symbol."""
        return self.num_bits / self.num_symbols if self.num_symbols else 0.0


def encode_stream(symbols):
    """Huffman-code ``symbols`` (integers >= 0) with a code built from their own frequencies."""
    symbols = _as_symbols(symbols)
    code = HuffmanCode.from_symbols(symbols)
    payload, num_bits = code.encode_bits(symbols)
    return Encoded(code, payload, int(symbols.size), num_bits)


def encode(symbols):
    """Serialise ``symbols`` as ``table + count + payload`` bytes (see the module docstring)."""
    return encode_stream(symbols).to_bytes()


def decode_from(buf, offset=0):
    """Decode one stream written by :func:`encode` starting at ``offset``; returns ``(symbols, new_offset)``."""
    code, offset = HuffmanCode.from_table_bytes(buf, offset)
    count, offset = read_varint(buf, offset)
    if count and not code.lengths:
        raise DataError("corrupt Huffman stream: symbols but an empty code table")
    symbols, num_bits = code.decode_bits(bytes(buf[offset:]), count)
    return symbols, offset + math.ceil(num_bits / 8)


def decode(blob):
    """Inverse of :func:`encode`: the symbols as an int64 array (trailing bytes are an error)."""
    symbols, end = decode_from(blob)
    if end != len(blob):
        raise DataError(f"Huffman stream has {len(blob) - end} unexpected trailing bytes")
    return symbols


def relative_index(values, index_bits):
    """Deep Compression's sparse format of a flat integer array (0 = zero weight).

    Returns ``(gaps, symbols)``: for every stored entry, ``gaps`` holds the distance to the
    previous stored entry minus one (so it fits in ``index_bits`` bits: 0 .. 2**index_bits - 1)
    and ``symbols`` its value. A distance beyond ``2**index_bits`` is bridged by filler entries with
    value 0 placed ``2**index_bits`` apart (Han et al. 2016, fig. 2). Trailing zeros are not stored;
    the decoder needs the array size.
    """
    index_bits = validation.int_in("index_bits", index_bits, 1, 32)
    values = _as_symbols(values)
    span = 1 << int(index_bits)
    positions = np.flatnonzero(values)
    distances = np.diff(np.concatenate([[-1], positions]))
    # Entry j needs ceil(d / span) - 1 fillers in front of it.
    fillers = (distances - 1) // span
    total = positions.size + int(fillers.sum())
    gaps = np.full(total, span - 1, np.int64)
    symbols = np.zeros(total, np.int64)
    ends = np.cumsum(fillers + 1) - 1  # slot of each real entry
    gaps[ends] = distances - fillers * span - 1
    symbols[ends] = values[positions]
    return gaps, symbols


def from_relative_index(gaps, symbols, size):
    """Inverse of :func:`relative_index`: the dense flat int64 array of length ``size``."""
    gaps, symbols = _as_symbols(gaps), _as_symbols(symbols)
    if gaps.shape != symbols.shape:
        raise DataError(f"relative index has {gaps.size} gaps but {symbols.size} values")
    positions = np.cumsum(gaps + 1) - 1
    if positions.size and positions[-1] >= size:
        raise DataError(f"relative index points at position {int(positions[-1])} of an array of size {size}")
    out = np.zeros(int(size), np.int64)
    out[positions] = symbols
    return out
