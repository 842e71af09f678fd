"""Deep Compression: prune -> cluster -> Huffman, with the real encoded bytes (lecture 15).

Han, Mao & Dally 2016, "Deep Compression: Compressing Deep Neural Networks with Pruning, Trained
Quantization and Huffman Coding". Every kernel is stored as

* its nonzeros in relative-index form (sec. 2, fig. 2): per stored entry a gap to the previous one
  in ``index_bits`` bits, with filler zeros where a gap is longer;
* the entries' cluster indices (sec. 3), pointing into a float32 codebook of the layer's distinct
  nonzero values; index 0 is reserved for zero (filler entries);
* gaps and indices each Huffman-coded with their own canonical code (sec. 4).

Biases, batchnorm parameters and any array for which the sparse form would be larger stay raw
float32. The compression ratio is the model's float32 bytes over ``len(blob)`` -- the real
serialised payload including code tables, codebooks, shapes and headers, not an estimate --
and :func:`decode` reads the blob back into dense arrays, value for value the weights that were encoded.

Blob layout (varints are LEB128, see :mod:`cs231n_tf.compress.huffman`)::

    b"DC1", varint num_arrays, then per array (in ``model.get_weights()`` order):
      byte kind (0 raw, 1 sparse), varint ndim, varint dims...
      raw:    float32 little-endian values
      sparse: varint index_bits, varint num_centroids, float32 centroids,
              Huffman stream of gaps, Huffman stream of cluster indices
"""

import dataclasses
import math

import numpy as np

from cs231n_tf import validation
from cs231n_tf.compress import huffman
from cs231n_tf.errors import DataError, ShapeError

MAGIC = b"DC1"
RAW, SPARSE = 0, 1
INDEX_BITS_CHOICES = tuple(range(1, 9))


def _kernel_ids(model):
    return {id(layer.kernel) for layer in model.layers if getattr(layer, "kernel", None) is not None}


def _weight_names(model):
    """``layer/weight`` names (Keras 2 variable names alone are just ``kernel``, ``bias``...)."""
    return {id(w): f"{layer.name}/{w.name.split('/')[-1].split(':')[0]}" for layer in model.layers for w in layer.weights}


def _shape_header(kind, shape):
    out = bytearray([kind])
    huffman.write_varint(len(shape), out)
    for d in shape:
        huffman.write_varint(d, out)
    return out


def _encode_raw(array):
    return bytes(_shape_header(RAW, array.shape)) + np.ascontiguousarray(array, "<f4").tobytes()


def _encode_sparse(array, index_bits):
    """The sparse form of one kernel with gaps of ``index_bits`` bits; returns ``(bytes, stats)``."""
    flat = np.asarray(array, np.float32).reshape(-1)
    centroids = np.unique(flat[flat != 0])
    # Index 0 is zero (the filler value); nonzero weight v gets 1 + its position in the codebook.
    symbols_dense = np.zeros(flat.size, np.int64)
    nonzero = flat != 0
    symbols_dense[nonzero] = np.searchsorted(centroids, flat[nonzero]) + 1
    gaps, symbols = huffman.relative_index(symbols_dense, index_bits)
    gap_stream = huffman.encode_stream(gaps)
    index_stream = huffman.encode_stream(symbols)
    out = _shape_header(SPARSE, array.shape)
    huffman.write_varint(index_bits, out)
    huffman.write_varint(centroids.size, out)
    out += centroids.astype("<f4").tobytes()
    out += gap_stream.to_bytes()
    out += index_stream.to_bytes()
    entries = int(symbols.size)
    fixed_index_bits = max(1, math.ceil(math.log2(centroids.size + 1)))
    stats = {
        "weights": int(flat.size), "nonzeros": int(nonzero.sum()), "kept_percent": 100.0 * nonzero.mean(),
        "distinct_values": int(centroids.size) + 1, "entries": entries, "fillers": entries - int(nonzero.sum()),
        "bits_per_index_fixed": fixed_index_bits, "bits_per_index_huffman": index_stream.bits_per_symbol,
        "index_entropy_bits": huffman.entropy_bits(symbols),
        "bits_per_gap_fixed": int(index_bits), "bits_per_gap_huffman": gap_stream.bits_per_symbol,
        "gap_entropy_bits": huffman.entropy_bits(gaps),
        "code_table_bytes": gap_stream.table_size + index_stream.table_size,
        "codebook_bytes": 4 * int(centroids.size),
        # What the same entries would take with fixed-width fields (Han et al.'s pre-Huffman column).
        "bytes_fixed_width": math.ceil(entries * (fixed_index_bits + index_bits) / 8) + 4 * int(centroids.size),
    }
    return bytes(out), stats


