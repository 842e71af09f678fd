"""Fixtures shared by the compression tests."""

import pytest

from cs231n_tf import data as data_lib, models
from cs231n_tf.compress import pruning


@pytest.fixture(scope="module")
def digits():
    return data_lib.load("digits", batch_size=32)


@pytest.fixture(scope="module")
def trained(digits):
    """A two_layer_net fitted for 2 epochs on digits: real weight distributions to prune and cluster."""
    model = models.build("two_layer_net", digits.info.image_shape, 10, hidden_dim=32)
    pruning.fit(model, digits, epochs=2, lr=0.01)
    return model
