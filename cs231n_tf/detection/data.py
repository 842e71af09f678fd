"""Detection data sets: the embedded shape scenes and ``coco:ANN.json:IMAGE_DIR``, as :class:`DetectionSet`.

``shapes``: :func:`cs231n_tf.data.shapes.shape_scenes` (occluding circles, squares and triangles
with tight boxes of their visible parts; classes ``0..2`` = ``SHAPES``), train/validation/test
from seeds ``3 * data_seed + 0/1/2``. ``coco:ANN.json:IMAGE_DIR``: :func:`cs231n_tf.data.coco.load_coco_detection`
resized to the run's image size, split at random by fractions. :func:`padded` turns a set into the
fixed-size arrays a ``tf.data`` pipeline needs (boxes padded per image, with a validity mask).
"""

import numpy as np

from cs231n_tf import validation
from cs231n_tf.data.coco import DETECTION_PREFIX, DETECTION_SPEC, DetectionSet, load_coco_detection, \
    parse_coco_detection_spec
from cs231n_tf.errors import ConfigError, DataError

# A padding row: a valid box shape (so no op sees an empty box) that `valid` marks as absent.
PAD_BOX = (0.0, 0.0, 1.0, 1.0)


def parse_dataset(spec):
    """``("shapes", None)`` or ``("coco", (ANN.json, IMAGE_DIR))`` for a ``dataset`` spec."""
    if spec == "shapes":
        return "shapes", None
    if isinstance(spec, str) and spec.startswith(DETECTION_PREFIX):
        return "coco", parse_coco_detection_spec(spec)
    raise ConfigError(f"dataset must be 'shapes' (embedded) or '{DETECTION_SPEC}', got {spec!r}")


def shapes_detection(num_images, image_size=64, seed=0):
    """``num_images`` shape scenes as a :class:`~cs231n_tf.data.coco.DetectionSet` (with instance masks)."""
    from cs231n_tf.data.shapes import SHAPES, shape_scenes

    scenes = shape_scenes(num_images, image_size=image_size, seed=seed)
    inst = scenes.instances
    return DetectionSet(
        images=list(scenes.images), boxes=[i.boxes.astype(np.float32) for i in inst],
        classes=[i.classes.astype(np.int32) - 1 for i in inst], iscrowd=[np.zeros(len(i), bool) for i in inst],
        masks=[i.masks for i in inst], class_names=SHAPES, category_ids=tuple(range(1, len(SHAPES) + 1)),
        image_ids=np.arange(1, num_images + 1, dtype=np.int64), file_names=[""] * num_images,
        source=f"shapes(seed={seed})")


def subset(data, index):
    """The images ``index`` of ``data`` as a new :class:`DetectionSet`."""
    def pick(items):
        return None if items is None else [items[i] for i in index]

    return DetectionSet(pick(data.images), pick(data.boxes), pick(data.classes), pick(data.iscrowd), pick(data.masks),
                        data.class_names, data.category_ids, np.asarray(data.image_ids)[list(index)],
                        pick(data.file_names), data.source)


def load_dataset(spec, image_size, num_images=128, seed=0):
    """All of data set ``spec`` at ``image_size`` (``shapes``: ``num_images`` scenes of ``seed``)."""
    kind, paths = parse_dataset(spec)
    if kind == "shapes":
        return shapes_detection(num_images, image_size, seed)
    data = load_coco_detection(*paths, image_size=image_size)
    data.masks = None  # the detector has no mask head; masks would only hold memory
    return data


def split(data, validation_fraction, test_fraction, seed):
    """``(train, validation, test)``: a seeded random split of ``data`` by the two fractions."""
    validation.positive_number("validation_fraction", validation_fraction, allow_zero=True)
    validation.positive_number("test_fraction", test_fraction, allow_zero=True)
    n = len(data)
    n_val, n_test = int(round(n * validation_fraction)), int(round(n * test_fraction))
    if n - n_val - n_test < 1 or validation_fraction + test_fraction >= 1:
        raise DataError(f"{data.source} has {n} image(s): too few for validation_fraction {validation_fraction} "
                        f"and test_fraction {test_fraction} plus at least one training image")
    order = np.random.default_rng(seed).permutation(n)
    return subset(data, order[n_val + n_test:]), subset(data, order[:n_val]), subset(data, order[n_val:n_val + n_test])


def padded(data, max_boxes=None):
    """``(images (N, H, W, 3) uint8, boxes (N, M, 4) float32, classes (N, M) int32, valid (N, M) bool)``.

    ``M = max_boxes`` (default: the most objects of any image, at least 1); padding rows hold
    :data:`PAD_BOX`, class 0 and ``valid`` False. Crowd regions are left out (they are neither
    targets nor, in COCO's evaluation, misses).
    """
    counts = [int((~c).sum()) for c in data.iscrowd]
    m = max([1, *counts]) if max_boxes is None else max_boxes
    if max(counts, default=0) > m:
        raise DataError(f"an image has {max(counts)} objects, more than max_boxes={m}")
    n = len(data)
    shapes = {im.shape for im in data.images}
    if len(shapes) != 1:
        raise DataError(f"{data.source}: images differ in size {sorted(shapes)[:3]}; give an image size to resize them")
    boxes = np.tile(np.asarray(PAD_BOX, np.float32), (n, m, 1))
    classes = np.zeros((n, m), np.int32)
    valid = np.zeros((n, m), bool)
    for i in range(n):
        keep = ~data.iscrowd[i]
        k = int(keep.sum())
        boxes[i, :k] = data.boxes[i][keep]
        classes[i, :k] = data.classes[i][keep]
        valid[i, :k] = True
    return np.stack(data.images), boxes, classes, valid
