"""Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks", 2017).

The class score's gradient with respect to a convolutional layer's feature map ``A`` (``(N, h, w, K)``),
averaged over space, weights each channel: ``cam = ReLU(sum_k mean_ij(d s_y / d A_ijk) * A_k)``.
The map is resized (bilinear) to the input's ``(H, W)`` and returned as ``(N, H, W)`` float32.
"""

import tensorflow as tf

from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.visualize.saliency import check_batch, class_scores_fn, score_head


def spatial_layers(model):
    """Names of the layers of ``model`` whose output is a feature map ``(N, h, w, K)``, in order."""
    names = []
    for layer in model.layers[1:] if isinstance(model.layers[0], tf.keras.layers.InputLayer) else model.layers:
        shape = getattr(layer, "output_shape", None)
        if isinstance(shape, tuple) and len(shape) == 4:
            names.append(layer.name)
    return names


def conv_layer(model, layer=None):
    """The layer named ``layer`` (default: the last layer with a 4-D output) of a Keras ``model``."""
    if not isinstance(model, tf.keras.Model):
        raise InputTypeError(f"Grad-CAM needs a Keras model, got {type(model).__name__}")
    valid = spatial_layers(model)
    if not valid:
        raise ConfigError(f"model {model.name!r} has no convolutional layer (no layer outputs an (N, h, w, K) "
                          f"feature map), so Grad-CAM does not apply")
    if layer is None:
        return model.get_layer(valid[-1])
    if layer not in valid:
        raise ConfigError(f"unknown layer {layer!r} for Grad-CAM; layers with feature maps: {', '.join(valid)}")
    return model.get_layer(layer)


def gradcam(model, x, y, layer=None):
    """Grad-CAM maps ``(N, H, W)`` of class ``y`` at ``layer`` (default: the last conv layer); the score
    is the pre-softmax one (:func:`~cs231n_tf.visualize.saliency.class_scores_fn`)."""
    target = conv_layer(model, layer)
    tensor, head = score_head(model)
    # One model returns the feature map and the scores' input, so both come from the same forward pass.
    body = tf.keras.Model(model.inputs, [target.output, tensor])
    x, y = check_batch(x, y, class_scores_fn(model))
    with tf.GradientTape() as tape:
        feats, pre = body(x, training=False)
        scores = tf.cast(head(pre), tf.float32)
        score = tf.reduce_sum(tf.gather(scores, y, axis=1, batch_dims=1))
    grads = tape.gradient(score, feats)
    weights = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(feats, tf.float32), axis=-1, keepdims=True))
    return tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0].numpy()
