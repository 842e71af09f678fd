"""The last layer's feature space (lecture 12): nearest neighbours, PCA and t-SNE.

Krizhevsky et al. (2012) showed that images whose fc7 features are close look alike to the network
though their pixels differ; van der Maaten & Hinton's t-SNE (2008) and PCA lay the same features out
in 2-D. :func:`extract_features` takes the input of a classifier's last ``Dense`` layer (the features
the classes are read from) or any named layer, flattened to ``(N, D)``;
:func:`nearest_neighbors` is the exact L2 search, :func:`embed_2d` scikit-learn's PCA or t-SNE.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ShapeError
from cs231n_tf.visualize.features import layer_output

METHODS = ("pca", "tsne")


def feature_tensor(model, layer=None):
    """The symbolic features: ``layer``'s output, or the input of the last ``Dense`` layer (else the output)."""
    if layer is not None:
        return layer_output(model, layer).output
    dense = [l for l in model.layers if isinstance(l, tf.keras.layers.Dense)]
    return dense[-1].input if dense else model.output


def extract_features(model, x, layer=None, batch_size=64):
    """Features ``(N, D)`` float32 of images ``x`` ``(N, H, W, C)`` (see :func:`feature_tensor`)."""
    batch_size = validation.positive_int("batch_size", batch_size)
    body = tf.keras.Model(model.inputs, feature_tensor(model, layer))
    out = [tf.reshape(tf.cast(body(tf.constant(x[i:i + batch_size], tf.float32), training=False), tf.float32),
                      [min(batch_size, len(x) - i), -1]).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(out)


def nearest_neighbors(queries, database, k=5):
    """Indices ``(Q, k)`` into ``database`` ``(M, ...)`` of each query's ``k`` nearest rows by L2 distance,
    nearest first (ties: the lower index). Rows are flattened, so images and features both work."""
    q = np.asarray(queries, np.float64).reshape(len(queries), -1)
    d = np.asarray(database, np.float64).reshape(len(database), -1)
    if q.shape[1] != d.shape[1]:
        raise ShapeError(f"queries have {q.shape[1]} values per row, the database {d.shape[1]}")
    k = validation.int_in("k", k, 1, len(d))
    # |q - d|^2 = |q|^2 - 2 q.d + |d|^2, one matrix product instead of an (Q, M, D) difference.
    dist = (q ** 2).sum(1)[:, None] - 2.0 * q @ d.T + (d ** 2).sum(1)[None]
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def embed_2d(features, method="pca", seed=0, perplexity=30.0):
    """``(N, 2)`` coordinates of ``features`` ``(N, D)`` by scikit-learn's ``PCA`` or ``TSNE``."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    method = validation.one_of("method", method, METHODS)
    features = np.asarray(features, np.float64).reshape(len(features), -1)
    if len(features) < 3:
        raise ShapeError(f"a 2-D embedding needs at least 3 examples, got {len(features)}")
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(features)
    # Perplexity must stay below the number of points; small sets get a smaller one.
    perplexity = min(float(perplexity), (len(features) - 1) / 3.0)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
