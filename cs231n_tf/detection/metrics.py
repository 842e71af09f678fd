"""Detection metrics: COCO mAP through pycocotools (library), VOC AP by hand (tier 1, lecture 11).

Inputs of both evaluations are lists with one entry per image, in the same order:

- ``ground_truth[i]``: ``{"boxes": (M, 4), "classes": (M,)}`` NumPy arrays, boxes
  ``[ymin, xmin, ymax, xmax]`` in pixels; optional ``"iscrowd"`` ``(M,)`` bool (COCO's crowd
  regions: matching them is neither a hit nor a miss), ``"masks"`` ``(M, H, W)`` bool (for
  ``iou_type="segm"``) and, for :func:`voc_evaluate`, ``"difficult"`` ``(M,)`` bool;
- ``detections[i]``: ``{"boxes": (K, 4), "classes": (K,), "scores": (K,)}`` and ``"masks"``
  ``(K, H, W)`` bool for ``"segm"``.

An image with no objects counts: its detections are false positives only. An image with neither
objects nor detections changes nothing. A class that has no ground-truth object in any image has
no AP (COCOeval leaves its precision at -1 and the mean skips it), so its detections do not
lower the score; both evaluations follow that rule.
"""

import contextlib
import io

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, DataError

COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
VOC_METHODS = ("11point", "all", "101point")


