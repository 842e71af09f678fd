"""Weight sharing / trained quantization (lecture 15) with tfmot weight clustering.

Han et al. 2016, "Deep Compression", sec. 3: cluster each layer's weights into ``k`` shared values
with k-means, store a ``log2(k)``-bit index per weight plus the ``k`` float centroids, and fine-tune
the centroids (the gradient of a centroid is the sum of the gradients of the weights sharing it).
tensorflow-model-optimization's ``cluster_weights`` does exactly that during training (on the engine);
``LINEAR`` initialisation (centroids evenly spaced between the min and max weight) is the one Han
et al. found best, ``KMEANS_PLUS_PLUS`` is Arthur & Vassilvitskii's 2007 seeding.

With ``preserve_sparsity=True`` (tfmot's sparsity-preserving clustering) the zeros of a pruned
layer stay exactly zero and zero is one of the ``k`` values, as Deep Compression needs (a few
small weights may be assigned to the zero value as well).
"""

import numpy as np
import tensorflow_model_optimization as tfmot

from cs231n_tf import validation
from cs231n_tf.compress.pruning import fit, kernel_layers, per_layer, wrap_layers
from cs231n_tf.errors import ConfigError

clustering_api = tfmot.clustering.keras
INITS = {
    "linear": clustering_api.CentroidInitialization.LINEAR,
    "kmeans++": clustering_api.CentroidInitialization.KMEANS_PLUS_PLUS,
    "density": clustering_api.CentroidInitialization.DENSITY_BASED,
    "random": clustering_api.CentroidInitialization.RANDOM,
}


def check_clusters(value, name="clusters"):
    """``value`` as an int k >= 2 (one cluster would collapse a layer to a constant)."""
    return validation.int_in(name, value, 2)


def cluster(model, clusters, init="linear", preserve_sparsity=True):
    """Wrap ``model``'s kernel layers with tfmot weight clustering (the original is untouched).

    Args:
      clusters: ``k`` for every Dense/Conv layer, or ``{layer name: k}`` (other layers untouched).
      init: ``linear`` (Han et al.), ``kmeans++``, ``density`` or ``random`` centroid initialisation.
      preserve_sparsity: keep pruned zeros at zero (zero then counts as one of the ``k`` values).

    Returns the wrapped model: fine-tune it with :func:`fine_tune` and finish with :func:`strip_clustering`.
    A layer tfmot cannot cluster raises :class:`ConfigError` naming it.
    """
    if init not in INITS:
        raise ConfigError(f"centroid init must be one of {', '.join(INITS)}, got {init!r}")
    targets = per_layer(model, clusters, check_clusters, "clusters")

    def wrap(layer, k):
        if not layer.trainable_weights:
            raise ValueError("it has no trainable weights to cluster")
        return clustering_api.cluster_weights(layer, number_of_clusters=k, cluster_centroids_init=INITS[init],
                                              preserve_sparsity=preserve_sparsity)

    return wrap_layers(model, targets, wrap, "clustered")


def fine_tune(model, data, epochs, lr=1e-4, seed=0):
    """Train the centroids of a clustered model (weights stay tied to their cluster)."""
    return fit(model, data, epochs, lr, seed)


def strip_clustering(model):
    """Replace the clustering wrappers by plain layers whose kernels hold only the centroids."""
    return clustering_api.strip_clustering(model)


def cluster_report(model):
    """Per kernel layer: ``name``, ``weights``, ``distinct`` values and ``bits_per_index`` = ceil(log2(distinct))."""
    rows = []
    for layer in kernel_layers(model):
        kernel = layer.kernel.numpy()
        distinct = int(np.unique(kernel).size)
        rows.append({"name": layer.name, "weights": int(kernel.size), "distinct": distinct,
                     "bits_per_index": int(np.ceil(np.log2(distinct))) if distinct > 1 else 0})
    return rows
