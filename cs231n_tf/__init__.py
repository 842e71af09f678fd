"""cs231n_tf: Stanford CS231n (2017) as a TensorFlow/Keras package.

Importing the package selects Keras 2 (``tf_keras``) behind ``tf.keras`` by setting
``TF_USE_LEGACY_KERAS=1`` before TensorFlow resolves ``tf.keras``. tensorflow-model-optimization
only works with Keras 2, so the whole package uses one Keras: always ``tf.keras``, never
``import keras`` (Keras 3).
"""

import os

__version__ = "0.1.0"

# Must happen before anything touches ``tf.keras``; TensorFlow reads it lazily on first access.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
# Quiet TensorFlow's C++ start-up banner unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cs231n_tf.errors import Cs231nError  # noqa: E402


def _check_keras2():
    import tensorflow as tf

    name = getattr(tf.keras, "__name__", "")
    if not name.startswith("tf_keras"):
        raise ImportError(
            "cs231n_tf needs Keras 2 behind tf.keras (tf_keras), but tf.keras is "
            f"{name!r}. Import cs231n_tf before anything accesses tf.keras, or set "
            "TF_USE_LEGACY_KERAS=1 in the environment, and install tf-keras."
        )


_check_keras2()

__all__ = ["Cs231nError", "__version__"]
