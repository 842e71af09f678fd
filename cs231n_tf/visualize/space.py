"""The ``viz neighbors|pca|tsne`` report: a classifier's feature space over a data set, as PNGs and JSON.

The examples are a seeded sample of ``limit`` images of a data set spec (``digits``, ``folder:PATH``,
``npz:PATH``...; default the run's own data set, or crops of the shipped photos for a pretrained
model, :func:`cs231n_tf.data.photos.write_crop_folder`), prepared exactly as ``predict`` prepares
image files. ``neighbors`` compares the nearest neighbours of the first ``queries`` examples among
the rest in pixel space and in feature space (and how often they share the query's label);
``pca``/``tsne`` plot the 2-D embedding coloured by label.
"""

import os
import tempfile

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError
from cs231n_tf.fileio import atomic_write_bytes, atomic_write_json
from cs231n_tf.visualize.embedding import embed_2d, extract_features, nearest_neighbors
from cs231n_tf.visualize.report import _display, _figure, _name, _png

PHOTO_CROPS = "photos"


def dataset_sample(dataset, limit, seed=0, crop_size=96):
    """``(images float32 (N, H, W, C) in 0..255, labels (N,), class names, spec)``: ``limit`` examples of
    ``dataset`` (``"photos"``: 30 crops of each shipped photo), all of the train and test splits pooled."""
    from cs231n_tf.data import photos
    from cs231n_tf.data.sources import load_raw

    limit = validation.positive_int("limit", limit)
    if dataset == PHOTO_CROPS:
        with tempfile.TemporaryDirectory() as tmp:
            raw = load_raw("folder:" + photos.write_crop_folder(tmp, per_class=30, size=crop_size, seed=seed))
    else:
        raw = load_raw(dataset)
    x = raw.x_train if raw.x_test is None else np.concatenate([raw.x_train, raw.x_test])
    y = raw.y_train if raw.y_test is None else np.concatenate([raw.y_train, raw.y_test])
    pick = np.random.default_rng(seed).permutation(len(x))[:limit]
    return x[pick].astype(np.float32) * (255.0 / raw.pixel_max), y[pick], tuple(raw.class_names), dataset


def _scatter(coords, labels, names, title):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        at = labels == c
        ax.scatter(coords[at, 0], coords[at, 1], s=10, color=cmap(i % cmap.N), label=_name(names, int(c)))
    if len(classes) <= 20:
        ax.legend(fontsize=6, markerscale=1.5, loc="best")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    data = _png(fig)
    plt.close(fig)
    return data


def space_report(verb, out_dir, net, prepare, channels, names, source, *, dataset, limit=200, k=5, queries=5,
                 layer=None, seed=0):
    """Write ``<verb>.png`` and ``<verb>.json`` (see the module docstring); returns the JSON's dict."""
    images, labels, data_names, spec = dataset_sample(dataset, limit, seed)
    if images.shape[-1] != channels:
        raise ConfigError(f"data set {spec!r} has {images.shape[-1]} channels; the model takes {channels}")
    x = np.stack([prepare(im) for im in images]).astype(np.float32)
    feats = extract_features(net, x, layer)
    out = {"verb": verb, "source": source, "dataset": spec,
           "examples": len(x), "feature_dim": int(feats.shape[1]), "labels": labels.tolist()}
    if verb == "neighbors":
        queries = validation.int_in("queries", queries, 1, len(x) - 1)
        k = validation.int_in("k", k, 1, len(x) - queries)
        pixel = queries + nearest_neighbors(x[:queries], x[queries:], k)
        feature = queries + nearest_neighbors(feats[:queries], feats[queries:], k)
        panels, titles = [], []
        for q in range(queries):
            panels.append((_display(images[q]), "gray"))
            titles.append(f"query {_name(data_names, int(labels[q]))}")
            for idx, kind in ((pixel[q], "pixel"), (feature[q], "feature")):
                panels += [(_display(images[j]), "gray") for j in idx]
                titles += [f"{kind} {_name(data_names, int(labels[j]))}" for j in idx]
        png = _figure(panels, titles, rows=queries)
        out.update(queries=list(range(queries)), pixel_neighbors=pixel.tolist(), feature_neighbors=feature.tolist(),
                   pixel_label_agreement=float(np.mean(labels[pixel] == labels[:queries, None])),
                   feature_label_agreement=float(np.mean(labels[feature] == labels[:queries, None])))
    else:
        coords = embed_2d(feats, verb, seed=seed)
        png = _scatter(coords, labels, data_names, f"{verb.upper()} of {feats.shape[1]}-d features, {spec}")
        out["coordinates"] = coords.tolist()
    atomic_write_bytes(os.path.join(out_dir, f"{verb}.png"), png)
    out["png"] = f"{verb}.png"
    atomic_write_json(os.path.join(out_dir, f"{verb}.json"), out)
    return out
