"""Tier-1 NMS and soft-NMS against TensorFlow's ops; batched and class-aware NMS, also from a SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.detection import batched_nms, class_aware_nms, nms, soft_nms
from cs231n_tf.errors import ConfigError


def _case(rng, n, size=100.0):
    c = rng.uniform(0, size, (n, 2))
    s = rng.uniform(5, 40, (n, 2))
    boxes = np.concatenate([c - s / 2, c + s / 2], axis=1).astype(np.float32)
    if n and rng.random() < 0.3:  # corners given in the other diagonal order, as TF accepts
        boxes = boxes[:, [2, 3, 0, 1]]
    return boxes, rng.random(n).astype(np.float32)


def test_nms_equals_tf_image_non_max_suppression():
    rng = np.random.default_rng(0)
    for _ in range(150):
        boxes, scores = _case(rng, int(rng.integers(0, 80)))
        iou_threshold = float(rng.uniform(0.05, 0.95))
        max_out = int(rng.integers(0, 40))
        score_threshold = float(rng.choice([-np.inf, 0.2, 0.7]))
        ours = nms(boxes, scores, iou_threshold, max_out, score_threshold).numpy()
        ref = tf.image.non_max_suppression(boxes, scores, max_out, iou_threshold, score_threshold).numpy()
        np.testing.assert_array_equal(ours, ref)


def test_nms_by_hand():
    boxes = np.array([[0, 0, 10, 10], [0, 1, 10, 11], [0, 20, 10, 30], [0, 5, 10, 15]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    # IoU(0, 1) = 90 / 110 = 0.82; IoU(0, 3) = 50 / 150 = 0.33; IoU(1, 3) = 60 / 140 = 0.43
    assert nms(boxes, scores, 0.5).numpy().tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.3).numpy().tolist() == [0, 2]
    assert nms(boxes, scores, 0.9).numpy().tolist() == [0, 1, 2, 3]
    assert nms(boxes, scores, 0.5, max_output_size=1).numpy().tolist() == [0]
    assert nms(boxes, scores, 0.5, score_threshold=0.75).numpy().tolist() == [0]
    with pytest.raises(ConfigError, match=r"iou_threshold must be in \[0.0, 1.0\], got 1.5"):
        nms(boxes, scores, 1.5)


def test_soft_nms_equals_tf_with_half_sigma():
    rng = np.random.default_rng(1)
    for _ in range(60):
        boxes, scores = _case(rng, int(rng.integers(0, 60)))
        sigma = float(rng.uniform(0.1, 1.5))
        max_out = int(rng.integers(1, 50))
        threshold = float(rng.choice([0.001, 0.1, 0.4]))
        idx, sc = soft_nms(boxes, scores, max_out, sigma=sigma, score_threshold=threshold)
        ref_idx, ref_sc = tf.image.non_max_suppression_with_scores(
            boxes, scores, max_out, iou_threshold=0.5, score_threshold=threshold, soft_nms_sigma=sigma / 2)
        np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
        np.testing.assert_allclose(sc.numpy(), ref_sc.numpy(), rtol=1e-5, atol=1e-7)


def test_soft_nms_by_hand():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    idx, sc = soft_nms(boxes, scores, 10, sigma=0.5, score_threshold=0.0)
    # box 1: 0.8 exp(-0.5^2 / 0.5); box 2: 0.7 exp(-0.9^2 / 0.5) exp(-(50/90)^2 / 0.5)
    s1 = 0.8 * np.exp(-0.25 / 0.5)
    s2 = 0.7 * np.exp(-0.81 / 0.5) * np.exp(-(50 / 90) ** 2 / 0.5)
    assert idx.numpy().tolist() == [0, 1, 2]
    np.testing.assert_allclose(sc.numpy(), [0.9, s1, s2], rtol=1e-5)


def _per_class_reference(boxes, scores, per_class, total, iou_threshold, score_threshold):
    found = []
    for c in range(scores.shape[1]):
        keep = tf.image.non_max_suppression(boxes, scores[:, c], per_class, iou_threshold, score_threshold).numpy()
        found += [(float(scores[k, c]), c, tuple(boxes[k])) for k in keep]
    found.sort(key=lambda t: -t[0])
    return found[:total]


def test_batched_nms_equals_per_class_tf_nms_and_works_from_a_savedmodel(tmp_path):
    rng = np.random.default_rng(2)
    batch, n, classes = 3, 40, 4
    boxes = np.stack([_case(rng, n)[0] for _ in range(batch)])
    scores = rng.random((batch, n, classes)).astype(np.float32)
    det = batched_nms(boxes, scores, max_output_per_class=5, max_detections=12, iou_threshold=0.4,
                      score_threshold=0.3)
    assert det.boxes.shape == (batch, 12, 4) and det.classes.dtype == tf.int32
    for b in range(batch):
        ref = _per_class_reference(boxes[b], scores[b], 5, 12, 0.4, 0.3)
        k = int(det.num_detections[b])
        assert k == len(ref)
        np.testing.assert_allclose(det.scores[b, :k].numpy(), [r[0] for r in ref], rtol=1e-6)
        assert det.classes[b, :k].numpy().tolist() == [r[1] for r in ref]
        np.testing.assert_allclose(det.boxes[b, :k].numpy(), [r[2] for r in ref], rtol=1e-6)
        assert np.all(det.scores[b, k:].numpy() == 0)

    def detect(bx, sc):
        return batched_nms(bx, sc, 5, 12, 0.4, 0.3)._asdict()

    def tier1(bx, sc):
        return nms(bx, sc, 0.4, 7)

    module = tf.Module()
    module.detect = tf.function(detect, input_signature=[tf.TensorSpec([None, None, 4], tf.float32),
                                                         tf.TensorSpec([None, None, classes], tf.float32)])
    module.tier1 = tf.function(tier1, input_signature=[tf.TensorSpec([None, 4], tf.float32),
                                                       tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    out = loaded.detect(tf.constant(boxes), tf.constant(scores))
    np.testing.assert_array_equal(out["num_detections"].numpy(), det.num_detections.numpy())
    np.testing.assert_allclose(out["boxes"].numpy(), det.boxes.numpy())
    np.testing.assert_array_equal(loaded.tier1(boxes[0], scores[0, :, 0]).numpy(),
                                  tf.image.non_max_suppression(boxes[0], scores[0, :, 0], 7, 0.4).numpy())


def test_class_aware_nms_suppresses_within_classes_only():
    rng = np.random.default_rng(3)
    boxes, scores = _case(rng, 60)
    classes = rng.integers(0, 3, 60)
    keep = class_aware_nms(boxes, scores, classes, 100, 0.3).numpy()
    expected = []
    for c in range(3):
        members = np.nonzero(classes == c)[0]
        expected += members[tf.image.non_max_suppression(boxes[members], scores[members], 100, 0.3).numpy()].tolist()
    assert sorted(keep.tolist()) == sorted(expected)
    assert np.all(np.diff(scores[keep]) <= 0)
    # Two identical boxes of different classes both survive.
    same = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    assert class_aware_nms(same, [0.9, 0.8], [0, 1], iou_threshold=0.5).numpy().tolist() == [0, 1]
    assert nms(same, [0.9, 0.8], 0.5).numpy().tolist() == [0]
