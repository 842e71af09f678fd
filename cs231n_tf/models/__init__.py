"""Model builders and their registry.

``build(name, input_shape, num_classes, **options)`` makes any registered model;
``list()`` names them. Every builder returns an uncompiled ``tf.keras.Model`` producing logits.
"""

from cs231n_tf.models.registry import ModelSpec, build, get_spec, list_models, register

# Importing a module registers its builders (regularization: its layers, for loading and profiling).
from cs231n_tf.models import alexnet, basic, densenet, efficientnet_lite, fractalnet, googlenet, inception, regularization, resnet, shallow, squeezenet, vgg  # noqa: F401,E402

# The ternary and binary-weight builders (lecture 15) live beside the compression code: the registry
# imports cs231n_tf.compress.ternary when one of them is looked up or all models are listed
# (registry.LAZY_BUILDERS), so their runs load, evaluate and export like any other, while importing
# this package does not import cs231n_tf.compress.

list = list_models  # noqa: A001 - the issue's public name; list_models is the unshadowing alias

__all__ = ["ModelSpec", "build", "get_spec", "list", "list_models", "register"]
