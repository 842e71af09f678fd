import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import models
from cs231n_tf.errors import ConfigError


def trainable_params(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


@pytest.mark.parametrize("name", ["two_layer_net", "fc_net", "three_layer_convnet", "lenet5", "lenet300_100", "small_convnet"])
def test_reference_parameter_counts(name):
    spec = models.get_spec(name)
    model = models.build(name)
    assert trainable_params(model) == spec.reference_params


def test_lenet_reference_numbers():
    assert trainable_params(models.build("lenet5", (32, 32, 1), 10)) == 61_706
    assert trainable_params(models.build("lenet300_100", (28, 28, 1), 10)) == 266_610


@pytest.mark.parametrize("shape", [(28, 28, 1), (8, 8, 1)])
def test_lenet5_small_inputs_are_padded_like_the_paper(shape):
    model = models.build("lenet5", shape, 10)
    assert trainable_params(model) == 61_706
    out = model(np.zeros((2,) + shape, np.float32))
    assert out.shape == (2, 10)


def test_fc_net_depth_and_normalization():
    model = models.build("fc_net", (8, 8, 1), 10, hidden_dims=[20, 30, 40], normalization="batchnorm", dropout=0.5)
    dense = [l for l in model.layers if isinstance(l, tf.keras.layers.Dense)]
    assert [l.units for l in dense] == [20, 30, 40, 10]
    assert [l.use_bias for l in dense] == [False, False, False, True]
    assert sum(isinstance(l, tf.keras.layers.BatchNormalization) for l in model.layers) == 3


def test_unknown_model_lists_known_ones():
    with pytest.raises(ConfigError, match="known models: .*lenet5"):
        models.build("lenet6")


def test_unknown_option_names_accepted_ones():
    with pytest.raises(ConfigError, match="accepted: .*hidden_dim"):
        models.build("two_layer_net", (8, 8, 1), 10, width=3)


@pytest.mark.parametrize("bad", [(8, 8), (0, 8, 1), "abc"])
def test_bad_input_shape(bad):
    with pytest.raises(ConfigError):
        models.build("two_layer_net", bad, 10)


def test_bad_num_classes():
    with pytest.raises(ConfigError):
        models.build("two_layer_net", (8, 8, 1), 0)
