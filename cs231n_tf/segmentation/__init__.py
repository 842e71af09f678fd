"""Semantic segmentation (lecture 11): FCN/U-Net with every upsampling of the lecture, mIoU, on the engine.

- ``layers``: nearest, bed of nails, max unpooling with the pool's switches, transposed conv, bilinear;
- ``models``: :func:`fcn`, :func:`unet`;
- ``losses`` / ``metrics``: per-pixel cross-entropy with ignore label and class weights; streaming
  mean IoU, per-class IoU and pixel accuracy;
- ``data`` / ``augment``: the embedded shapes scenes, ``masks:IMAGE_DIR:MASK_DIR``, joint augmentation;
- ``task``: :class:`SegmentationTask` (``"segmentation"``), ``train``, ``evaluate_run``;
- ``export``: verified SavedModel and TFLite export of a run, scored by mIoU.
"""

from cs231n_tf.segmentation.layers import UPSAMPLING, BedOfNails, MaxPoolWithArgmax, MaxUnpooling, upsample
from cs231n_tf.segmentation.losses import IGNORE_LABEL, pixel_cross_entropy, segmentation_loss
from cs231n_tf.segmentation.metrics import SegmentationMetrics, iou_from_confusion
from cs231n_tf.segmentation.models import fcn, unet

__all__ = ["IGNORE_LABEL", "UPSAMPLING", "BedOfNails", "MaxPoolWithArgmax", "MaxUnpooling", "SegmentationMetrics",
           "fcn", "iou_from_confusion", "pixel_cross_entropy", "segmentation_loss", "unet", "upsample"]
