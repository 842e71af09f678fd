"""Box toolkit: IoU against pycocotools, GIoU by hand, encode/decode round trip, conversions, validation."""

import numpy as np
import pytest
import tensorflow as tf
from pycocotools import mask as mask_utils

from cs231n_tf.detection import boxes as B
from cs231n_tf.errors import DataError


def _random_boxes(rng, n, size=100.0):
    c = rng.uniform(0, size, (n, 2))
    s = rng.uniform(1, size / 3, (n, 2))
    return np.concatenate([c - s / 2, c + s / 2], axis=1).astype(np.float32)


def test_iou_matrix_matches_pycocotools():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    ours = B.iou(a, b).numpy()
    xywh = lambda x: np.stack([x[:, 1], x[:, 0], x[:, 3] - x[:, 1], x[:, 2] - x[:, 0]], 1).astype(np.float64)
    ref = mask_utils.iou(xywh(a), xywh(b), [0] * len(b))
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert ours.shape == (7, 5)
    # Batched: a leading axis broadcasts; elementwise IoU is the matrix's diagonal.
    batched = B.iou(np.stack([a, a[::-1]]), np.stack([b, b])).numpy()
    np.testing.assert_allclose(batched[1], ours[::-1], atol=1e-6)
    np.testing.assert_allclose(B.iou(a[:5], b, pairwise=False).numpy(), np.diag(ours[:5]), atol=1e-6)


def test_area_iou_giou_hand_cases():
    a = np.array([[0, 0, 2, 2]], np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [4, 4, 5, 5], [2, 2, 2, 2]], np.float32)
    assert B.area(b).numpy().tolist() == [4, 4, 1, 0]
    # overlap 1 of union 7; enclosing box 3x3 = 9
    np.testing.assert_allclose(B.iou(a, b).numpy()[0], [1 / 7, 1, 0, 0], atol=1e-7)
    # giou = iou - (C - U) / C: (1/7 - 2/9), 1, (0 - (25 - 5) / 25), zero-area box: 0 - (4 - 4) / 4
    np.testing.assert_allclose(B.giou(a, b).numpy()[0], [1 / 7 - 2 / 9, 1, -20 / 25, 0], atol=1e-6)
    np.testing.assert_allclose(B.giou(np.repeat(a, 4, 0), b, pairwise=False).numpy(), B.giou(a, b).numpy()[0])


def test_giou_loss_has_gradient_for_disjoint_boxes():
    target = tf.constant([[10.0, 10.0, 20.0, 20.0]])
    pred = tf.Variable([[0.0, 0.0, 5.0, 5.0]])
    with tf.GradientTape(persistent=True) as tape:
        loss_iou = 1 - B.iou(pred, target, pairwise=False)
        loss_giou = 1 - B.giou(pred, target, pairwise=False)
    assert np.all(tape.gradient(loss_iou, pred).numpy() == 0)
    g = tape.gradient(loss_giou, pred).numpy()
    assert g[0, 2] < 0 and g[0, 3] < 0  # growing towards the target lowers the loss


def test_encode_by_hand_and_round_trip():
    anchors = np.array([[0, 0, 10, 20]], np.float32)
    box = np.array([[1, 2, 21, 12]], np.float32)  # centre (11, 7), size (20, 10); anchor centre (5, 10), (10, 20)
    expected = [(11 - 5) / 10 / 0.1, (7 - 10) / 20 / 0.1, np.log(2) / 0.2, np.log(0.5) / 0.2]
    np.testing.assert_allclose(B.encode(box, anchors).numpy()[0], expected, rtol=1e-6)
    rng = np.random.default_rng(1)
    boxes, anchors = _random_boxes(rng, 50), _random_boxes(rng, 50)
    for variances in ((0.1, 0.1, 0.2, 0.2), (1.0, 1.0, 1.0, 1.0)):
        codes = B.encode(boxes, anchors, variances)
        np.testing.assert_allclose(B.decode(codes, anchors, variances).numpy(), boxes, atol=1e-3)
    # Compiled and batched.
    f = tf.function(lambda c, a: B.decode(c, a))
    np.testing.assert_allclose(f(B.encode(boxes[None], anchors[None]), anchors[None]).numpy()[0], boxes, atol=1e-3)


def test_xywh_and_clip():
    yx = np.array([[1, 2, 5, 10]], np.float32)
    assert B.to_xywh(yx).numpy().tolist() == [[2, 1, 8, 4]]
    np.testing.assert_array_equal(B.from_xywh(B.to_xywh(yx)).numpy(), yx)
    clipped = B.clip_boxes([[-3.0, 2.0, 50.0, 70.0]], 40, 60).numpy()
    assert clipped.tolist() == [[0, 2, 40, 60]]


@pytest.mark.parametrize("box, pattern", [
    ([0, 5, 10, 4], r"gt\[1\] = \[0.0, 5.0, 10.0, 4.0\] has ymax < ymin or xmax < xmin"),
    ([0, 0, np.nan, 4], r"gt\[1\] = .* has a non-finite coordinate"),
    ([0, 0, 10, 70], r"gt\[1\] = .* lies outside the 40x60 image"),
])
def test_validate_boxes_names_the_box(box, pattern):
    ok = B.validate_boxes([[0, 0, 10, 10], [0, 0, 40, 60]], 40, 60, what="gt")
    assert ok.dtype == np.float32 and ok.shape == (2, 4)
    with pytest.raises(DataError, match=pattern) as info:
        B.validate_boxes([[0, 0, 10, 10], box], 40, 60, what="gt")
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match=r"must have shape \(N, 4\)"):
        B.validate_boxes([[1, 2, 3]])
    assert B.validate_boxes([]).shape == (0, 4)
