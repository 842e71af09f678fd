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
    """Fail early and clearly if Keras 2 cannot be what ``tf.keras`` resolves to.

    Does not import TensorFlow itself (so ``cs231n-tf --help`` stays fast); if TensorFlow is
    already imported, checks what ``tf.keras`` actually is.
    """
    import importlib.util
    import sys

    if importlib.util.find_spec("tf_keras") is None:
        raise ImportError("cs231n_tf needs Keras 2: install tf-keras (pip install 'tf-keras~=2.21.0')")
    tf = sys.modules.get("tensorflow")
    keras_module = sys.modules.get("tensorflow.keras") or sys.modules.get("keras")
    if tf is not None and keras_module is not None and "tf_keras" not in getattr(keras_module, "__name__", ""):
        name = getattr(tf.keras, "__name__", "")
        if not name.startswith("tf_keras"):
            raise ImportError(
                "cs231n_tf needs Keras 2 behind tf.keras (tf_keras), but tf.keras is "
                f"{name!r}: import cs231n_tf before anything accesses tf.keras, or set TF_USE_LEGACY_KERAS=1."
            )


_check_keras2()

__all__ = ["Cs231nError", "__version__"]
