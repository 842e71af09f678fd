"""Named data sets as ``tf.data`` pipelines.

``load(name)`` returns train/validation/test pipelines plus metadata for ``digits`` (embedded:
scikit-learn's real handwritten digits, no network), the tfds sets ``mnist``, ``fashion_mnist``,
``cifar10``, ``cifar100``, and user data ``folder:PATH`` and ``npz:PATH``.
"""

from cs231n_tf.data.pipeline import DataSplits, DatasetInfo, list_datasets, load

__all__ = ["DataSplits", "DatasetInfo", "list_datasets", "load"]