@dataclasses.dataclass
class Encoding:
    """An encoded model: ``blob`` (the bytes to store) and the per-array table."""

    blob: bytes
    rows: list
    float32_bytes: int

    @property
    def size_bytes(self):
        return len(self.blob)

    @property
    def compression_ratio(self):
        return self.float32_bytes / len(self.blob)

    def table(self):
        """Han et al.'s table (one row per kernel, plus the raw float32 remainder) as markdown."""
        lines = ["| layer | weights | kept % | values | bits/index (fixed -> Huffman) | bits/gap (fixed -> Huffman) "
                 "| bytes | ratio |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        raw_bytes = raw_weights = 0
        for r in self.rows:
            if r["kind"] == "raw":
                raw_bytes += r["bytes"]
                raw_weights += r["weights"]
                continue
            lines.append(f"| {r['name']} | {r['weights']:,} | {r['kept_percent']:.1f} | {r['distinct_values']} | "
                         f"{r['bits_per_index_fixed']} -> {r['bits_per_index_huffman']:.2f} | "
                         f"{r['bits_per_gap_fixed']} -> {r['bits_per_gap_huffman']:.2f} | {r['bytes']:,} | "
                         f"{4 * r['weights'] / r['bytes']:.1f}x |")
        if raw_weights:
            lines.append(f"| biases etc. (float32) | {raw_weights:,} | 100.0 | - | 32 | - | {raw_bytes:,} | 1.0x |")
        weights = sum(r["weights"] for r in self.rows)
        lines.append(f"| **total** | {weights:,} | | | | | {len(self.blob):,} | **{self.compression_ratio:.1f}x** |")
        return "\n".join(lines)


def encode_weights(model, index_bits=None):
    """Encode every weight array of ``model`` into a Deep Compression blob.

    Kernels are stored sparse + clustered + Huffman-coded whenever that is smaller than raw float32
    (it is for pruned, clustered layers); ``index_bits`` fixes the relative-index width, or ``None``
    picks for each kernel the width in 1..8 bits that gives the fewest bytes.
    """
    if index_bits is not None:  # None: choose the width per layer
        index_bits = validation.int_in("index_bits", index_bits, 1, 16)
    kernels = _kernel_ids(model)
    names = _weight_names(model)
    out = bytearray(MAGIC)
    huffman.write_varint(len(model.weights), out)
    rows = []
    for var in model.weights:
        array = var.numpy().astype(np.float32)
        name = names.get(id(var), var.name.split(":")[0])
        raw = _encode_raw(array)
        best = None
        if id(var) in kernels and array.size:
            for bits in ([index_bits] if index_bits else INDEX_BITS_CHOICES):
                candidate = _encode_sparse(array, bits)
                if best is None or len(candidate[0]) < len(best[0]):
                    best = candidate
        if best is not None and len(best[0]) < len(raw):
            data, stats = best
            rows.append({"name": name, "kind": "sparse", "bytes": len(data), **stats})
        else:
            data = raw
            rows.append({"name": name, "kind": "raw", "bytes": len(data), "weights": int(array.size)})
        out += data
    float32_bytes = 4 * sum(int(np.prod(v.shape)) for v in model.weights)
    return Encoding(bytes(out), rows, float32_bytes)


def _read_shape(blob, offset):
    ndim, offset = huffman.read_varint(blob, offset)
    shape = []
    for _ in range(ndim):
        d, offset = huffman.read_varint(blob, offset)
        shape.append(d)
    return tuple(shape), offset


def _read_floats(blob, offset, count):
    end = offset + 4 * count
    if end > len(blob):
        raise DataError("truncated Deep Compression blob: float data runs past the end")
    return np.frombuffer(blob[offset:end], "<f4").astype(np.float32), end


def decode(blob):
    """The dense float32 arrays of a blob written by :func:`encode_weights`, in ``get_weights()`` order."""
    blob = bytes(blob)
    if not blob.startswith(MAGIC):
        raise DataError("not a Deep Compression blob (bad magic bytes)")
    count, offset = huffman.read_varint(blob, len(MAGIC))
    arrays = []
    for _ in range(count):
        if offset >= len(blob):
            raise DataError("truncated Deep Compression blob")
        kind = blob[offset]
        shape, offset = _read_shape(blob, offset + 1)
        size = int(np.prod(shape))
        if kind == RAW:
            values, offset = _read_floats(blob, offset, size)
        elif kind == SPARSE:
            _, offset = huffman.read_varint(blob, offset)  # index_bits: implied by the gaps themselves
            num_centroids, offset = huffman.read_varint(blob, offset)
            centroids, offset = _read_floats(blob, offset, num_centroids)
            gaps, offset = huffman.decode_from(blob, offset)
            symbols, offset = huffman.decode_from(blob, offset)
            if symbols.size and symbols.max() > num_centroids:
                raise DataError("corrupt Deep Compression blob: a cluster index points past the codebook")
            dense = huffman.from_relative_index(gaps, symbols, size)
            values = np.concatenate([[0.0], centroids]).astype(np.float32)[dense]
        else:
            raise DataError(f"corrupt Deep Compression blob: unknown array kind {kind}")
        arrays.append(values.reshape(shape))
    if offset != len(blob):
        raise DataError(f"Deep Compression blob has {len(blob) - offset} unexpected trailing bytes")
    return arrays


def load_weights(model, blob):
    """Decode ``blob`` and set it as ``model``'s weights (shapes must match); returns the model."""
    arrays = decode(blob)
    expected = [tuple(v.shape) for v in model.weights]
    got = [a.shape for a in arrays]
    if expected != got:
        raise ShapeError(f"blob holds arrays of shapes {got}, the model expects {expected}")
    model.set_weights(arrays)
    return model


@dataclasses.dataclass
class DeepCompressionResult:
    model: object  # the pruned + clustered Keras model (stripped of tfmot wrappers)
    encoding: Encoding
    history: dict


def compress(model, data, sparsity, clusters, prune_rounds=3, prune_epochs=2, cluster_epochs=2, lr=1e-3,
             cluster_lr=1e-4, init="linear", index_bits=None, seed=0, log=None):
    """The full pipeline on a trained model: iterative pruning, clustering with fine-tuning, encoding.

    ``sparsity`` and ``clusters`` are one value or ``{layer name: value}`` (see
    :func:`cs231n_tf.compress.pruning.iterative_prune` and :func:`cs231n_tf.compress.clustering.cluster`).
    The original model is not modified.
    """
    from cs231n_tf.compress import clustering, pruning

    history = {"accuracy_original": pruning.accuracy(model, data)}
    pruned, history["prune_rounds"] = pruning.iterative_prune(model, data, sparsity, prune_rounds, prune_epochs,
                                                             lr, seed, log)
    history["accuracy_pruned"] = pruning.accuracy(pruned, data)
    wrapped = clustering.cluster(pruned, clusters, init=init, preserve_sparsity=True)
    clustering.fine_tune(wrapped, data, cluster_epochs, cluster_lr, seed)
    clustered = clustering.strip_clustering(wrapped)
    history["accuracy_clustered"] = pruning.accuracy(clustered, data)
    encoding = encode_weights(clustered, index_bits)
    if log:
        log(f"encoded {encoding.float32_bytes:,} float32 bytes into {encoding.size_bytes:,} "
            f"({encoding.compression_ratio:.1f}x)")
    return DeepCompressionResult(clustered, encoding, history)