def _entry(entry, i, what, keys):
    if not isinstance(entry, dict):
        raise DataError(f"{what}[{i}] must be a dict with {', '.join(keys)}, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise DataError(f"{what}[{i}] lacks {', '.join(map(repr, missing))}; it needs {', '.join(keys)}")
    boxes = np.asarray(entry["boxes"], np.float64).reshape(-1, 4) if np.size(entry["boxes"]) == 0 \
        else np.asarray(entry["boxes"], np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise DataError(f"{what}[{i}]['boxes'] must have shape (N, 4), got {boxes.shape}")
    out = {"boxes": boxes}
    for key in keys[1:]:
        value = np.asarray(entry[key]).reshape(-1)
        if len(value) != len(boxes):
            raise DataError(f"{what}[{i}][{key!r}] has {len(value)} entries for {len(boxes)} boxes")
        out[key] = value
    for key in ("iscrowd", "difficult"):
        flags = np.asarray(entry.get(key, np.zeros(len(boxes), bool)), bool).reshape(-1)
        if len(flags) != len(boxes):
            raise DataError(f"{what}[{i}][{key!r}] has {len(flags)} entries for {len(boxes)} boxes")
        out[key] = flags
    if "masks" in entry:
        masks = np.asarray(entry["masks"], bool)
        if masks.ndim != 3 or len(masks) != len(boxes):
            raise DataError(f"{what}[{i}]['masks'] must have shape ({len(boxes)}, H, W), got {masks.shape}")
        out["masks"] = masks
    return out


def _inputs(ground_truth, detections):
    if len(ground_truth) != len(detections):
        raise DataError(f"ground_truth has {len(ground_truth)} images but detections has {len(detections)}; "
                        "give one entry per image in both")
    gts = [_entry(g, i, "ground_truth", ("boxes", "classes")) for i, g in enumerate(ground_truth)]
    dts = [_entry(d, i, "detections", ("boxes", "classes", "scores")) for i, d in enumerate(detections)]
    return gts, dts


def _xywh(box):
    ymin, xmin, ymax, xmax = (float(v) for v in box)
    return [xmin, ymin, xmax - xmin, ymax - ymin]


def _rle(mask):
    from pycocotools import mask as mask_utils

    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def coco_evaluate(ground_truth, detections, iou_type="bbox", categories=None):
    """COCO detection metrics of ``detections`` against ``ground_truth`` (module docstring for the inputs).

    Runs pycocotools' ``COCOeval`` in memory (its prints silenced) and returns its twelve
    summary numbers as ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100",
    "ARs", "ARm", "ARl"}``: AP averaged over IoU 0.50:0.05:0.95 with COCO's 101-point
    interpolation, at IoU 0.5 and 0.75, for small (< 32^2 px), medium and large objects, and
    recall with at most 1/10/100 detections per image. A key whose set is empty (e.g. ``APs``
    with no small objects) is -1, as pycocotools reports it. ``iou_type="segm"`` scores masks.
    ``categories``: the class ids to evaluate (default: every class in the ground truth or the
    detections). Areas for the size ranges are box areas for ``"bbox"``, mask areas for
    ``"segm"`` (COCO's own files store the mask area for both).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    validation.one_of("iou_type", iou_type, ("bbox", "segm"))
    gts, dts = _inputs(ground_truth, detections)
    if iou_type == "segm":
        for what, entries in (("ground_truth", gts), ("detections", dts)):
            for i, e in enumerate(entries):
                if "masks" not in e:
                    raise DataError(f"iou_type='segm' needs 'masks' in every entry; {what}[{i}] has none")
    if categories is None:
        categories = sorted({int(c) for e in gts + dts for c in e["classes"]})
    categories = [int(c) for c in categories]
    known = set(categories)
    images, gt_anns, dt_anns = [], [], []
    for i, (g, d) in enumerate(zip(gts, dts)):
        image_id = i + 1
        shape = g["masks"].shape[1:] if "masks" in g else None
        image = {"id": image_id}
        if shape is not None:
            image.update(height=int(shape[0]), width=int(shape[1]))
        images.append(image)
        for k, (box, cls) in enumerate(zip(g["boxes"], g["classes"])):
            ann = {"id": len(gt_anns) + 1, "image_id": image_id, "category_id": int(cls), "bbox": _xywh(box),
                   "iscrowd": int(g["iscrowd"][k]), "area": _xywh(box)[2] * _xywh(box)[3]}
            if iou_type == "segm":
                ann["segmentation"] = _rle(g["masks"][k])
                ann["area"] = float(g["masks"][k].sum())
            gt_anns.append(ann)
        for k, (box, cls, score) in enumerate(zip(d["boxes"], d["classes"], d["scores"])):
            if int(cls) not in known:
                continue
            ann = {"id": len(dt_anns) + 1, "image_id": image_id, "category_id": int(cls), "bbox": _xywh(box),
                   "score": float(score), "iscrowd": 0, "area": _xywh(box)[2] * _xywh(box)[3]}
            if iou_type == "segm":
                from pycocotools import mask as mask_utils

                ann["segmentation"] = _rle(d["masks"][k])
                ann["area"] = float(mask_utils.area(ann["segmentation"]))
            dt_anns.append(ann)
    cats = [{"id": c, "name": str(c)} for c in categories]
    # Both sets are built in memory like loadRes would (which fails on an empty result list).
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt, coco_dt = COCO(), COCO()
        coco_gt.dataset = {"images": images, "annotations": gt_anns, "categories": cats}
        coco_dt.dataset = {"images": images, "annotations": dt_anns, "categories": cats}
        coco_gt.createIndex()
        coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        evaluator.params.imgIds = [im["id"] for im in images]
        evaluator.params.catIds = categories
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {key: float(v) for key, v in zip(COCO_KEYS, evaluator.stats)}


def voc_ap(recall, precision, method="all"):
    """Average precision of one class from its ranked recall/precision curve (PASCAL VOC).

    ``recall`` and ``precision`` are the values after each detection in falling score order.
    The precision is first made monotone: ``p_interp(r) = max_{r' >= r} p(r')``. Then
    ``"11point"`` (VOC 2007) averages ``p_interp`` at recall 0, 0.1, ..., 1; ``"all"`` (VOC
    2010+) is the exact area under the monotone curve; ``"101point"`` averages it at recall 0,
    0.01, ..., 1 (COCO's interpolation, so :func:`voc_evaluate` with it is COCO's AP50 rule).
    Recall levels beyond the curve's last recall count as precision 0.
    """
    validation.one_of("method", method, VOC_METHODS)
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if recall.shape != precision.shape or recall.ndim != 1:
        raise DataError(f"recall and precision must be 1-D of one length, got {recall.shape} and {precision.shape}")
    if method == "all":
        r = np.concatenate([[0.0], recall, [1.0]])
        p = np.concatenate([[0.0], precision, [0.0]])
        p = np.maximum.accumulate(p[::-1])[::-1]
        steps = np.nonzero(r[1:] != r[:-1])[0]
        return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))
    levels = np.linspace(0.0, 1.0, 11 if method == "11point" else 101)
    values = np.zeros(len(levels))
    if len(recall):
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        # The first point whose recall reaches each level (recall is non-decreasing).
        at = np.searchsorted(recall, levels, side="left")
        reached = at < len(recall)
        values[reached] = envelope[at[reached]]
    return float(np.mean(values))


def _voc_iou(box, boxes):
    ymin = np.maximum(box[0], boxes[:, 0])
    xmin = np.maximum(box[1], boxes[:, 1])
    ymax = np.minimum(box[2], boxes[:, 2])
    xmax = np.minimum(box[3], boxes[:, 3])
    inter = np.maximum(ymax - ymin, 0) * np.maximum(xmax - xmin, 0)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def voc_evaluate(ground_truth, detections, iou_threshold=0.5, method="all"):
    """PASCAL VOC detection AP by hand: ``{"mAP": float, "per_class": {class: AP}}``.

    Per class, all images' detections are ranked by score. Each detection takes the ground-truth
    box of its image it overlaps most; it is a true positive if that IoU is ``>= iou_threshold``
    and the box is not taken yet, else a false positive (VOC's rule: a detection whose best box is
    already taken does not fall back to its second best, where COCOeval does). Detections whose
    best box is ``difficult`` count as neither, and difficult boxes are not in the recall's
    denominator. AP is :func:`voc_ap` of the resulting curve; ``mAP`` averages the classes that
    have ground truth. VOC's devkit uses ``IoU > 0.5``, COCO ``>= 0.5``; this follows COCO so the two
    agree on ties, and with ``method="101point"`` and non-overlapping ground truth it equals
    pycocotools' AP50.
    """
    iou_threshold = float(iou_threshold)
    if not 0.0 <= iou_threshold <= 1.0:
        raise ConfigError(f"iou_threshold must be in [0, 1], got {iou_threshold!r}")
    validation.one_of("method", method, VOC_METHODS)
    gts, dts = _inputs(ground_truth, detections)
    classes = sorted({int(c) for g in gts for c in g["classes"]})
    per_class = {}
    for cls in classes:
        gt_boxes = [g["boxes"][g["classes"] == cls] for g in gts]
        difficult = [g["difficult"][g["classes"] == cls] for g in gts]
        taken = [np.zeros(len(b), bool) for b in gt_boxes]
        npos = int(sum((~d).sum() for d in difficult))
        ranked = [(float(s), i, box) for i, d in enumerate(dts)
                  for s, box in zip(d["scores"][d["classes"] == cls], d["boxes"][d["classes"] == cls])]
        ranked.sort(key=lambda t: -t[0])  # stable: equal scores keep image order
        tp, fp = [], []
        for _, i, box in ranked:
            if len(gt_boxes[i]) == 0:
                tp.append(0), fp.append(1)
                continue
            overlaps = _voc_iou(box, gt_boxes[i])
            j = int(np.argmax(overlaps))
            if overlaps[j] < iou_threshold:
                tp.append(0), fp.append(1)
            elif difficult[i][j]:
                continue
            elif not taken[i][j]:
                taken[i][j] = True
                tp.append(1), fp.append(0)
            else:
                tp.append(0), fp.append(1)
        if npos == 0:
            continue
        tp, fp = np.cumsum(tp, dtype=np.float64), np.cumsum(fp, dtype=np.float64)
        recall = tp / npos
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        per_class[cls] = voc_ap(recall, precision, method)
    m_ap = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return {"mAP": m_ap, "per_class": per_class}
