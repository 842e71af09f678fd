"""Suite-wide setup: Keras 2 first, and the CPU split into two logical devices.

Two logical CPUs let the tests exercise the multi-replica ``MirroredStrategy`` path on a machine
without accelerators. The split must happen before TensorFlow initialises its devices, so it lives
here, before any test module runs.
"""

import os

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import tensorflow as tf

os.environ.setdefault("MPLBACKEND", "Agg")

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
