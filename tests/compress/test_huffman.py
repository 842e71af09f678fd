import math

import numpy as np
import pytest

from cs231n_tf.compress import huffman
from cs231n_tf.errors import ConfigError, DataError, InputTypeError


def _random_streams():
    rng = np.random.default_rng(0)
    for case in range(40):
        n = int(rng.integers(0, 3000))
        kind = case % 4
        if kind == 0:
            yield rng.integers(0, int(rng.integers(1, 300)), n)
        elif kind == 1:
            yield rng.geometric(float(rng.uniform(0.05, 0.9)), n)
        elif kind == 2:
            yield rng.choice([3, 70000, 2 ** 40], size=n, p=[0.7, 0.2, 0.1])
        else:
            yield rng.zipf(1.5, n) % 1000


@pytest.mark.parametrize("symbols", list(_random_streams()))
def test_round_trip_is_exact_and_sizes_add_up(symbols):
    blob = huffman.encode(symbols)
    np.testing.assert_array_equal(huffman.decode(blob), symbols)
    stream = huffman.encode_stream(symbols)
    count = bytearray()
    huffman.write_varint(len(symbols), count)
    # The serialised size is exactly table + count + payload, and the payload is the packed code bits.
    assert len(blob) == stream.table_size + len(count) + len(stream.payload)
    assert len(stream.payload) == math.ceil(stream.num_bits / 8)
    freqs = huffman.frequencies(symbols)
    assert stream.num_bits == sum(stream.code.lengths[s] * c for s, c in freqs.items())


@pytest.mark.parametrize("symbols", [[], [7], [7] * 100, [0, 1], [5, 5, 5, 9]])
def test_edge_cases(symbols):
    np.testing.assert_array_equal(huffman.decode(huffman.encode(symbols)), symbols)


def test_single_symbol_uses_one_bit_per_symbol():
    stream = huffman.encode_stream([4] * 10)
    assert stream.code.lengths == {4: 1} and stream.num_bits == 10 and len(stream.payload) == 2


def test_textbook_code_lengths():
    # CLRS 16.3: frequencies 45, 13, 12, 16, 9, 5 -> an optimal code of 224 bits per 100 symbols.
    freqs = {0: 45, 1: 13, 2: 12, 3: 16, 4: 9, 5: 5}
    lengths = huffman.code_lengths(freqs)
    assert lengths == {0: 1, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4}
    assert sum(lengths[s] * c for s, c in freqs.items()) == 224


def test_canonical_codes_are_prefix_free_and_complete():
    rng = np.random.default_rng(1)
    for _ in range(20):
        symbols = rng.geometric(0.2, 500)
        code = huffman.HuffmanCode.from_symbols(symbols)
        words = [format(c, f"0{code.lengths[s]}b") for s, c in code.codes.items()]
        for a in words:
            for b in words:
                assert a == b or not b.startswith(a)
        if len(words) > 1:  # a Huffman code of 2+ symbols is complete: Kraft sum exactly 1
            assert sum(2.0 ** -code.lengths[s] for s in code.lengths) == 1.0
        # Canonical order: sorted by (length, symbol), codes increase.
        ordered = sorted(code.codes, key=lambda s: (code.lengths[s], s))
        assert [code.codes[s] for s in ordered] == sorted(code.codes.values())


def test_average_length_within_the_entropy_bound():
    rng = np.random.default_rng(2)
    for _ in range(30):
        k = int(rng.integers(2, 40))
        p = rng.dirichlet(np.full(k, float(rng.uniform(0.1, 3.0))))
        symbols = rng.choice(k, size=2000, p=p)
        if len(np.unique(symbols)) < 2:
            continue
        stream = huffman.encode_stream(symbols)
        h = huffman.entropy_bits(symbols)
        assert h - 1e-12 <= stream.bits_per_symbol < h + 1


def test_entropy_of_known_distributions():
    assert huffman.entropy_bits([0, 1] * 50) == pytest.approx(1.0)
    assert huffman.entropy_bits(list(range(8)) * 3) == pytest.approx(3.0)
    assert huffman.entropy_bits([3] * 9) == 0.0


def test_long_codes_beyond_the_lookup_table():
    # Fibonacci frequencies give the deepest possible tree: code lengths up to 29 bits.
    fib = [1, 1]
    for _ in range(28):
        fib.append(fib[-1] + fib[-2])
    code = huffman.HuffmanCode(huffman.code_lengths(dict(enumerate(fib))))
    assert code.max_length == 29
    rng = np.random.default_rng(3)
    symbols = rng.permutation(np.concatenate([np.arange(30), rng.integers(0, 4, 500)]))
    payload, bits = code.encode_bits(symbols)
    decoded, used = code.decode_bits(payload, len(symbols))
    np.testing.assert_array_equal(decoded, symbols)
    assert used == bits


def test_table_round_trip_and_corruption_errors():
    blob = huffman.encode([1, 2, 2, 3, 3, 3, 3])
    code, offset = huffman.HuffmanCode.from_table_bytes(blob)
    assert code.lengths == huffman.code_lengths({1: 1, 2: 2, 3: 4})
    with pytest.raises(DataError):
        huffman.decode(blob[:-1])
    with pytest.raises(DataError):
        huffman.decode(blob + b"\x00")
    with pytest.raises(DataError):
        huffman.decode(blob[:2])


def test_bad_symbols():
    with pytest.raises(ConfigError, match="-1"):
        huffman.encode([1, -1])
    with pytest.raises(InputTypeError):
        huffman.encode([0.5, 1.0])


def test_relative_index_matches_han_et_al_figure():
    # Nonzeros at 0, 3, 40, 41 and 99 with 3-bit gaps (largest distance 8): distance 37 needs four
    # filler zeros 8 apart (at 11, 19, 27, 35), distance 58 needs seven (at 49, ..., 97).
    values = np.zeros(100, np.int64)
    values[[0, 3, 40, 41, 99]] = [1, 2, 3, 1, 5]
    gaps, symbols = huffman.relative_index(values, 3)
    np.testing.assert_array_equal(gaps, [0, 2, 7, 7, 7, 7, 4, 0, 7, 7, 7, 7, 7, 7, 7, 1])
    np.testing.assert_array_equal(symbols, [1, 2, 0, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 0, 0, 5])
    np.testing.assert_array_equal(huffman.from_relative_index(gaps, symbols, 100), values)


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
def test_relative_index_round_trip(bits):
    rng = np.random.default_rng(bits)
    for density in (0.0, 0.001, 0.05, 0.5, 1.0):
        values = np.where(rng.random(5000) < density, rng.integers(1, 17, 5000), 0)
        gaps, symbols = huffman.relative_index(values, bits)
        assert gaps.size == 0 or (gaps.min() >= 0 and gaps.max() < 2 ** bits)
        positions = np.flatnonzero(values)
        distances = np.diff(np.concatenate([[-1], positions]))
        assert len(gaps) == len(positions) + int(((distances - 1) // 2 ** bits).sum())
        assert (symbols != 0).sum() == len(positions)
        np.testing.assert_array_equal(huffman.from_relative_index(gaps, symbols, values.size), values)
        # The streams themselves survive Huffman coding.
        np.testing.assert_array_equal(huffman.decode(huffman.encode(gaps)), gaps)


def test_relative_index_errors():
    with pytest.raises(ConfigError):
        huffman.relative_index([0, 1], 0)
    with pytest.raises(DataError):
        huffman.from_relative_index([5], [1], 3)
