"""Visualizing and understanding convolutional networks (lecture 12).

Functions that take a Keras classifier and images ``(N, H, W, C)`` in its input space and return
arrays: saliency maps, SmoothGrad, guided backpropagation, Grad-CAM, occlusion sensitivity, fooling
images, first-layer filters, activation maps, receptive fields, maximally activating patches, DeepDream
and feature inversion, with the course's names where assignment 3 has them. :func:`viz_report` writes
them as PNGs and JSON.
"""

from cs231n_tf.visualize.classviz import create_class_visualization
from cs231n_tf.visualize.dream import deep_dream
from cs231n_tf.visualize.features import activations, filter_grid, max_activating_patches
from cs231n_tf.visualize.fooling import make_fooling_image
from cs231n_tf.visualize.gradcam import gradcam, spatial_layers
from cs231n_tf.visualize.inversion import Inversion, invert_features
from cs231n_tf.visualize.occlusion import occlusion
from cs231n_tf.visualize.receptive import ReceptiveField, receptive_field
from cs231n_tf.visualize.report import VERBS, viz_report
from cs231n_tf.visualize.saliency import (compute_saliency_maps, guided_backprop, guided_model, guided_relu, saliency,
                                          smoothgrad)
from cs231n_tf.visualize.style import content_loss, feature_extractor, gram_matrix, style_loss, style_transfer, tv_loss
