"""The COCO detection loader: boxes, contiguous classes, masks against pycocotools' annToMask, bad input."""

import contextlib
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from cs231n_tf.data.coco import (load_coco_detection, parse_coco_detection_spec, read_coco_json,
                                 split_coco_spec)
from cs231n_tf.detection import coco_evaluate
from cs231n_tf.errors import ConfigError, DataError


def _coco_set(root):
    os.makedirs(root / "images", exist_ok=True)
    sizes = {1: (40, 60), 2: (30, 30), 5: (40, 60)}
    rng = np.random.default_rng(0)
    for image_id, (h, w) in sizes.items():
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        tf.io.write_file(str(root / "images" / f"{image_id:03d}.png"), tf.io.encode_png(pixels))
    square = np.zeros((30, 30), np.uint8)
    square[5:15, 10:25] = 1
    compressed = mask_utils.encode(np.asfortranarray(square))
    compressed["counts"] = compressed["counts"].decode()
    obj = {
        "images": [{"id": i, "file_name": f"{i:03d}.png", "height": h, "width": w} for i, (h, w) in sizes.items()],
        "categories": [{"id": 7, "name": "kite"}, {"id": 3, "name": "car"}, {"id": 1, "name": "person"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3, "bbox": [10, 5, 20, 10], "iscrowd": 0,
             "segmentation": [[10, 5, 30, 5, 30, 15, 10, 15]]},
            {"id": 11, "image_id": 1, "category_id": 7, "bbox": [0, 0, 60.5, 40], "iscrowd": 0,
             "segmentation": [[0, 0, 59, 0, 59, 39, 0, 39], [5, 5, 6, 5, 6, 6]]},
            {"id": 12, "image_id": 2, "category_id": 1, "bbox": [10, 5, 15, 10], "iscrowd": 1,
             "segmentation": compressed},
            {"id": 13, "image_id": 2, "category_id": 3, "bbox": [0, 0, 4, 4], "iscrowd": 0,
             # uncompressed RLE (column-major runs): a 4x4 square in the top-left corner
             "segmentation": {"size": [30, 30], "counts": [0, 4, 26, 4, 26, 4, 26, 4, 806]}},
        ],
    }
    (root / "ann.json").write_text(json.dumps(obj))
    return str(root / "ann.json"), str(root / "images")


def test_loader_boxes_classes_and_empty_images(tmp_path):
    ann, images = _coco_set(tmp_path)
    data = load_coco_detection(ann, images)
    assert len(data) == 3 and data.image_ids.tolist() == [1, 2, 5]
    assert data.class_names == ("person", "car", "kite") and data.category_ids == (1, 3, 7)
    assert data.images[0].shape == (40, 60, 3) and data.images[1].shape == (30, 30, 3)
    # [x, y, w, h] -> [ymin, xmin, ymax, xmax]; 60.5 overshoots the 60-pixel width by rounding: clipped
    np.testing.assert_allclose(data.boxes[0], [[5, 10, 15, 30], [0, 0, 40, 60]])
    assert data.classes[0].tolist() == [1, 2] and data.classes[1].tolist() == [0, 1]
    assert data.iscrowd[1].tolist() == [True, False]
    assert data.boxes[2].shape == (0, 4) and data.classes[2].shape == (0,)  # no annotations: empty, kept
    assert data.masks is None
    # Its ground truth scores perfect detections as 1 and is what pycocotools sees in the file.
    dets = [{"boxes": b, "classes": c, "scores": np.ones(len(c))} for b, c in zip(data.boxes, data.classes)]
    assert coco_evaluate(data.ground_truth(), dets)["AP"] == pytest.approx(1.0)
    skipped = load_coco_detection(ann, images, skip_crowd=True)
    assert skipped.classes[1].tolist() == [1]


def test_masks_equal_ann_to_mask_and_resize_moves_boxes(tmp_path):
    ann, images = _coco_set(tmp_path)
    data = load_coco_detection(ann, images, masks=True)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(ann)
    for i, image_id in enumerate(data.image_ids):
        refs = [coco.annToMask(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=[int(image_id)], iscrowd=None))]
        assert data.masks[i].shape == (len(refs),) + data.images[i].shape[:2]
        for ours, ref in zip(data.masks[i], refs):
            np.testing.assert_array_equal(ours, ref.astype(bool))
    assert data.masks[1][0].sum() == 150 and data.masks[1][1].sum() == 16
    resized = load_coco_detection(ann, images, image_size=(20, 30), masks=True)
    assert all(im.shape == (20, 30, 3) for im in resized.images)
    np.testing.assert_allclose(resized.boxes[0], data.boxes[0] / 2)
    np.testing.assert_allclose(resized.boxes[1], data.boxes[1] * [20 / 30, 1, 20 / 30, 1])
    assert resized.masks[0].shape == (2, 20, 30) and resized.masks[2].shape == (0, 20, 30)
    np.testing.assert_array_equal(resized.masks[0][0], data.masks[0][0][1::2, 1::2])  # nearest, half-pixel centres


