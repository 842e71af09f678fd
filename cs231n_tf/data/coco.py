"""The COCO annotation format: the JSON reading every COCO reader shares, and the detection loader.

Shared by the COCO readers (detection here, captions in :mod:`cs231n_tf.sequence.captions`):

- :func:`read_coco_json`: the file as a dict with ``images`` and ``annotations`` lists, or a
  one-line :class:`DataError` (missing file, malformed JSON, not UTF-8, wrong structure);
- :func:`coco_image_entries`: the checked ``images`` list (integer unique ``id``, non-empty
  ``file_name``);
- :func:`split_coco_spec`: the path rule of ``PREFIX:ANN.json:IMAGE_DIR`` spec strings. Paths may
  contain ``:``; the annotation path runs up to the first ``.json:`` (case-insensitive) after the
  prefix, and the image folder is everything after it. Without a ``.json:`` the annotation path
  ends at the first ``:``. So ``coco:C:/coco/instances.json:C:/coco/val2017`` works;
- :func:`image_size_arg`, :func:`read_coco_image`, :func:`resize_image`.

Detection (:func:`load_coco_detection`, spec ``coco:ANN.json:IMAGE_DIR`` via
:func:`parse_coco_detection_spec`): ``images``, ``annotations`` with ``bbox`` ``[x, y, w, h]`` in
pixels, ``category_id``, optional ``segmentation`` (polygons or RLE) and ``iscrowd``, and
``categories``. Boxes come out as ``[ymin, xmin, ymax, xmax]`` pixels; classes are contiguous
``0..K-1`` in increasing COCO category id.
"""

import dataclasses
import json
import math
import numbers
import os
import re

import numpy as np

from cs231n_tf import validation
from cs231n_tf.data.sources import read_image
from cs231n_tf.errors import ConfigError, DataError

DETECTION_PREFIX = "coco:"
DETECTION_SPEC = "coco:ANN.json:IMAGE_DIR"
# COCO's float boxes may overshoot the image by rounding; up to this many pixels is clipped, not refused.
BOX_TOLERANCE = 1.0


