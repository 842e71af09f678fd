"""COCO mAP against pycocotools' standard file route and hand computation; VOC AP by hand and vs COCO."""

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cs231n_tf.detection import coco_evaluate, voc_ap, voc_evaluate
from cs231n_tf.detection.metrics import COCO_KEYS
from cs231n_tf.errors import DataError


def _gt(boxes, classes, **extra):
    return {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4), "classes": np.asarray(classes, np.int64), **extra}


def _dt(boxes, classes, scores, **extra):
    return {**_gt(boxes, classes), "scores": np.asarray(scores, np.float32), **extra}


def _random_set(rng, images=6, classes=3):
    """Ground truth on a grid of disjoint cells (so VOC's and COCO's matching rules agree), jittered hits, misses."""
    gts, dts = [], []
    for i in range(images):
        cells = rng.permutation(16)[: int(rng.integers(0, 6))]
        boxes, labels = [], []
        for c in cells:
            y, x = divmod(int(c), 4)
            h, w = rng.uniform(8, 60, 2)
            boxes.append([y * 64 + 2, x * 64 + 2, y * 64 + 2 + h, x * 64 + 2 + w])
            labels.append(int(rng.integers(classes)))
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        gts.append(_gt(boxes, labels))
        det_boxes, det_labels = [], []
        for b, l in zip(boxes, labels):
            if rng.random() < 0.8:
                size = b[2:] - b[:2]
                det_boxes.append(b + np.concatenate([rng.normal(0, 0.1, 2) * size] * 2))
                det_labels.append(l if rng.random() < 0.85 else int(rng.integers(classes)))
        for _ in range(int(rng.integers(0, 4))):
            y, x = rng.uniform(0, 200, 2)
            det_boxes.append([y, x, y + rng.uniform(8, 50), x + rng.uniform(8, 50)])
            det_labels.append(int(rng.integers(classes)))
        dts.append(_dt(det_boxes, det_labels, rng.random(len(det_boxes))))
    return gts, dts


def _coco_via_files(tmp_path, gts, dts):
    """The textbook pycocotools route: a ground-truth JSON file, loadRes of a results JSON file."""
    xywh = lambda b: [float(b[1]), float(b[0]), float(b[3] - b[1]), float(b[2] - b[0])]
    images = [{"id": i + 1, "width": 300, "height": 300, "file_name": f"{i}.png"} for i in range(len(gts))]
    anns, results = [], []
    for i, (g, d) in enumerate(zip(gts, dts)):
        for b, c in zip(g["boxes"], g["classes"]):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c), "bbox": xywh(b),
                         "area": xywh(b)[2] * xywh(b)[3], "iscrowd": 0})
        for b, c, s in zip(d["boxes"], d["classes"], d["scores"]):
            results.append({"image_id": i + 1, "category_id": int(c), "bbox": xywh(b), "score": float(s)})
    cats = sorted({int(c) for e in gts + dts for c in e["classes"]})
    (tmp_path / "gt.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                  "categories": [{"id": c, "name": str(c)} for c in cats]}))
    (tmp_path / "res.json").write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(tmp_path / "gt.json"))
        ev = COCOeval(coco_gt, coco_gt.loadRes(str(tmp_path / "res.json")), "bbox")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return dict(zip(COCO_KEYS, ev.stats))


def test_coco_evaluate_equals_pycocotools_file_route(tmp_path):
    rng = np.random.default_rng(0)
    for trial in range(3):
        gts, dts = _random_set(rng)
        ours = coco_evaluate(gts, dts)
        ref = _coco_via_files(tmp_path, gts, dts)
        assert set(ours) == set(COCO_KEYS)
        for key in COCO_KEYS:
            assert ours[key] == pytest.approx(ref[key], abs=1e-12), key
        assert 0 < ours["AP50"] < 1


def test_perfect_detections_score_one():
    gts = [_gt([[0, 0, 20, 20], [50, 50, 150, 150], [160, 160, 250, 250]], [0, 1, 1]), _gt([[10, 10, 50, 60]], [1])]
    dts = [_dt(g["boxes"], g["classes"], [0.9] * len(g["classes"])) for g in gts]
    result = coco_evaluate(gts, dts)
    assert all(result[k] == pytest.approx(1.0) for k in COCO_KEYS if k not in ("AR1",))
    # maxDets counts per image and class: image 0's two class-1 objects get one detection -> (1 + 2/3) / 2
    assert result["AR1"] == pytest.approx((1 + 2 / 3) / 2)
    for method in ("all", "11point", "101point"):
        assert voc_evaluate(gts, dts, method=method) == {"mAP": 1.0, "per_class": {0: 1.0, 1: 1.0}}


def test_hand_computed_iou_thresholds_and_empty_size_ranges():
    gt = [_gt([[0, 0, 100, 100]], [0])]
    # IoU 0.62: a hit at IoU 0.50, 0.55, 0.60; a miss from 0.65 up -> AP = 3/10.
    height = 62.0
    result = coco_evaluate(gt, [_dt([[0, 0, height, 100]], [0], [0.8])])
    assert result["AP50"] == pytest.approx(1.0) and result["AP75"] == 0.0
    assert result["AP"] == pytest.approx(0.3)
    assert result["APl"] == pytest.approx(0.3)
    assert result["APs"] == -1 and result["APm"] == -1  # no small or medium objects: pycocotools' -1, kept


