"""Engine tasks by name: what a run's ``config.json`` ``"task"`` entry refers to.

Tasks are imported lazily, so reading a run directory does not import every application family.
A new task registers its module here under the name it records.
"""

import importlib

from cs231n_tf.errors import RunDirError

TASKS = {
    "classification": "cs231n_tf.tasks.classification:ClassificationTask",
    "charrnn": "cs231n_tf.sequence.charrnn:CharRNNTask",
    "segmentation": "cs231n_tf.segmentation.task:SegmentationTask",
    "caption": "cs231n_tf.sequence.captioner:CaptionTask",
    "gan": "cs231n_tf.generative.task:GANTask",
    "ram": "cs231n_tf.rl.ram:RAMTask",
    "fast_style": "cs231n_tf.visualize.fast_style:FastStyleTask",
    "autoencoder": "cs231n_tf.generative.autoencoder:AutoencoderTask",
    "pixelcnn": "cs231n_tf.generative.pixelcnn:PixelCNNTask",
    "detection": "cs231n_tf.detection.task:DetectionTask",
    "localization": "cs231n_tf.detection.localization:LocalizationTask",
}


def get_task_class(name):
    """The task class registered as ``name``."""
    if name not in TASKS:
        raise RunDirError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    module, _, attr = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), attr)