def read_coco_json(path, what="COCO annotation file"):
    """The COCO JSON file ``path`` as a dict whose ``images`` and ``annotations`` are lists.

    ``what`` names the file in messages (``"COCO captions file"``, ``"COCO detection file"``).
    """
    if not os.path.exists(path):
        raise DataError(f"{what} {path!r} does not exist")
    if not os.path.isfile(path):
        raise DataError(f"{what} {path!r} is not a file")
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(f"{what} {path!r} is not valid JSON: {exc.msg} at line {exc.lineno} "
                        f"column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {path!r} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise DataError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{what} {path!r} must hold a JSON object with 'images' and 'annotations', "
                        f"got a {type(obj).__name__}")
    missing = [k for k in ("images", "annotations") if k not in obj]
    if missing:
        raise DataError(f"{what} {path!r} lacks key(s) {', '.join(map(repr, missing))}; "
                        "it needs 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if not isinstance(obj[key], list):
            raise DataError(f"{what} {path!r}: {key!r} must be a list, got {type(obj[key]).__name__}")
    return obj


def is_int(value):
    """An int that is not a bool (JSON ids)."""
    return isinstance(value, int) and not isinstance(value, bool)


def coco_image_entries(path, obj, what="COCO annotation file"):
    """The ``images`` entries of ``obj`` in file order, each checked: ``[{"id", "file_name", ...}, ...]``."""
    entries, ids = [], set()
    for i, entry in enumerate(obj["images"]):
        if not isinstance(entry, dict):
            raise DataError(f"{path}: images[{i}] must be an object, got {entry!r:.80}")
        for key in ("id", "file_name"):
            if key not in entry:
                raise DataError(f"{path}: images[{i}] lacks {key!r}; every image needs 'id' and 'file_name'")
        if not is_int(entry["id"]):
            raise DataError(f"{path}: images[{i}] has id {entry['id']!r}; image ids must be integers")
        if not isinstance(entry["file_name"], str) or not entry["file_name"]:
            raise DataError(f"{path}: images[{i}] has file_name {entry['file_name']!r}; it must be a non-empty string")
        if entry["id"] in ids:
            raise DataError(f"{path}: image id {entry['id']} appears twice in 'images' (images[{i}])")
        ids.add(entry["id"])
        entries.append(entry)
    if not entries:
        raise DataError(f"{what} {path!r} has no images")
    return entries


def split_coco_spec(spec, prefix, form):
    """``PREFIX:ANN.json:IMAGE_DIR`` -> ``(ANN.json, IMAGE_DIR)`` by the module's path rule.

    ``form`` is the accepted form named in the error, e.g. ``"coco:ANN.json:IMAGE_DIR"``.
    """
    rest = spec[len(prefix):]
    found = re.search(r"\.json:", rest, flags=re.IGNORECASE)
    cut = found.end() - 1 if found else rest.find(":")
    if not spec.startswith(prefix) or cut <= 0 or cut == len(rest) - 1:
        raise ConfigError(f"data set {spec!r} must be {form} (annotation file, then image folder)")
    return rest[:cut], rest[cut + 1:]


def parse_coco_detection_spec(spec):
    """``coco:ANN.json:IMAGE_DIR`` -> ``(ANN.json, IMAGE_DIR)`` (the rule of :func:`split_coco_spec`)."""
    return split_coco_spec(spec, DETECTION_PREFIX, DETECTION_SPEC)


def image_size_arg(image_size):
    """``None``, or ``image_size`` (an int ``S`` or ``(H, W)``) as a tuple of two positive ints."""
    if image_size is None:
        return None
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ConfigError(f"image_size must be (H, W) or an int, got {image_size!r}")
    return tuple(validation.positive_int("image_size", v) for v in image_size)


def read_coco_image(image_dir, file_name, image_id):
    """The RGB uint8 ``(H, W, 3)`` image ``image_dir/file_name`` of COCO image ``image_id``."""
    fpath = os.path.join(image_dir, file_name)
    if not os.path.isfile(fpath):
        raise DataError(f"image file {fpath!r} of COCO image id {image_id} does not exist")
    return read_image(fpath, channels=3)


def resize_image(image, size):
    """uint8 ``(H, W, C)`` resized bilinearly to ``size = (H', W')``, rounded back to uint8."""
    import tensorflow as tf

    return tf.cast(tf.round(tf.clip_by_value(tf.image.resize(image, size), 0, 255)), tf.uint8).numpy()


@dataclasses.dataclass
class DetectionSet:
    """A detection data set held in memory, one list entry per image.

    ``images[i]`` uint8 ``(H_i, W_i, 3)`` (all one size when loaded with ``image_size``);
    ``boxes[i]`` float32 ``(M_i, 4)`` ``[ymin, xmin, ymax, xmax]`` pixels of that image;
    ``classes[i]`` int32 ``(M_i,)`` in ``0..K-1`` (``class_names[k]`` / ``category_ids[k]``);
    ``iscrowd[i]`` bool ``(M_i,)``; ``masks[i]`` bool ``(M_i, H_i, W_i)`` or ``masks`` None.
    Images without objects have ``M_i = 0``.
    """

    images: list
    boxes: list
    classes: list
    iscrowd: list
    masks: list
    class_names: tuple
    category_ids: tuple
    image_ids: np.ndarray
    file_names: list
    source: str = ""

    def __len__(self):
        return len(self.images)

    @property
    def num_classes(self):
        return len(self.class_names)

    def ground_truth(self):
        """The per-image ``{"boxes", "classes", "iscrowd"[, "masks"]}`` dicts :func:`coco_evaluate` takes."""
        out = []
        for i in range(len(self)):
            entry = {"boxes": self.boxes[i], "classes": self.classes[i], "iscrowd": self.iscrowd[i]}
            if self.masks is not None:
                entry["masks"] = self.masks[i]
            out.append(entry)
        return out


def _categories(path, obj):
    cats = obj.get("categories")
    if not isinstance(cats, list) or not cats:
        raise DataError(f"COCO detection file {path!r} needs a non-empty 'categories' list of {{'id', 'name'}}")
    ids = {}
    for i, cat in enumerate(cats):
        if not isinstance(cat, dict) or not is_int(cat.get("id")):
            raise DataError(f"{path}: categories[{i}] must be an object with an integer 'id', got {cat!r:.80}")
        if cat["id"] in ids:
            raise DataError(f"{path}: category id {cat['id']} appears twice in 'categories'")
        ids[cat["id"]] = str(cat.get("name", cat["id"]))
    order = sorted(ids)
    return order, tuple(ids[c] for c in order)


def _mask(path, i, ann, height, width):
    from pycocotools import mask as mask_utils

    seg = ann.get("segmentation")
    if seg is None:
        raise DataError(f"{path}: annotations[{i}] has no 'segmentation'; masks need one for every annotation")
    try:
        if isinstance(seg, list):  # polygons: [[x1, y1, x2, y2, ...], ...]
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(seg, height, width)
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), str):  # compressed RLE
            rle = {"size": seg["size"], "counts": seg["counts"].encode()}
        else:
            raise TypeError("not polygons or RLE")
        mask = mask_utils.decode(rle).astype(bool)
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise DataError(f"{path}: annotations[{i}] has a segmentation that is neither polygons nor RLE: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if mask.shape != (height, width):
        raise DataError(f"{path}: annotations[{i}]'s segmentation is {mask.shape[0]}x{mask.shape[1]}, but its "
                        f"image is {height}x{width}")
    return mask


def load_coco_detection(annotations_json, image_dir, image_size=None, masks=False, skip_crowd=False):
    """A COCO detection set (e.g. ``instances_val2017.json`` + ``val2017/``) as a :class:`DetectionSet`.

    Images are read as RGB in the order of ``images`` (each image's objects in the order of
    ``annotations``); ``image_size=(H, W)`` (or an int) resizes every image bilinearly and scales
    its boxes (and masks, nearest neighbour) with it. A ``bbox`` must be four finite numbers
    with ``w, h > 0`` inside the image (up to :data:`BOX_TOLERANCE` pixels of rounding, which is
    clipped); its ``category_id`` must be in ``categories``. ``masks=True`` decodes every
    annotation's ``segmentation`` with pycocotools (polygons or RLE, as ``annToMask`` does).
    ``skip_crowd`` drops ``iscrowd`` annotations. Images without annotations are kept, empty.
    An ``images`` entry's ``height``/``width``, when present, must match the image file.
    """
    image_size = image_size_arg(image_size)
    what = "COCO detection file"
    obj = read_coco_json(annotations_json, what)
    entries = coco_image_entries(annotations_json, obj, what)
    category_order, class_names = _categories(annotations_json, obj)
    contiguous = {c: k for k, c in enumerate(category_order)}
    per_image = {entry["id"]: [] for entry in entries}
    for i, ann in enumerate(obj["annotations"]):
        if not isinstance(ann, dict):
            raise DataError(f"{annotations_json}: annotations[{i}] must be an object, got {ann!r:.80}")
        for key in ("image_id", "bbox", "category_id"):
            if key not in ann:
                raise DataError(f"{annotations_json}: annotations[{i}] lacks {key!r}; every annotation needs "
                                "'image_id', 'bbox' and 'category_id'")
        if not is_int(ann["image_id"]) or ann["image_id"] not in per_image:
            raise DataError(f"{annotations_json}: annotations[{i}] refers to image_id {ann['image_id']!r}, which is "
                            "not in 'images'")
        if ann["category_id"] not in contiguous:
            shown = f"{category_order[:10]}{' ...' if len(category_order) > 10 else ''}"
            raise DataError(f"{annotations_json}: annotations[{i}] has category_id {ann['category_id']!r}, which is "
                            f"not in 'categories' (ids {shown})")
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, numbers.Real) and not isinstance(
                v, bool) and math.isfinite(v) for v in bbox)):
            raise DataError(f"{annotations_json}: annotations[{i}] has bbox {bbox!r:.80}; it must be [x, y, w, h], "
                            "four finite numbers")
        if bbox[2] <= 0 or bbox[3] <= 0:
            raise DataError(f"{annotations_json}: annotations[{i}] has bbox {bbox} with w or h <= 0; bbox is "
                            "[x, y, w, h] with positive size")
        if skip_crowd and ann.get("iscrowd", 0):
            continue
        per_image[ann["image_id"]].append((i, ann))
    if not os.path.isdir(image_dir):
        raise DataError(f"COCO image folder {image_dir!r} does not exist")
    images, boxes, classes, crowds, all_masks = [], [], [], [], []
    for entry in entries:
        image = read_coco_image(image_dir, entry["file_name"], entry["id"])
        height, width = image.shape[:2]
        if (entry.get("height", height), entry.get("width", width)) != (height, width):
            raise DataError(f"{annotations_json}: image id {entry['id']} is listed as {entry.get('height')}x"
                            f"{entry.get('width')} but {entry['file_name']!r} is {height}x{width}")
        anns = per_image[entry["id"]]
        xywh = np.asarray([a["bbox"] for _, a in anns], np.float64).reshape(-1, 4)
        yx = np.stack([xywh[:, 1], xywh[:, 0], xywh[:, 1] + xywh[:, 3], xywh[:, 0] + xywh[:, 2]], axis=1)
        limit = np.array([height, width, height, width]) + BOX_TOLERANCE
        outside = (yx < -BOX_TOLERANCE).any(axis=1) | (yx > limit).any(axis=1)
        if outside.any():
            i, ann = anns[int(np.argmax(outside))]
            raise DataError(f"{annotations_json}: annotations[{i}] has bbox {ann['bbox']} outside its "
                            f"{width}x{height} (w x h) image {entry['file_name']!r}")
        yx = np.clip(yx, 0, [height, width, height, width])
        mask = np.stack([_mask(annotations_json, i, a, height, width) for i, a in anns]) if masks and anns \
            else np.zeros((0, height, width), bool)
        if image_size and (height, width) != image_size:
            scale = np.array([image_size[0] / height, image_size[1] / width] * 2)
            yx = yx * scale
            image = resize_image(image, image_size)
            if masks:
                import tensorflow as tf

                mask = tf.image.resize(mask[..., None].astype(np.uint8), image_size, method="nearest").numpy()
                mask = mask[..., 0].astype(bool).reshape((-1,) + image_size)
        images.append(image)
        boxes.append(yx.astype(np.float32))
        classes.append(np.asarray([contiguous[a["category_id"]] for _, a in anns], np.int32))
        crowds.append(np.asarray([bool(a.get("iscrowd", 0)) for _, a in anns], bool))
        all_masks.append(mask)
    return DetectionSet(images, boxes, classes, crowds, all_masks if masks else None, class_names,
                        tuple(category_order), np.asarray([e["id"] for e in entries], np.int64),
                        [e["file_name"] for e in entries], f"{DETECTION_PREFIX}{annotations_json}:{image_dir}")