def _edit(ann, edit):
    obj = json.loads(open(ann).read())
    edit(obj)
    with open(ann, "w") as f:
        json.dump(obj, f)


@pytest.mark.parametrize("case, pattern", [
    ("missing_json", r"COCO detection file '.*nope.json' does not exist"),
    ("malformed_json", r"COCO detection file '.*ann.json' is not valid JSON: Expecting .* at line 1"),
    ("no_categories", r"needs a non-empty 'categories' list"),
    ("unknown_category", r"annotations\[1\] has category_id 99, which is not in 'categories' \(ids \[1, 3, 7\]\)"),
    ("zero_width", r"annotations\[0\] has bbox \[10, 5, 0, 10\] with w or h <= 0"),
    ("outside", r"annotations\[0\] has bbox \[50, 5, 20, 10\] outside its 60x40 \(w x h\) image '001.png'"),
    ("bad_bbox", r"annotations\[2\] has bbox \[1, 2, 3\]; it must be \[x, y, w, h\]"),
    ("unknown_image", r"annotations\[3\] refers to image_id 42, which is not in 'images'"),
    ("missing_image_file", r"image file '.*005.png' of COCO image id 5 does not exist"),
    ("size_mismatch", r"image id 2 is listed as 31x30 but '002.png' is 30x30"),
    ("bad_segmentation", r"annotations\[0\] has a segmentation that is neither polygons nor RLE"),
])
def test_bad_input_is_one_line(tmp_path, case, pattern):
    ann, images = _coco_set(tmp_path)
    if case == "missing_json":
        ann = str(tmp_path / "nope.json")
    elif case == "malformed_json":
        with open(ann, "w") as f:
            f.write('{"images": [')
    elif case == "no_categories":
        _edit(ann, lambda o: o.pop("categories"))
    elif case == "unknown_category":
        _edit(ann, lambda o: o["annotations"][1].update(category_id=99))
    elif case == "zero_width":
        _edit(ann, lambda o: o["annotations"][0].update(bbox=[10, 5, 0, 10]))
    elif case == "outside":
        _edit(ann, lambda o: o["annotations"][0].update(bbox=[50, 5, 20, 10]))
    elif case == "bad_bbox":
        _edit(ann, lambda o: o["annotations"][2].update(bbox=[1, 2, 3]))
    elif case == "unknown_image":
        _edit(ann, lambda o: o["annotations"][3].update(image_id=42))
    elif case == "missing_image_file":
        os.remove(os.path.join(images, "005.png"))
    elif case == "size_mismatch":
        _edit(ann, lambda o: o["images"][1].update(height=31))
    elif case == "bad_segmentation":
        _edit(ann, lambda o: o["annotations"][0].update(segmentation="a string"))
    with pytest.raises(DataError, match=pattern) as info:
        load_coco_detection(ann, images, masks=True)
    assert "\n" not in str(info.value)


def test_spec_rule_is_shared():
    assert parse_coco_detection_spec("coco:C:/coco/instances.json:C:/coco/val2017") == \
        ("C:/coco/instances.json", "C:/coco/val2017")
    assert parse_coco_detection_spec("coco:ann.JSON:dir:with:colons") == ("ann.JSON", "dir:with:colons")
    assert parse_coco_detection_spec("coco:ann.txt:dir") == ("ann.txt", "dir")
    for bad in ("coco:only.json", "coco::dir", "coco:ann.json:", "voc:ann.json:dir"):
        with pytest.raises(ConfigError, match=r"must be coco:ANN.json:IMAGE_DIR \(annotation file, then image"):
            parse_coco_detection_spec(bad)
    # The same rule under the captions prefix, as sequence.captions' spec parser has it.
    assert split_coco_spec("coco_captions:a.json:b:c", "coco_captions:", "coco_captions:ANN.json:IMAGE_DIR") == \
        ("a.json", "b:c")


def test_read_coco_json_names_the_file_kind(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("[1]")
    with pytest.raises(DataError, match=r"COCO captions file '.*c.json' must hold a JSON object"):
        read_coco_json(str(path), "COCO captions file")
    path.write_text('{"images": []}')
    with pytest.raises(DataError, match=r"lacks key\(s\) 'annotations'"):
        read_coco_json(str(path))
