"""Efficient methods and deployment (lecture 15): pruning, weight sharing, Huffman coding,
quantization, low rank, ternary/binary weights, Winograd convolution, distillation and DSD.

Import the submodule you need (``from cs231n_tf.compress import pruning``); importing this package
stays cheap so that ``cs231n-tf --help`` does not load TensorFlow.
"""

from cs231n_tf.compress.run import CompressConfig, compress_run  # noqa: E402,F401  (standard library only)

__all__ = ["CompressConfig", "compress_run"]