def test_empty_images_count_as_false_positives_only():
    hit = [_gt([[0, 0, 40, 40]], [0])]
    dts_hit = [_dt([[0, 0, 40, 40]], [0], [0.5])]
    assert coco_evaluate(hit, dts_hit)["AP"] == pytest.approx(1.0)
    # An image without objects whose detection outranks the hit: precision 1/2 at recall 1.
    gts = hit + [_gt([], [])]
    dts = dts_hit + [_dt([[5, 5, 30, 30]], [0], [0.9])]
    assert coco_evaluate(gts, dts)["AP"] == pytest.approx(0.5)
    assert voc_evaluate(gts, dts)["mAP"] == pytest.approx(0.5)
    # An image with neither objects nor detections changes nothing.
    assert coco_evaluate(hit + [_gt([], [])], dts_hit + [_dt([], [], [])])["AP"] == pytest.approx(1.0)
    # No detections at all: AP 0 (not an error).
    assert coco_evaluate(hit, [_dt([], [], [])])["AP"] == 0.0


def test_classes_without_ground_truth_do_not_count():
    gts = [_gt([[0, 0, 40, 40]], [0])]
    dts = [_dt([[0, 0, 40, 40], [50, 50, 90, 90]], [0, 7], [0.5, 0.9])]
    assert coco_evaluate(gts, dts)["AP"] == pytest.approx(1.0)
    assert coco_evaluate(gts, dts, categories=[0])["AP"] == pytest.approx(1.0)
    assert voc_evaluate(gts, dts)["per_class"] == {0: 1.0}


def test_crowd_regions_are_neither_hits_nor_misses():
    gts = [_gt([[0, 0, 40, 40], [100, 100, 200, 200]], [0, 0], iscrowd=np.array([False, True]))]
    dts = [_dt([[0, 0, 40, 40], [110, 110, 150, 150]], [0, 0], [0.5, 0.9])]
    assert coco_evaluate(gts, dts)["AP"] == pytest.approx(1.0)


def test_segm_masks_by_hand():
    gt_mask = np.zeros((1, 40, 40), bool)
    gt_mask[0, 0:20, 0:20] = True
    half = np.zeros((1, 40, 40), bool)
    half[0, 0:20, 0:10] = True  # mask IoU 0.5 exactly: a hit only at the 0.50 threshold
    gts = [_gt([[0, 0, 20, 20]], [0], masks=gt_mask)]
    perfect = coco_evaluate(gts, [_dt([[0, 0, 20, 20]], [0], [0.9], masks=gt_mask)], iou_type="segm")
    assert perfect["AP"] == pytest.approx(1.0)
    halves = coco_evaluate(gts, [_dt([[0, 0, 20, 20]], [0], [0.9], masks=half)], iou_type="segm")
    assert halves["AP50"] == pytest.approx(1.0) and halves["AP75"] == 0.0 and halves["AP"] == pytest.approx(0.1)
    with pytest.raises(DataError, match=r"iou_type='segm' needs 'masks' in every entry; detections\[0\] has none"):
        coco_evaluate(gts, [_dt([[0, 0, 20, 20]], [0], [0.9])], iou_type="segm")


def test_voc_ap_by_hand():
    recall, precision = [0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]
    assert voc_ap(recall, precision, "all") == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert voc_ap(recall, precision, "11point") == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert voc_ap(recall, precision, "101point") == pytest.approx((51 + 50 * 2 / 3) / 101)
    # Recall never reaching 1: levels beyond count as precision 0.
    assert voc_ap([0.25], [1.0], "all") == pytest.approx(0.25)
    assert voc_ap([0.25], [1.0], "11point") == pytest.approx(3 / 11)
    assert voc_ap([], [], "all") == 0.0


def test_voc_evaluate_hand_case_and_difficult():
    gts = [_gt([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0], difficult=np.array([False, True]))]
    dts = [_dt([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10], [50, 50, 60, 60]], [0] * 4, [0.9, 0.8, 0.7, 0.6])]
    # hit, difficult (skipped), duplicate (FP), miss (FP): recall [1, 1, 1], precision [1, 1/2, 1/3] -> AP 1
    assert voc_evaluate(gts, dts)["mAP"] == pytest.approx(1.0)
    gts[0]["difficult"] = np.array([False, False])
    # hit, hit, FP, FP over 2 objects -> AP 1; with the duplicate ranked first: precision 1, 1/2, 2/3
    assert voc_evaluate(gts, dts)["mAP"] == pytest.approx(1.0)
    dts[0]["scores"] = np.array([0.9, 0.7, 0.8, 0.6], np.float32)
    assert voc_evaluate(gts, dts)["mAP"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_voc_101point_equals_coco_ap50_and_all_point_differs_by_interpolation_only():
    rng = np.random.default_rng(5)
    gaps = []
    for _ in range(4):
        gts, dts = _random_set(rng)
        coco = coco_evaluate(gts, dts)
        assert voc_evaluate(gts, dts, method="101point")["mAP"] == pytest.approx(coco["AP50"], abs=1e-12)
        gaps.append(abs(voc_evaluate(gts, dts, method="all")["mAP"] - coco["AP50"]))
    # The two interpolations differ by at most about one recall step of 1/100 (plus the extra r = 0 point).
    assert max(gaps) < 0.02


def test_bad_inputs():
    with pytest.raises(DataError, match="ground_truth has 1 images but detections has 2"):
        coco_evaluate([_gt([], [])], [_dt([], [], [])] * 2)
    with pytest.raises(DataError, match=r"detections\[0\] lacks 'scores'"):
        coco_evaluate([_gt([], [])], [_gt([], [])])
    with pytest.raises(DataError, match=r"ground_truth\[0\]\['classes'\] has 1 entries for 2 boxes"):
        voc_evaluate([_gt([[0, 0, 1, 1], [0, 0, 2, 2]], [0])], [_dt([], [], [])])
