"""Classic image classifiers and the course's networks built from hand-written ops (lectures 2-5).

- :class:`KNearestNeighbor`: k-NN, L2/L1 distances in two-loop, one-loop and no-loop versions.
- :class:`LinearSVM`, :class:`SoftmaxClassifier`: linear classifiers trained by compiled SGD.
- :class:`TwoLayerNet`, :class:`FullyConnectedNet`, :class:`ThreeLayerConvNet`: the assignments'
  networks on :mod:`cs231n_tf.ops`, with ``params`` dicts and ``loss(x, y=None)``.
- :func:`train_network`: a small ``Solver`` using the update rules of :mod:`cs231n_tf.optim.rules`.
"""

from cs231n_tf.classic.cnn import ThreeLayerConvNet
from cs231n_tf.classic.fc_net import FullyConnectedNet, TwoLayerNet
from cs231n_tf.classic.knn import KNearestNeighbor
from cs231n_tf.classic.linear import LinearClassifier, LinearSVM, SoftmaxClassifier
from cs231n_tf.classic.solver import accuracy, train_network

__all__ = [
    "FullyConnectedNet",
    "KNearestNeighbor",
    "LinearClassifier",
    "LinearSVM",
    "SoftmaxClassifier",
    "ThreeLayerConvNet",
    "TwoLayerNet",
    "accuracy",
    "train_network",
]
