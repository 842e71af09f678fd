import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import data
from cs231n_tf.compress.distill import fine_tune
from cs231n_tf.compress.quantization import (compare_with_keras, keras_to_tflite, qat_to_tflite_int8,
                                             quantization_aware_training, quantize, tflite_accuracy)
from cs231n_tf.errors import ConfigError, InputTypeError

L = tf.keras.layers


def small_cnn():
    tf.keras.utils.set_random_seed(0)
    inputs = L.Input((8, 8, 1), name="images")
    x = L.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(32, activation="relu", name="fc")(x)
    return tf.keras.Model(inputs, L.Dense(10, name="logits")(x))


@pytest.fixture(scope="module")
def setup():
    ds = data.load("digits", batch_size=64)
    model = small_cnn()
    fine_tune(model, lambda e: ds.train_epoch(e, 0), 3, 3e-3)
    images = ds.to_unit(ds.arrays["x_test"]).numpy()
    return ds, model, images, ds.arrays["y_test"]


def int8_weights(content, size):
    """The stored weight tensors of ``size`` elements in a .tflite (read back with LiteRT)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    found = []
    for detail in interpreter.get_tensor_details():
        if int(np.prod(detail["shape"])) == size and detail["dtype"] == np.int8:
            found.append(interpreter.get_tensor(detail["index"]))
    return found


def test_post_training_float_and_int8(setup):
    ds, model, images, labels = setup
    info = ds.info
    flat = keras_to_tflite(model, info.mean, info.std)
    report = compare_with_keras(flat, model, info.mean, info.std, images, labels)
    assert report["max_abs_diff"] < 1e-4 and report["prediction_agreement"] == 1.0
    assert report["keras_accuracy"] > 0.85
    int8 = keras_to_tflite(model, info.mean, info.std, "int8", ds.representative_images(100))
    assert len(int8) < len(flat) / 2.5  # 4x smaller weights; the graph's fixed overhead stays
    q = compare_with_keras(int8, model, info.mean, info.std, images, labels)
    assert q["prediction_agreement"] > 0.95
    assert abs(q["accuracy"] - report["accuracy"]) < 0.03
    assert tflite_accuracy(int8, images, labels) == q["accuracy"]
    with pytest.raises(ConfigError, match="quantize"):
        keras_to_tflite(model, info.mean, info.std, "int4")


def test_qat_model_converts_to_int8_matching_keras(setup):
    ds, model, images, labels = setup
    history = []
    qat = quantization_aware_training(model, lambda e: ds.train_epoch(e, 1).take(10), 1, 1e-4, history=history)
    assert len(history) == 1 and np.isfinite(history[0])
    names = [type(layer).__name__ for layer in qat.layers]
    assert "QuantizeLayer" in names and names.count("QuantizeWrapperV2") == 4
    content = qat_to_tflite_int8(qat, ds.info.mean, ds.info.std, ds.representative_images(100))
    report = compare_with_keras(content, qat, ds.info.mean, ds.info.std, images, labels)
    assert report["prediction_agreement"] > 0.95
    assert report["accuracy"] > 0.8
    assert int8_weights(content, 288 * 32)  # the fc kernel is stored as int8


def _sparse_clustered(model):
    """A copy of ``model`` whose kernels have 4 shared non-zero values and half their weights at zero."""
    copy = tf.keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name in ("conv", "fc", "logits"):
        kernel = copy.get_layer(name).kernel.numpy()
        s = kernel.std()
        centroids = np.array([-2 * s, -s / 2, s / 2, 2 * s], np.float32)
        shared = centroids[np.abs(kernel[..., None] - centroids).argmin(-1)]
        shared[np.abs(kernel) < np.median(np.abs(kernel))] = 0.0
        copy.get_layer(name).kernel.assign(shared)
    return copy


def test_prune_and_cluster_preserving_qat(setup):
    ds, model, _, _ = setup
    sparse = _sparse_clustered(model)
    batches = lambda e: ds.train_epoch(e, 2).take(5)  # noqa: E731
    rep = ds.representative_images(50)
    found = {}
    for preserve in ("sparsity", "clusters", "sparse_clusters"):
        qat = quantization_aware_training(sparse, batches, 1, 1e-3, preserve=preserve)
        (found[preserve],) = int8_weights(qat_to_tflite_int8(qat, ds.info.mean, ds.info.std, rep), 288 * 32)
    assert np.mean(found["sparsity"] == 0) >= 0.5  # PQAT: every pruned weight is still zero in the int8 file
    assert len(np.unique(found["sparsity"])) > 5  # ... while the kept weights trained freely
    assert len(np.unique(found["clusters"])) <= 5  # CQAT: 5 shared values (4 centroids, 0) survive training
    w = found["sparse_clusters"]  # PCQAT keeps both
    assert len(np.unique(w)) <= 5 and np.mean(w == 0) >= 0.5


def test_preserving_what_is_not_there_is_an_error():
    inputs = L.Input((64,))
    dense = tf.keras.Model(inputs, L.Dense(40, name="b")(L.Dense(32, name="a")(inputs)))
    with pytest.raises(ConfigError, match="needs a pruned model"):
        quantize(dense, preserve="sparsity")
    with pytest.raises(ConfigError, match="needs a clustered model"):
        quantize(dense, preserve="clusters")
    dense.get_layer("a").kernel.assign(np.zeros((64, 32), np.float32))
    with pytest.raises(ConfigError, match="b have none"):
        quantize(dense, preserve="sparse_clusters")


def test_clear_errors_for_what_tfmot_cannot_quantize(setup):
    ds, model, _, _ = setup

    class Scale(L.Layer):
        def call(self, x):
            return 2.0 * x

    inputs = L.Input((8, 8, 1))
    custom = tf.keras.Model(inputs, L.Dense(10)(L.Flatten()(Scale(name="my_scale")(inputs))))
    with pytest.raises(ConfigError, match="my_scale"):
        quantize(custom)
    inner = tf.keras.Model(inputs, L.Flatten()(inputs), name="inner")
    outer_in = L.Input((8, 8, 1))
    nested = tf.keras.Model(outer_in, L.Dense(10)(inner(outer_in)))
    with pytest.raises(ConfigError, match="nested"):
        quantize(nested)

    class Sub(tf.keras.Model):
        def call(self, x):
            return x

    with pytest.raises(InputTypeError, match="subclassed"):
        quantize(Sub())
    with pytest.raises(ConfigError, match="preserve"):
        quantize(model, preserve="weights")
    import tensorflow_model_optimization as tfmot

    pruned = tfmot.sparsity.keras.prune_low_magnitude(small_cnn())
    with pytest.raises(ConfigError, match="strip_pruning"):
        quantize(pruned)
    with pytest.raises(ConfigError, match="lr"):
        quantization_aware_training(model, ds.train_epoch(0, 0), 1, 0.0)
