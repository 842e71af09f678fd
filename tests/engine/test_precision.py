"""engine.context.precision: models are built under a task's policy and the global policy comes back."""

import pytest
import tensorflow as tf

from cs231n_tf.engine.context import precision
from cs231n_tf.segmentation.task import SegmentationConfig
from cs231n_tf.segmentation.task import build_model as build_segmenter
from cs231n_tf.sequence.charrnn import CharRNNConfig
from cs231n_tf.sequence.charrnn import build_model as build_charrnn


def test_policy_is_set_inside_and_restored_after_an_error():
    before = tf.keras.mixed_precision.global_policy().name
    with pytest.raises(RuntimeError):
        with precision("mixed_float16"):
            assert tf.keras.mixed_precision.global_policy().name == "mixed_float16"
            raise RuntimeError("boom")
    assert tf.keras.mixed_precision.global_policy().name == before
    with precision(None):
        assert tf.keras.mixed_precision.global_policy().name == before


@pytest.mark.parametrize("build", ["charrnn", "segmentation"])
def test_task_models_compute_in_float16_and_answer_in_float32(build):
    if build == "charrnn":
        model = build_charrnn(CharRNNConfig(hidden=8, embedding=4, layers=1), 11, "mixed_float16")
    else:
        model = build_segmenter(SegmentationConfig(image_size=16, filters=4), 3, "mixed_float16")
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    compute = {layer.compute_dtype for layer in model.layers if layer.weights}
    assert "float16" in compute
    assert model.outputs[0].dtype == tf.float32
