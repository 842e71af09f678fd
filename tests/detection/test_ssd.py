"""The single-shot detector's pieces: backbone levels, heads, targets, losses, post-processing, augmentation."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.detection import ssd as ssdlib
from cs231n_tf.detection.anchors import anchors_per_location
from cs231n_tf.detection.augment import augment_detection, flip_boxes, parse_augment
from cs231n_tf.detection.boxes import decode, encode
from cs231n_tf.detection.losses import sigmoid_focal_loss
from cs231n_tf.errors import ConfigError


@pytest.fixture(scope="module")
def small_ssd():
    return ssdlib.ssd((32, 32, 3), 3, backbone="resnet18", fpn_filters=8, head_depth=1)


def test_backbone_levels_cut_resnet_and_efficientnet_at_their_strides():
    levels = ssdlib.backbone_levels("resnet18", (64, 64, 3))
    assert [tuple(o.shape[1:3]) for o in levels.outputs] == [(8, 8), (4, 4), (2, 2)]
    lite = ssdlib.backbone_levels("efficientnet_lite0", (64, 64, 3), strides=(16, 32))
    assert [tuple(o.shape[1:3]) for o in lite.outputs] == [(4, 4), (2, 2)]
    assert lite.get_layer("normalize") is not None  # its ImageNet statistics, inside the model
    with pytest.raises(ConfigError, match="no feature map at stride 8"):
        ssdlib.backbone_levels("small_convnet", (32, 32, 3))


def test_ssd_outputs_follow_the_anchor_order_and_start_at_the_prior(small_ssd):
    anchors = ssdlib.detector_anchors((32, 32))
    out = small_ssd(tf.random.uniform((2, 32, 32, 3)))
    a = anchors_per_location()
    assert len(anchors) == (16 + 4 + 1) * a
    assert out["class_logits"].shape == (2, len(anchors), 3) and out["box_codes"].shape == (2, len(anchors), 4)
    # Lin et al.'s initialisation: every class probability starts near pi = 0.01.
    np.testing.assert_allclose(tf.sigmoid(out["class_logits"]).numpy().mean(), 0.01, atol=0.005)
    with pytest.raises(ConfigError, match="divisible by the largest stride"):
        ssdlib.ssd((40, 40, 3), 3)


def test_assign_targets_encodes_positives_and_marks_background():
    anchors = tf.constant([[0, 0, 10, 10], [0, 0, 10, 12], [20, 20, 30, 30], [0, 20, 10, 30]], tf.float32)
    gt = tf.constant([[0, 0, 10, 11], [1, 1, 2, 2]], tf.float32)
    classes, codes = ssdlib.assign_targets(gt, [2, 1], [True, False], anchors)
    # Anchors 0 and 1 overlap the real box (IoU 10/11 and 11/12); 2 and 3 are background; the
    # padding row (valid False) matches nothing.
    assert classes.numpy().tolist() == [2, 2, ssdlib.BACKGROUND, ssdlib.BACKGROUND]
    np.testing.assert_allclose(codes[:2].numpy(), encode(tf.stack([gt[0], gt[0]]), anchors[:2]).numpy(), rtol=1e-6)
    np.testing.assert_allclose(decode(codes[:2], anchors[:2]).numpy(), [gt[0].numpy()] * 2, atol=1e-4)
    assert not codes[2:].numpy().any()
    empty_classes, empty_codes = ssdlib.assign_targets(gt, [0, 0], [False, False], anchors)
    assert (empty_classes.numpy() == ssdlib.BACKGROUND).all() and not empty_codes.numpy().any()
    # Between the thresholds: ignored. IoU of [0,0,10,10] with [0,0,10,22] is 10/22 < 0.5, >= 0.4,
    # and the box's forced best anchor is anchor 1 (IoU 12/22).
    classes, _ = ssdlib.assign_targets(tf.constant([[0, 0, 10, 22]], tf.float32), [0], [True], anchors,
                                       negative_iou=0.4)
    assert classes.numpy().tolist() == [ssdlib.IGNORE, 0, ssdlib.BACKGROUND, ssdlib.BACKGROUND]


def test_detection_losses_equal_hand_sums():
    rng = np.random.default_rng(1)
    anchors = ssdlib.detector_anchors((32, 32))[:6]
    targets = tf.constant([[0, ssdlib.BACKGROUND, ssdlib.IGNORE, 2, ssdlib.BACKGROUND, 1]])
    box_targets = tf.constant(rng.normal(size=(1, 6, 4)), tf.float32)
    logits = tf.constant(rng.normal(size=(1, 6, 3)), tf.float32)
    codes = tf.constant(rng.normal(size=(1, 6, 4)), tf.float32)
    class_loss, box_loss, positives = ssdlib.detection_losses(targets, box_targets, logits, codes, anchors)
    t = targets.numpy()[0]
    one_hot = np.zeros((6, 3))
    for i, c in enumerate(t):
        if c >= 0:
            one_hot[i, c] = 1
    focal = sigmoid_focal_loss(one_hot, logits[0]).numpy().sum(-1)
    assert float(class_loss) == pytest.approx(focal[t != ssdlib.IGNORE].sum(), rel=1e-5)
    d = np.abs(codes.numpy()[0] - box_targets.numpy()[0])
    sl1 = np.where(d < 0.11, 0.5 * d * d / 0.11, d - 0.055).sum(-1)
    assert float(box_loss) == pytest.approx(sl1[t >= 0].sum(), rel=1e-5)
    assert float(positives) == 3
    _, giou_box, _ = ssdlib.detection_losses(targets, box_targets, logits, box_targets, anchors, box_loss="giou")
    assert float(giou_box) == pytest.approx(0.0, abs=1e-5)  # predicted = target boxes


def _random_heads(rng, n, k):
    return (tf.constant(rng.normal(-1, 2, (1, n, k)), tf.float32), tf.constant(rng.normal(0, 1, (1, n, 4)), tf.float32))


def test_postprocess_equals_per_class_nms_by_hand_and_the_tflite_variant():
    rng = np.random.default_rng(2)
    anchors = ssdlib.detector_anchors((32, 32))
    logits, codes = _random_heads(rng, len(anchors), 3)
    det = ssdlib.postprocess(logits, codes, anchors, (32, 32), max_detections=20, score_threshold=0.1)
    boxes = np.clip(decode(codes[0], anchors).numpy(), 0, 32)
    scores = tf.sigmoid(logits[0]).numpy()
    expected = []
    for c in range(3):
        keep = tf.image.non_max_suppression(boxes, scores[:, c], 20, 0.5, 0.1).numpy()
        expected += [(scores[i, c], c, tuple(boxes[i])) for i in keep]
    expected = sorted(expected, key=lambda e: -e[0])[:20]
    n = int(det.num_detections[0])
    assert n == len(expected) == 20
    np.testing.assert_allclose(det.scores[0, :n].numpy(), [e[0] for e in expected], rtol=1e-6)
    assert det.classes[0, :n].numpy().tolist() == [e[1] for e in expected]
    np.testing.assert_allclose(det.boxes[0, :n].numpy(), [e[2] for e in expected], atol=1e-4)
    single = ssdlib.postprocess_single(logits[0], codes[0], anchors, (32, 32), max_detections=20, score_threshold=0.1)
    for a, b in zip(single, det):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    # Nothing above the threshold: no detections, zero rows.
    none = ssdlib.postprocess_single(logits[0] - 100, codes[0], anchors, (32, 32), max_detections=5)
    assert int(none.num_detections[0]) == 0 and not none.boxes.numpy().any()


def test_augmentation_moves_boxes_with_the_image():
    assert parse_augment("flip,scale") == ("flip", "scale") and parse_augment("none") == ()
    with pytest.raises(ConfigError, match="augment"):
        parse_augment("rotate")
    image = np.zeros((32, 32, 1), np.float32)
    image[4:12, 20:30] = 1.0  # one object, box [4, 20, 12, 30]
    boxes = tf.constant([[4, 20, 12, 30], [0, 0, 1, 1]], tf.float32)
    np.testing.assert_allclose(flip_boxes(boxes[:1], 32.0).numpy(), [[4, 2, 12, 12]])
    seen = set()
    for s in range(12):
        view, moved, valid = augment_detection(tf.constant(image), boxes, [True, False], tf.constant([s, 7]))
        view, moved, valid = view.numpy()[..., 0], moved.numpy(), valid.numpy()
        assert not valid[1]
        if not valid[0]:
            seen.add("dropped")
            continue
        ys, xs = np.nonzero(view > 0.5)
        # The drawn object's pixels lie in the moved box (to a pixel of resampling), clipped to the image.
        assert ys.min() >= moved[0, 0] - 1 and ys.max() + 1 <= moved[0, 2] + 1
        assert xs.min() >= moved[0, 1] - 1 and xs.max() + 1 <= moved[0, 3] + 1
        seen.add("flipped" if moved[0, 1] < 16 else "kept")
    assert {"flipped", "kept"} <= seen
