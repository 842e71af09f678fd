"""Object detection (lecture 11): boxes, anchors, NMS and COCO/VOC metrics.

- :mod:`~cs231n_tf.detection.boxes`: IoU, GIoU, encode/decode, COCO conversions, validation;
- :mod:`~cs231n_tf.detection.anchors`: multi-level anchors and their matching to ground truth;
- :mod:`~cs231n_tf.detection.nms`: greedy and soft NMS by hand (tier 1), batched NMS on TF's ops;
- :mod:`~cs231n_tf.detection.metrics`: COCO mAP via pycocotools, VOC AP by hand.
"""

from cs231n_tf.detection.anchors import anchors_per_location, generate_anchors, match
from cs231n_tf.detection.boxes import (area, clip_boxes, decode, encode, from_xywh, giou, iou, to_xywh,
                                       validate_boxes)
from cs231n_tf.detection.metrics import coco_evaluate, voc_ap, voc_evaluate
from cs231n_tf.detection.nms import Detections, batched_nms, class_aware_nms, nms, soft_nms

__all__ = ["Detections", "anchors_per_location", "area", "batched_nms", "class_aware_nms", "clip_boxes",
           "coco_evaluate", "decode", "encode", "from_xywh", "generate_anchors", "giou", "iou", "match", "nms",
           "soft_nms", "to_xywh", "validate_boxes", "voc_ap", "voc_evaluate"]
