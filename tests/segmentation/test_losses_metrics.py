"""The segmentation loss against hand-masked TensorFlow cross-entropy; the metric against scikit-learn."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import confusion_matrix, jaccard_score

from cs231n_tf.errors import ConfigError
from cs231n_tf.segmentation.losses import pixel_cross_entropy, segmentation_loss
from cs231n_tf.segmentation.metrics import SegmentationMetrics, iou_from_confusion

RNG = np.random.default_rng(0)


def _labels(shape, k, ignore_share=0.2):
    labels = RNG.integers(0, k, size=shape)
    labels[RNG.uniform(size=shape) < ignore_share] = 255
    return labels.astype(np.uint8)


def test_loss_equals_masked_sparse_cross_entropy():
    logits = RNG.normal(size=(3, 5, 6, 4)).astype(np.float32)
    labels = _labels((3, 5, 6), 4)
    valid = labels != 255
    reference = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels[valid].astype(np.int32),
                                                               logits=logits[valid]).numpy()
    assert float(segmentation_loss(labels, logits)) == pytest.approx(reference.mean(), rel=1e-6)
    weights = np.array([0.5, 2.0, 1.0, 3.0], np.float32)
    w = weights[labels[valid]]
    got = float(segmentation_loss(labels, logits, class_weights=weights))
    assert got == pytest.approx((reference * w).sum() / w.sum(), rel=1e-6)
    losses, pixel_w = pixel_cross_entropy(labels, logits, class_weights=weights)
    assert (losses.numpy()[~valid] == 0).all() and (pixel_w.numpy()[~valid] == 0).all()
    np.testing.assert_allclose(losses.numpy()[valid], reference, rtol=1e-6)
    # The gradient reaches no logit of an ignored pixel.
    x = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = segmentation_loss(labels, x)
    grad = tape.gradient(loss, x).numpy()
    assert (grad[~valid] == 0).all() and np.abs(grad[valid]).sum() > 0
    assert float(segmentation_loss(np.full((1, 2, 2), 255, np.uint8), logits[:1, :2, :2])) == 0.0
    with pytest.raises(ConfigError, match="class_weights must be 4"):
        segmentation_loss(labels, logits, class_weights=[1.0, 2.0])


def test_streaming_metric_equals_scikit_learn():
    k = 5
    metric = SegmentationMetrics(k)
    all_true, all_pred = [], []
    for _ in range(3):  # streaming over batches
        labels = _labels((2, 7, 9), k)
        logits = RNG.normal(size=(2, 7, 9, k)).astype(np.float32)
        logits[..., 4] -= 10  # class 4 never predicted: its IoU is 0, still defined
        metric.update_state(labels, logits)
        valid = labels != 255
        all_true.append(labels[valid])
        all_pred.append(logits.argmax(-1)[valid])
    y, p = np.concatenate(all_true), np.concatenate(all_pred)
    expected = confusion_matrix(y, p, labels=range(k))
    np.testing.assert_array_equal(metric.confusion().numpy(), expected)
    tp = np.diag(expected)
    iou = tp / (expected.sum(0) + expected.sum(1) - tp)
    np.testing.assert_allclose(metric.per_class_iou().numpy(), iou, rtol=1e-12)
    np.testing.assert_allclose(iou, jaccard_score(y, p, labels=range(k), average=None, zero_division=0), rtol=1e-12)
    assert float(metric.result()) == pytest.approx(iou.mean(), rel=1e-12)
    assert float(metric.pixel_accuracy()) == pytest.approx((y == p).mean(), rel=1e-12)
    assert iou_from_confusion(expected)[1] == pytest.approx(iou.mean(), rel=1e-12)
    # Keras's own MeanIoU with the ignored pixels weighted out agrees.
    keras = tf.keras.metrics.MeanIoU(k)
    keras.update_state(y, p)
    assert float(keras.result()) == pytest.approx(float(metric.result()), rel=1e-6)
    metric.reset_state()
    assert int(tf.reduce_sum(metric.confusion())) == 0


def test_absent_classes_are_left_out_of_the_mean():
    metric = SegmentationMetrics(4)
    labels = np.array([[[0, 0, 1, 255]]], np.uint8)
    metric.update_state(labels, np.array([[[0, 1, 1, 3]]]))  # class 2 absent; class 3 only at an ignored pixel
    iou = metric.per_class_iou().numpy()
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(0.5) and np.isnan(iou[2]) and np.isnan(iou[3])
    assert float(metric.result()) == pytest.approx(0.5)
    assert float(metric.pixel_accuracy()) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(iou_from_confusion(metric.confusion().numpy())[0], iou)
