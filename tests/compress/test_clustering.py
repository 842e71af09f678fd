import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.compress import clustering, pruning
from cs231n_tf.errors import ConfigError


def test_linear_init_puts_evenly_spaced_centroids_and_assigns_nearest(trained):
    stripped = clustering.strip_clustering(clustering.cluster(trained, 5, init="linear", preserve_sparsity=False))
    for name in ("fc1", "logits"):
        original = trained.get_layer(name).kernel.numpy()
        shared = stripped.get_layer(name).kernel.numpy()
        centroids = np.linspace(original.min(), original.max(), 5)
        # Before any training the shared values are Han et al.'s linear initialisation ...
        assert np.abs(np.unique(shared)[:, None] - centroids[None]).min(axis=1).max() < 1e-5
        # ... and every weight took its nearest centroid.
        nearest = centroids[np.abs(original[..., None] - centroids).argmin(-1)]
        np.testing.assert_allclose(shared, nearest, atol=1e-5)
    assert [r["distinct"] for r in clustering.cluster_report(stripped)] == [5, 5]
    assert [r["bits_per_index"] for r in clustering.cluster_report(stripped)] == [3, 3]


def test_fine_tuned_centroids_keep_k_values_and_pruned_zeros(trained, digits):
    wrapped = pruning.prune(trained, 0.5)
    pruning.fine_tune_pruned(wrapped, digits, epochs=1, lr=1e-3)
    pruned = pruning.strip_pruning(wrapped)
    zeros = {n: pruned.get_layer(n).kernel.numpy() == 0 for n in ("fc1", "logits")}
    clustered = clustering.cluster(pruned, {"fc1": 8, "logits": 4}, init="kmeans++")
    start = clustering.strip_clustering(clustered)
    clustering.fine_tune(clustered, digits, epochs=1, lr=1e-3)
    final = clustering.strip_clustering(clustered)
    for name, k in (("fc1", 8), ("logits", 4)):
        kernel = final.get_layer(name).kernel.numpy()
        assert len(np.unique(kernel)) <= k
        # Pruned weights stay exactly zero (zero is one of the k values, so a few small weights may join it).
        assert (kernel[zeros[name]] == 0).all()
        assert (kernel == 0).mean() < zeros[name].mean() + 0.05
        # Fine-tuning moved the shared values themselves.
        assert not np.allclose(np.unique(kernel), np.unique(start.get_layer(name).kernel.numpy()))
    assert pruning.accuracy(final, digits) > 0.8


class Scale(tf.keras.layers.Layer):
    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.scale


def test_bad_requests(trained):
    for bad in (1, 0, 2.5, True, "8"):
        with pytest.raises(ConfigError, match="clusters"):
            clustering.cluster(trained, bad)
    with pytest.raises(ConfigError, match="'fc9'"):
        clustering.cluster(trained, {"fc9": 4})
    with pytest.raises(ConfigError, match="init"):
        clustering.cluster(trained, 4, init="median")
    with pytest.raises(ConfigError, match="'flatten'"):
        clustering.cluster(trained, {"flatten": 4})
    inputs = tf.keras.Input((4,))
    outputs = tf.keras.layers.Dense(2, name="fc")(Scale(name="scale")(inputs))
    custom = tf.keras.Model(inputs, outputs)
    with pytest.raises(ConfigError, match="layer 'scale' \\(Scale\\) cannot be clustered"):
        clustering.cluster(custom, {"scale": 4, "fc": 4})
