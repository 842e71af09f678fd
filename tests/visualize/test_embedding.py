"""Feature-space analysis against scikit-learn: exact nearest neighbours, PCA, features of the right layer."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

import cs231n_tf  # noqa: F401  (Keras 2)
from cs231n_tf.errors import ConfigError, ShapeError
from cs231n_tf.visualize.embedding import embed_2d, extract_features, nearest_neighbors


def _classifier():
    tf.keras.utils.set_random_seed(0)
    return tf.keras.Sequential([
        tf.keras.Input((6, 6, 2)),
        tf.keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        tf.keras.layers.Flatten(name="flat"),
        tf.keras.layers.Dense(5, activation="relu", name="fc"),
        tf.keras.layers.Dense(3, activation="softmax", name="scores"),
    ])


def test_nearest_neighbors_equal_brute_force_sklearn():
    rng = np.random.default_rng(0)
    database, queries = rng.normal(size=(40, 3, 3, 2)), rng.normal(size=(7, 3, 3, 2))
    got = nearest_neighbors(queries, database, k=6)
    _, want = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(database.reshape(40, -1)).kneighbors(
        queries.reshape(7, -1))
    np.testing.assert_array_equal(got, want)
    # A query that is in the database finds itself first.
    assert (nearest_neighbors(database[:5], database, k=1)[:, 0] == np.arange(5)).all()


def test_extract_features_is_the_last_dense_layers_input():
    model = _classifier()
    x = np.random.default_rng(1).normal(size=(10, 6, 6, 2)).astype(np.float32)
    feats = extract_features(model, x, batch_size=4)
    fc = tf.keras.Model(model.input, model.get_layer("fc").output)(x).numpy()
    np.testing.assert_allclose(feats, fc, rtol=1e-6)
    assert extract_features(model, x, layer="conv").shape == (10, 4 * 4 * 4)
    with pytest.raises(ConfigError, match="layers: conv, flat, fc, scores"):
        extract_features(model, x, layer="nope")


def test_pca_equals_sklearn_and_the_svd():
    feats = np.random.default_rng(2).normal(size=(30, 8)) * np.arange(1, 9)
    coords = embed_2d(feats, "pca")
    np.testing.assert_allclose(coords, PCA(n_components=2).fit_transform(feats), atol=1e-10)
    centred = feats - feats.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs(coords), np.abs(centred @ vt[:2].T), atol=1e-10)


def test_tsne_keeps_separated_clusters_apart():
    rng = np.random.default_rng(3)
    feats = np.concatenate([rng.normal(size=(15, 10)), 20 + rng.normal(size=(15, 10))])
    coords = embed_2d(feats, "tsne", perplexity=5)
    a, b = coords[:15], coords[15:]
    gap = np.linalg.norm(a.mean(0) - b.mean(0))
    assert gap > 3 * max(a.std(0).max(), b.std(0).max())
    with pytest.raises(ShapeError, match="at least 3"):
        embed_2d(feats[:2], "tsne")
    with pytest.raises(ConfigError, match="method"):
        embed_2d(feats, "umap")
