"""Joint augmentation: the mask moves with the image, labels stay labels, the same seed gives the same view."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.errors import ConfigError
from cs231n_tf.segmentation.augment import augment_pair, parse_augment


def _blocks(k=4, size=32, block=8, seed=0):
    """A mask of constant 8x8 blocks and an image whose channels are its one-hot encoding."""
    rng = np.random.default_rng(seed)
    mask = np.kron(rng.integers(0, k, (size // block, size // block)), np.ones((block, block), int))
    return np.eye(k, dtype=np.float32)[mask], mask.astype(np.int32)


@pytest.mark.parametrize("ops", [("flip",), ("crop",), ("flip", "crop")])
def test_exact_moves_keep_mask_and_image_aligned(ops):
    image, mask = _blocks()
    moved = 0
    for s in range(16):
        x, y = (t.numpy() for t in augment_pair(tf.constant(image), tf.constant(mask), tf.constant([s, 1]), ops))
        labelled = y != 255
        np.testing.assert_array_equal(x.argmax(-1)[labelled], y[labelled])
        assert (x[~labelled] == 0).all()  # padding: zero image, ignore label, at the same pixels
        moved += not np.array_equal(y, mask)
    assert moved >= 2


def test_scale_resamples_masks_with_nearest_and_follows_the_image():
    image, mask = _blocks()
    for s in range(6):
        x, y = (t.numpy() for t in augment_pair(tf.constant(image), tf.constant(mask), tf.constant([s, 2]),
                                                ("scale",)))
        assert x.shape == (32, 32, 4) and y.shape == (32, 32)
        assert set(np.unique(y)) <= set(np.unique(mask))  # no blended labels
        # Bilinear and nearest differ only along block borders.
        assert (x.argmax(-1) == y).mean() > 0.9


def test_same_seed_same_view_and_parse():
    image, mask = _blocks()
    a = augment_pair(tf.constant(image), tf.constant(mask), tf.constant([3, 4]))
    b = augment_pair(tf.constant(image), tf.constant(mask), tf.constant([3, 4]))
    c = augment_pair(tf.constant(image), tf.constant(mask), tf.constant([3, 5]))
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())
    assert parse_augment("flip,scale") == ("flip", "scale") and parse_augment("none") == ()
    with pytest.raises(ConfigError, match="rotate"):
        parse_augment("flip,rotate")
