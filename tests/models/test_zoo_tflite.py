"""TFLite conversion of the zoo's small builders (issue 5): the LiteRT interpreter must reproduce the
Keras test-time graph within 1e-4.

Each model is built on a small input with small options where the builder has them, its batchnorm
statistics are moved off their (0, 1) initial values by one training-mode pass (so that folding
them into the convolutions is exercised), and the ``training=False`` call is converted through a
concrete function with a fixed batch. The models with randomness at training time (stochastic
depth, FractalNet's drop-path, dropout) must convert to their deterministic full network.
"""

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from cs231n_tf import models
from cs231n_tf.export import exporter
from cs231n_tf.models import densenet as densenet_module

BATCH = 3
ATOL = 1e-4


def _images(shape, seed):
    return np.random.RandomState(seed).uniform(0, 1, (BATCH,) + tuple(shape)).astype(np.float32)


def _convert(model):
    """TFLite bytes of ``model(x, training=False)`` for a batch of ``BATCH`` images.

    The test-time graph is frozen (variables folded into constants) before conversion: handing
    the converter the Keras model instead makes it save a SavedModel first, which costs ~30x more
    and would dominate this file's run time without testing anything else.
    """
    spec = tf.TensorSpec((BATCH,) + tuple(model.input_shape[1:]), tf.float32, name="images")
    serve = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()


def _run_tflite(content, x):
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])


def _check(model, input_shape, seed=0):
    # One training-mode pass updates the batchnorm moving statistics (momentum 0.9 here), so the
    # converted graph folds non-trivial means and variances.
    model(_images(input_shape, seed + 100), training=True)
    x = _images(input_shape, seed)
    expected = model(x, training=False).numpy()
    content = _convert(model)
    got = _run_tflite(content, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    # The logits must vary across images, or the comparison above would prove little.
    assert np.ptp(expected, axis=0).max() > 1e-3
    return content


@pytest.mark.parametrize("name, shape, options", [
    ("lenet5", (32, 32, 1), {}),
    ("resnet20", (16, 16, 3), {}),
    ("wrn_16_4", (8, 8, 3), {"dropout": 0.3}),
    ("squeezenet1_1", (32, 32, 3), {}),
    ("googlenet", (32, 32, 3), {}),
    ("fractalnet", (8, 8, 3), {"columns": 3, "filters": (8, 16), "dropout": (0.1, 0.2), "seed": 3}),
])
def test_registered_builder_converts_and_matches_keras(name, shape, options):
    tf.keras.utils.set_random_seed(0)
    _check(models.build(name, shape, 10, **options), shape)


def test_densenet_converts_and_matches_keras():
    # densenet121's code path with short blocks and a small growth rate.
    tf.keras.utils.set_random_seed(0)
    model = densenet_module.densenet((32, 32, 3), 10, blocks=(2, 2, 2, 2), growth_rate=8, stem_filters=16)
    _check(model, (32, 32, 3))


def test_stochastic_depth_converts_to_the_full_network():
    tf.keras.utils.set_random_seed(0)
    shape = (8, 8, 3)
    model = models.build("resnet110_sd", shape, 10, depth=20, seed=5)
    content = _check(model, shape)
    # The test-time graph has no random ops left: two runs agree exactly, and the stochastic
    # model equals a plain ResNet-20 carrying the same weights.
    x = _images(shape, 1)
    np.testing.assert_array_equal(_run_tflite(content, x), _run_tflite(content, x))
    plain = models.build("resnet20", shape, 10)
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(_run_tflite(content, x), plain(x, training=False).numpy(), atol=ATOL, rtol=0)


@pytest.mark.parametrize("name, shape, options", [
    ("resnet110_sd", (8, 8, 3), {"depth": 8, "seed": 2}),
    ("fractalnet", (4, 4, 3), {"columns": 2, "filters": (8,), "dropout": (0.2,), "seed": 2}),
])
def test_random_layer_models_convert_through_the_package_export_path(name, shape, options, tmp_path):
    # The deployment path: SavedModel with the serving signature (normalisation inside), then
    # convert_tflite and the LiteRT runner, with a variable batch. This also proves the custom
    # random layers survive SavedModel tracing.
    tf.keras.utils.set_random_seed(0)
    model = models.build(name, shape, 10, **options)
    model(_images(shape, 100), training=True)
    mean, std = np.full(shape[-1], 0.4, np.float32), np.full(shape[-1], 0.2, np.float32)
    saved = str(tmp_path / "saved_model")
    exporter.write_saved_model(exporter.ServingModule(model, mean, std, shape), saved)
    runner = exporter.TFLiteRunner(model_content=exporter.convert_tflite(saved))
    x = _images(shape, 0)
    expected = model((x - mean) / std, training=False).numpy()
    out = runner(x)
    np.testing.assert_allclose(out["logits"], expected, atol=ATOL, rtol=0)
    np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(expected).numpy(), atol=ATOL, rtol=0)
    assert np.ptp(expected, axis=0).max() > 1e-3
