"""The synthetic scene set: masks, boxes and instances agree with each other and with the pixels."""

import numpy as np
import pytest

from cs231n_tf.data.shapes import shape_scenes
from cs231n_tf.errors import ConfigError


@pytest.fixture(scope="module")
def scenes():
    return shape_scenes(40, image_size=48, seed=3)


def test_semantic_masks_boxes_and_instances_agree(scenes):
    assert scenes.images.shape == (40, 48, 48, 3) and scenes.images.dtype == np.uint8
    assert scenes.masks.shape == (40, 48, 48) and scenes.masks.dtype == np.uint8
    assert scenes.class_names == ("background", "circle", "square", "triangle") and scenes.num_classes == 4
    assert set(np.unique(scenes.masks)) == {0, 1, 2, 3}
    for mask, inst in zip(scenes.masks, scenes.instances):
        assert inst.boxes.shape == (len(inst), 4) and inst.masks.shape == (len(inst), 48, 48)
        covered = np.zeros_like(mask, bool)
        for box, cls, m in zip(inst.boxes, inst.classes, inst.masks):
            assert not (covered & m).any()  # visible parts never overlap
            covered |= m
            assert (mask[m] == cls).all()
            ys, xs = np.nonzero(m)
            assert box.tolist() == [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]  # tight, exclusive max
            assert m[box[0]:box[2], box[1]:box[3]].sum() == m.sum()
        # Pixels outside every kept instance are background or a dropped sliver (< min_visible pixels).
        assert (mask[~covered] > 0).sum() < 6 * 5


def test_occlusion_later_objects_paint_over_earlier_ones():
    # Rebuild the scenes' draws with noise off: each instance's visible mask is its full shape minus
    # what the later objects cover, and the pixels under it have one colour.
    scenes = shape_scenes(30, image_size=40, seed=5, noise=0.0, min_visible=1)
    occluded = 0
    for image, inst in zip(scenes.images, scenes.instances):
        for k, m in enumerate(inst.masks):
            colours = np.unique(image[m].reshape(-1, 3), axis=0)
            assert len(colours) == 1
            later = inst.masks[k + 1:].any(0) if k + 1 < len(inst) else np.zeros_like(m)
            assert not (m & later).any()
        occluded += sum(1 for m in inst.masks)
    assert occluded > 60
    # At least some objects are partly hidden: their visible area is smaller than their shape's.
    partly = 0
    for inst in scenes.instances:
        for box, m in zip(inst.boxes, inst.masks):
            area = (box[2] - box[0]) * (box[3] - box[1])
            partly += m.sum() < 0.4 * area
    assert partly > 0


def test_deterministic_per_seed_and_colour_independent_of_class():
    a, b, c = shape_scenes(8, 32, seed=1), shape_scenes(8, 32, seed=1), shape_scenes(8, 32, seed=2)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert all((x.boxes == y.boxes).all() and (x.masks == y.masks).all() for x, y in zip(a.instances, b.instances))
    assert not np.array_equal(a.images, c.images)
    # Mean colour per class is about the same (mid grey): colour carries no class information.
    s = shape_scenes(150, 32, seed=0, noise=0.0)
    means = np.array([s.images[s.masks == k].mean(0) for k in (1, 2, 3)])
    assert np.abs(means - 127.5).max() < 20


def test_bad_arguments():
    with pytest.raises(ConfigError, match="min_objects"):
        shape_scenes(2, min_objects=4, max_objects=2)
    with pytest.raises(ConfigError, match="max_size"):
        shape_scenes(2, max_size=0.9)
    with pytest.raises(ConfigError, match="num_images"):
        shape_scenes(0)
