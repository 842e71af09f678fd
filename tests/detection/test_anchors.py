"""Anchors against hand-computed ones; matching with thresholds, forced best match and no ground truth."""

import math

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.detection import anchors_per_location, generate_anchors, match
from cs231n_tf.errors import ConfigError


def test_anchors_by_hand_and_order():
    a = generate_anchors((16, 24), strides=(8, 16), sizes=(8, 20), scales=(1.0, 2.0), aspect_ratios=(1.0, 4.0)).numpy()
    per = anchors_per_location((1.0, 2.0), (1.0, 4.0))
    assert per == 4
    # level 0: 2x3 locations, level 1: 1x2 locations (ceil)
    assert a.shape == ((2 * 3 + 1 * 2) * per, 4)
    # first location, centre (4, 4): (scale 1, ratio 1) 8x8; (1, 4) h 4 w 16; (2, 1) 16x16; (2, 4) h 8 w 32
    np.testing.assert_allclose(a[:4], [[0, 0, 8, 8], [2, -4, 6, 12], [-4, -4, 12, 12], [0, -12, 8, 20]])
    # second location is one step in x (row-major): centre (4, 12)
    np.testing.assert_allclose(a[4], [0, 8, 8, 16])
    # fourth location starts row 2: centre (12, 4)
    np.testing.assert_allclose(a[12], [8, 0, 16, 8])
    # level 1, first location: centre (8, 8), size 20, scale 2 ratio 4: h = 40 / 2, w = 40 * 2
    np.testing.assert_allclose(a[24 + 3], [8 - 10, 8 - 40, 8 + 10, 8 + 40])
    normalised = generate_anchors((16, 24), strides=(8, 16), sizes=(8, 20), scales=(1.0, 2.0),
                                  aspect_ratios=(1.0, 4.0), normalized=True).numpy()
    np.testing.assert_allclose(normalised, a / [16, 24, 16, 24], rtol=1e-6)
    # The head's reshape: a (H, W, A*4) map flattens to the same order.
    level0 = a[:24].reshape(2, 3, per, 4)
    assert np.allclose(level0[1, 2, 0], [8, 16, 16, 24])
    # Default sizes are 4 * stride and the aspect ratio is w / h.
    d = generate_anchors((32, 32), strides=(32,), scales=(1.0,), aspect_ratios=(2.0,)).numpy()
    h, w = 128 / math.sqrt(2), 128 * math.sqrt(2)
    np.testing.assert_allclose(d, [[16 - h / 2, 16 - w / 2, 16 + h / 2, 16 + w / 2]], rtol=1e-6)
    with pytest.raises(ConfigError, match="sizes has 1 entries but strides has 2"):
        generate_anchors((16, 16), strides=(8, 16), sizes=(8,))


def test_match_thresholds_forced_match_and_ignored():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 6], [0, 0, 10, 4.5], [50, 50, 60, 60], [80, 80, 90, 90]],
                       np.float32)
    gt = np.array([[0, 0, 10, 10], [51, 51, 70, 70]], np.float32)
    # IoUs with gt 0: 1, 0.6, 0.45, 0, 0. gt 1's best anchor is 3 with IoU 81/(100+361-81) = 0.213.
    idx, labels = match(gt, anchors, 0.5, 0.4)
    assert labels.numpy().tolist() == [1, 1, -1, 1, 0]
    assert idx.numpy().tolist() == [0, 0, -1, 1, -1]
    idx, labels = match(gt, anchors, 0.5, 0.4, force_match=False)
    assert labels.numpy().tolist() == [1, 1, -1, 0, 0]
    # Padded ground truth: the invalid box matches nothing.
    idx, labels = match(gt, anchors, 0.5, 0.4, gt_valid=[True, False])
    assert labels.numpy().tolist() == [1, 1, -1, 0, 0] and idx.numpy().tolist() == [0, 0, -1, -1, -1]


def test_match_forced_anchor_goes_to_the_box_that_forced_it_and_no_gt_is_all_negative():
    anchors = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    # Both boxes overlap anchor 0 weakly; box 1 (IoU 0.25) beats box 0 (0.1) there, but box 0's
    # best anchor is anchor 0 too: the tie on the anchor goes to the highest IoU (box 1).
    gt = np.array([[0, 0, 10, 1], [0, 0, 10, 2.5]], np.float32)
    idx, labels = match(gt, anchors)
    assert labels.numpy().tolist() == [1, 0] and idx.numpy().tolist() == [1, -1]
    f = tf.function(lambda g: match(g, anchors))
    idx, labels = f(tf.zeros((0, 4)))
    assert labels.numpy().tolist() == [0, 0] and idx.numpy().tolist() == [-1, -1]
    with pytest.raises(ConfigError, match="negative_iou <= positive_iou"):
        match(gt, anchors, positive_iou=0.3, negative_iou=0.5)


def test_match_over_a_padded_batch_equals_per_image_matching():
    anchors = generate_anchors((32, 32), strides=(8,), scales=(1.0,), aspect_ratios=(1.0,))
    gt = tf.constant([[[0, 0, 10, 10], [0, 0, 0, 0]], [[5, 5, 20, 20], [16, 16, 30, 30]]], tf.float32)
    valid = tf.constant([[True, False], [True, True]])

    def one(args):
        return match(args[0], anchors, gt_valid=args[1])

    indices, labels = tf.vectorized_map(one, (gt, valid))
    for k in range(2):
        expected_indices, expected_labels = match(tf.boolean_mask(gt[k], valid[k]), anchors)
        np.testing.assert_array_equal(indices[k].numpy(), expected_indices.numpy())
        np.testing.assert_array_equal(labels[k].numpy(), expected_labels.numpy())
    assert (labels.numpy() == 1).sum(axis=1).min() >= 1
