"""The package runs on Keras 2 (tf_keras) and its models are accepted by tfmot."""

import subprocess
import sys

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from cs231n_tf import models


def test_tf_keras_is_keras2():
    import tf_keras

    # The module's name depends on how it was first imported (``tensorflow.keras`` once a library
    # imports that path); what matters is that it is tf_keras's Keras 2.
    assert "tf_keras" in tf.keras.__file__ and tf.keras.Model is tf_keras.Model
    assert tf_keras.__version__.startswith("2.")
    model = models.build("lenet5", (32, 32, 1), 10)
    assert isinstance(model, tf_keras.Model)


def test_tfmot_prunes_and_quantizes_package_models():
    model = models.build("lenet300_100", (28, 28, 1), 10)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        model, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1))
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

    wrapped = [l for l in pruned.layers if isinstance(l, PruneLowMagnitude) and isinstance(l.layer, tf.keras.layers.Dense)]
    assert len(wrapped) == 3  # the three Dense layers
    x = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype(np.float32)
    pruned.compile("sgd", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x, np.zeros(4), epochs=2, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    kernel = tfmot.sparsity.keras.strip_pruning(pruned).get_layer("fc1").kernel.numpy()
    assert abs((kernel == 0).mean() - 0.5) < 0.01
    qat = tfmot.quantization.keras.quantize_model(models.build("lenet5", (32, 32, 1), 10))
    out = qat(np.zeros((1, 32, 32, 1), np.float32))
    assert out.shape == (1, 10)


def test_importing_the_package_first_selects_keras2_in_a_fresh_process():
    code = "import cs231n_tf, tensorflow as tf; print(tf.keras.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("tf_keras")
