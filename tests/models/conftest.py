"""Fixtures shared by the model tests."""

import pytest
import tensorflow as tf


@pytest.fixture
def zero_init(monkeypatch):
    """Counting parameters needs shapes only: skip drawing tens of millions of random numbers per model."""
    monkeypatch.setattr(tf.keras.initializers.VarianceScaling, "__call__",
                        lambda self, shape, dtype=None, **kwargs: tf.zeros(shape, dtype or tf.float32))


@pytest.fixture(autouse=True)
def _fresh_session():
    """Free each test's models (the zoo builds large ones) before the next test builds its own."""
    yield
    tf.keras.backend.clear_session()
