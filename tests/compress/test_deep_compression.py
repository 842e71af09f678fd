import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import data as data_lib
from cs231n_tf import models
from cs231n_tf.compress import clustering, deep_compression, huffman, pruning
from cs231n_tf.errors import DataError, ShapeError


def _pruned_clustered(shape, density, k, rng):
    """A kernel with ``density`` nonzeros taking ``k`` shared values (what prune + cluster produce)."""
    centroids = rng.normal(size=k).astype(np.float32)
    values = centroids[rng.integers(0, k, shape)]
    return np.where(rng.random(shape) < density, values, 0).astype(np.float32)


@pytest.fixture()
def model():
    m = models.build("lenet300_100", (8, 8, 1), 10)
    rng = np.random.default_rng(0)
    m.get_layer("fc1").kernel.assign(_pruned_clustered((64, 300), 0.08, 16, rng))
    m.get_layer("fc2").kernel.assign(_pruned_clustered((300, 100), 0.1, 16, rng))
    # logits stays dense float: its sparse form would be larger, so it must be stored raw.
    return m


def test_round_trip_is_exact_and_the_size_is_the_blob(model):
    enc = deep_compression.encode_weights(model)
    arrays = deep_compression.decode(enc.blob)
    for got, want in zip(arrays, model.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert enc.float32_bytes == 4 * model.count_params()
    assert enc.compression_ratio == enc.float32_bytes / len(enc.blob)
    # Every byte is accounted for: the per-array rows plus the magic and the array count.
    header = len(deep_compression.MAGIC) + 1
    assert sum(r["bytes"] for r in enc.rows) + header == len(enc.blob)
    kinds = {r["name"]: r["kind"] for r in enc.rows}
    assert kinds == {"fc1/kernel": "sparse", "fc1/bias": "raw", "fc2/kernel": "sparse", "fc2/bias": "raw",
                     "logits/kernel": "raw", "logits/bias": "raw"}
    fc1 = next(r for r in enc.rows if r["name"] == "fc1/kernel")
    kernel = model.get_layer("fc1").kernel.numpy()
    assert fc1["nonzeros"] == (kernel != 0).sum()
    assert fc1["distinct_values"] == len(np.unique(kernel))
    assert fc1["bits_per_index_fixed"] == 5  # 16 centroids + the zero/filler index
    # Huffman stays within one bit of the entropy of each stream.
    assert fc1["index_entropy_bits"] <= fc1["bits_per_index_huffman"] < fc1["index_entropy_bits"] + 1
    assert fc1["gap_entropy_bits"] <= fc1["bits_per_gap_huffman"] < fc1["gap_entropy_bits"] + 1
    assert fc1["bytes"] < fc1["bytes_fixed_width"] < 4 * fc1["weights"]
    assert "**total**" in enc.table() and f"{len(enc.blob):,}" in enc.table()


def test_per_layer_index_width_choice_is_the_smallest(model):
    auto = deep_compression.encode_weights(model)
    for bits in (2, 4, 8):
        fixed = deep_compression.encode_weights(model, index_bits=bits)
        assert len(auto.blob) <= len(fixed.blob)
        np.testing.assert_array_equal(deep_compression.decode(fixed.blob)[0], model.get_weights()[0])


def test_load_weights_and_corruption(model):
    enc = deep_compression.encode_weights(model)
    fresh = models.build("lenet300_100", (8, 8, 1), 10)
    deep_compression.load_weights(fresh, enc.blob)
    x = np.random.default_rng(1).normal(size=(3, 8, 8, 1)).astype(np.float32)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    with pytest.raises(ShapeError):
        deep_compression.load_weights(models.build("two_layer_net", (8, 8, 1), 10, hidden_dim=8), enc.blob)
    for bad in (enc.blob[:-3], enc.blob + b"\x01", b"XX" + enc.blob[2:]):
        with pytest.raises(DataError):
            deep_compression.decode(bad)


def test_sparse_layout_matches_the_hand_built_streams():
    inputs = tf.keras.Input((6,))
    m = tf.keras.Model(inputs, tf.keras.layers.Dense(2, use_bias=False, name="fc")(inputs))
    kernel = np.zeros((6, 2), np.float32)
    kernel[0, 1], kernel[4, 0], kernel[5, 1] = 0.5, -0.25, 0.5
    m.get_layer("fc").kernel.assign(kernel)
    enc = deep_compression.encode_weights(m, index_bits=2)
    # Flat positions 1, 8, 11 -> codebook [-0.25, 0.5] -> indices 2, 1, 2; distance 7 needs a filler.
    gaps, symbols = huffman.relative_index(np.array([0, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 2]), 2)
    np.testing.assert_array_equal(gaps, [1, 3, 2, 2])
    np.testing.assert_array_equal(symbols, [2, 0, 1, 2])
    expected = bytearray(deep_compression.MAGIC) + bytes([1, deep_compression.SPARSE, 2, 6, 2, 2, 2])
    expected += np.array([-0.25, 0.5], "<f4").tobytes() + huffman.encode(gaps) + huffman.encode(symbols)
    assert enc.blob == bytes(expected)


def test_pipeline_on_a_trained_net():
    digits = data_lib.load("digits", batch_size=32)
    model = models.build("two_layer_net", digits.info.image_shape, 10, hidden_dim=64)
    pruning.fit(model, digits, epochs=3, lr=0.01)
    result = deep_compression.compress(model, digits, 0.8, 8, prune_rounds=1, prune_epochs=1, cluster_epochs=1,
                                       lr=3e-3, cluster_lr=1e-3)
    for row in pruning.sparsity_report(result.model)["layers"]:
        assert row["sparsity"] >= 0.8 - 1 / row["weights"]
    for row in clustering.cluster_report(result.model):
        assert row["distinct"] <= 8
    decoded = deep_compression.load_weights(models.build("two_layer_net", digits.info.image_shape, 10, hidden_dim=64),
                                            result.encoding.blob)
    assert pruning.accuracy(decoded, digits) == result.history["accuracy_clustered"]
    assert result.history["accuracy_clustered"] > result.history["accuracy_original"] - 0.1
    assert result.encoding.compression_ratio > 15
