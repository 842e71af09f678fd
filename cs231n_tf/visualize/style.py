"""Neural style transfer (Gatys et al., "Image Style Transfer Using Convolutional Neural Networks",
CVPR 2016; lecture 12) with the course's loss functions (assignment 3, TensorFlow version).

An image is optimised so that one layer's features match a content image (:func:`content_loss`),
the Gram matrices of several layers match a style image's (:func:`style_loss`), and neighbouring
pixels stay close (:func:`tv_loss`). With ``content_weight=0`` this is texture synthesis.
Features come from any Keras model by layer names (:func:`feature_extractor`); images live in
the model's normalised input space, shape ``(1, H, W, C)``.
"""

import dataclasses
import time

import numpy as np
import scipy.optimize
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, ShapeError

# Pretrained EfficientNet-Lite0's layers, shallow to deep, as VGG's conv1_1..conv4_1 in the paper.
DEFAULT_STYLE_LAYERS = ("block1a_project_bn", "block2b_add", "block3b_add", "block4c_add")
DEFAULT_CONTENT_LAYER = "block4c_add"


def content_loss(content_weight, content_current, content_original):
    """``content_weight * sum((F - P)^2)`` for features ``(1, H, W, C)`` of the image and the content."""
    return content_weight * tf.reduce_sum(tf.square(content_current - content_original))


def gram_matrix(features, normalize=True):
    """Gram matrix ``G[c, c'] = sum_{h,w} F[h,w,c] F[h,w,c']`` (divided by ``H*W*C`` when ``normalize``).

    ``features``: ``(N, H, W, C)`` gives ``(N, C, C)``; ``(H, W, C)`` gives ``(C, C)``.
    """
    features = tf.convert_to_tensor(features)
    if features.shape.rank not in (3, 4):
        raise ShapeError(f"features must be (N, H, W, C) or (H, W, C), got shape {tuple(features.shape)}")
    gram = tf.einsum("...hwc,...hwd->...cd", features, features)
    if normalize:
        h, w, c = (tf.cast(tf.shape(features)[i], gram.dtype) for i in (-3, -2, -1))
        gram = gram / (h * w * c)
    return gram


def style_loss(feats, style_layers, style_targets, style_weights):
    """``sum_l w_l * sum((G_l - A_l)^2)``: ``feats[style_layers[i]]`` against the Gram matrix ``style_targets[i]``."""
    if not len(style_layers) == len(style_targets) == len(style_weights):
        raise ConfigError(f"style_layers, style_targets and style_weights must have equal lengths, got "
                          f"{len(style_layers)}, {len(style_targets)}, {len(style_weights)}")
    total = 0.0
    for layer, target, weight in zip(style_layers, style_targets, style_weights):
        total += weight * tf.reduce_sum(tf.square(gram_matrix(feats[layer]) - target))
    return total


def tv_loss(img, tv_weight):
    """Total variation ``tv_weight * sum`` of squared differences of vertical and horizontal neighbours, img ``(1, H, W, C)``."""
    down = tf.reduce_sum(tf.square(img[:, 1:, :, :] - img[:, :-1, :, :]))
    right = tf.reduce_sum(tf.square(img[:, :, 1:, :] - img[:, :, :-1, :]))
    return tv_weight * (down + right)


def feature_extractor(model, layer_names):
    """A Keras model mapping ``model``'s input to ``{name: activation}`` of the named layers.

    An unknown name raises :class:`ConfigError` listing the valid ones.
    """
    if not isinstance(model, tf.keras.Model):
        raise ConfigError(f"model must be a tf.keras.Model, got {type(model).__name__}")
    names = [layer.name for layer in model.layers]
    missing = [n for n in layer_names if n not in names]
    if missing or not layer_names:
        raise ConfigError(f"unknown layer name(s) {missing or list(layer_names)} for model {model.name!r}; "
                          f"valid: {', '.join(names)}")
    outputs = {n: model.get_layer(n).output for n in dict.fromkeys(layer_names)}
    return tf.keras.Model(model.inputs, outputs, name=f"{model.name}_features")


@dataclasses.dataclass
class StyleResult:
    """The stylised image ``(1, H, W, C)`` in the model's input space and the losses over steps."""

    image: np.ndarray
    history: list


def style_transfer(extractor, content_image, style_image, *, content_layer=DEFAULT_CONTENT_LAYER,
                   content_weight=1e-2, style_layers=DEFAULT_STYLE_LAYERS, style_weights=(1.0, 1.0, 1.0, 1.0),
                   tv_weight=1e-3, optimizer="adam", steps=100, learning_rate=0.05, init="content",
                   clip=None, seed=0, log_every=10):
    """Optimise an image with Adam or L-BFGS against the content and style images' features.

    ``extractor``: :func:`feature_extractor` output containing ``content_layer`` and ``style_layers``;
    images ``(1, H, W, C)`` float32. ``init`` ``"content"`` starts from the content image,
    ``"random"`` from uniform noise (texture synthesis with ``content_weight=0``). ``clip``
    ``(low, high)`` keeps Adam's pixels in range. ``history``: one dict per logged step
    (``step``, ``content``, ``style``, ``tv``, ``total``, ``seconds``).
    """
    optimizer = validation.one_of("optimizer", optimizer, ("adam", "lbfgs"))
    init = validation.one_of("init", init, ("content", "random"))
    steps = validation.positive_int("steps", steps)
    log_every = validation.positive_int("log_every", log_every)
    style_layers = tuple(style_layers)
    if len(style_weights) != len(style_layers):
        raise ConfigError(f"style_weights needs one weight per style layer ({len(style_layers)}), got {len(style_weights)}")
    for name in (content_layer, *style_layers):
        if name not in extractor.output:
            raise ConfigError(f"layer {name!r} is not an output of the extractor; it has {', '.join(extractor.output)}")
    content_image = tf.constant(content_image, tf.float32)
    style_image = tf.constant(style_image, tf.float32)
    if content_image.shape.rank != 4 or style_image.shape.rank != 4:
        raise ShapeError("content_image and style_image must have shape (1, H, W, C)")

    content_target = extractor(content_image, training=False)[content_layer]
    style_feats = extractor(style_image, training=False)
    style_targets = [gram_matrix(style_feats[n]) for n in style_layers]
    if init == "content":
        start = content_image
    else:
        start = tf.random.stateless_uniform(content_image.shape, [seed, 0], -1.0, 1.0)
    image = tf.Variable(start)

    def losses():
        feats = extractor(image, training=False)
        c = content_loss(content_weight, feats[content_layer], content_target)
        s = style_loss(feats, style_layers, style_targets, style_weights)
        t = tv_loss(image, tv_weight)
        return c, s, t

    compiled_losses = tf.function(losses)
    history = []
    started = time.perf_counter()

    def record(step):
        c, s, t = (float(v) for v in compiled_losses())
        history.append({"step": step, "content": c, "style": s, "tv": t, "total": c + s + t,
                        "seconds": time.perf_counter() - started})

    record(0)
    if optimizer == "adam":
        adam = tf.keras.optimizers.Adam(learning_rate)

        @tf.function
        def step_fn():
            with tf.GradientTape() as tape:
                loss = tf.add_n(losses())
            adam.apply_gradients([(tape.gradient(loss, image), image)])
            if clip is not None:
                image.assign(tf.clip_by_value(image, clip[0], clip[1]))

        for step in range(1, steps + 1):
            step_fn()
            if step % log_every == 0 or step == steps:
                record(step)
    else:
        _lbfgs(image, lambda: tf.add_n(losses()), steps, log_every, record)
        if clip is not None:
            image.assign(tf.clip_by_value(image, clip[0], clip[1]))
    return StyleResult(image=image.numpy(), history=history)


def _lbfgs(image, loss_fn, steps, log_every, record):
    """SciPy's L-BFGS-B on the image's pixels in one call, recording every ``log_every`` iterations.

    One call keeps the curvature memory (restarting in chunks, as ``cs231n_tf.optim.lbfgs`` would
    need for a history, costs L-BFGS most of its advantage); SciPy's callback gives the iterations.
    """
    shape = image.shape

    @tf.function
    def value_and_gradient(x):
        image.assign(tf.reshape(tf.cast(x, tf.float32), shape))
        with tf.GradientTape() as tape:
            loss = loss_fn()
        return tf.cast(loss, tf.float64), tf.reshape(tf.cast(tape.gradient(loss, image), tf.float64), [-1])

    def fun(x):
        loss, grad = value_and_gradient(tf.constant(x))
        return float(loss), grad.numpy()

    iteration = [0]

    def callback(x):
        iteration[0] += 1
        if iteration[0] % log_every == 0 or iteration[0] == steps:
            image.assign(np.reshape(x, shape).astype(np.float32))
            record(iteration[0])

    x0 = image.numpy().astype(np.float64).ravel()
    result = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", callback=callback,
                                     options={"maxiter": steps, "gtol": 0.0, "ftol": float(np.finfo(np.float32).eps)})
    # SciPy's last evaluation need not be its answer; an early stop also ends the history there.
    image.assign(np.reshape(result.x, shape).astype(np.float32))
    if iteration[0] % log_every and iteration[0] != steps:
        record(iteration[0])


@dataclasses.dataclass
class Network:
    """A model to take features from, with its pixel mapping: ``prepare(uint8 (H, W, C)) -> (1, h, w, C)``
    in the model's input space, ``to_pixels`` back to uint8, ``clip`` the input range of pixels 0..255,
    default layers (the pretrained network's, or a run's convolutions) and ``normalize`` (unit-range
    image tensors to the model's input space, differentiable)."""

    model: tf.keras.Model
    prepare: object
    to_pixels: object
    clip: tuple
    content_layer: str
    style_layers: tuple
    source: dict
    normalize: object = None


def _pixel_maps(size, channels, mean, std):
    mean = np.broadcast_to(np.asarray(mean, np.float32), (channels,))
    std = np.broadcast_to(np.asarray(std, np.float32), (channels,))

    def prepare(image):
        x = tf.image.resize(tf.cast(image, tf.float32), size).numpy()
        return ((x / 255.0 - mean) / std)[None].astype(np.float32)

    def to_pixels(x):
        return np.clip(np.round((np.asarray(x)[0] * std + mean) * 255.0), 0, 255).astype(np.uint8)

    def normalize(x):
        return (x - mean) / std

    clip = (float(np.min(-mean / std)), float(np.max((1 - mean) / std)))
    return prepare, to_pixels, clip, normalize


def load_network(*, model=None, run_dir=None, weights="imagenet", image_size=192, checkpoint=None):
    """The pretrained registry ``model`` (at ``image_size``, without its classifier) or a classification run."""
    from cs231n_tf.models import build
    from cs231n_tf.models.registry import pretrained_spec

    if (run_dir is None) == (model is None):
        raise ConfigError("give exactly one of run_dir (a trained run) and model (a pretrained model name)")
    if model is not None:
        spec = pretrained_spec(model, weights)
        size = validation.positive_int("image_size", image_size)
        channels = spec.canonical_input_shape[-1]
        net = build(model, input_shape=(size, size, channels), weights=weights, include_top=False)
        prepare, to_pixels, clip, normalize = _pixel_maps((size, size), channels, *spec.input_stats)
        names = {layer.name for layer in net.layers}
        if DEFAULT_CONTENT_LAYER in names and set(DEFAULT_STYLE_LAYERS) <= names:
            content, style = DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS
        else:
            content, style = _conv_layers(net)
        return Network(net, prepare, to_pixels, clip, content, style, {"model": model, "weights": weights,
                                                                      "image_size": [size, size]}, normalize)
    from cs231n_tf.train.evaluate import load_run

    run = load_run(run_dir, checkpoint, float32=True)
    info = run.run_config["data"]
    shape = tuple(info["image_shape"])
    prepare, to_pixels, clip, normalize = _pixel_maps(shape[:2], shape[-1], info["mean"], info["std"])
    content, style = _conv_layers(run.model)
    return Network(run.model, prepare, to_pixels, clip, content, style,
                   {"run_dir": run.run_dir, "checkpoint": run.checkpoint}, normalize)


def _conv_layers(model):
    convs = [layer.name for layer in model.layers if isinstance(layer, tf.keras.layers.Conv2D)]
    if not convs:
        raise ConfigError(f"model {model.name!r} has no convolutional layers to take style features from; "
                          f"name them with content_layer and style_layers")
    return convs[-1], tuple(convs[:4])


def transfer_files(content, style, out_dir, network, *, content_layer=None, style_layers=None, style_weights=None,
                   **options):
    """Stylise image ``content`` (path or ``photo:NAME``) like ``style``; writes ``out_dir/stylized.png`` and
    ``out_dir/style_transfer.json`` (settings and the loss history). ``options`` go to :func:`style_transfer`.
    Returns the JSON's dict."""
    from cs231n_tf.fileio import atomic_write_bytes, atomic_write_json, confined_path
    from cs231n_tf.train.predict import read_image_spec

    content_layer = content_layer or network.content_layer
    style_layers = tuple(style_layers or network.style_layers)
    style_weights = tuple(style_weights or [1.0] * len(style_layers))
    channels = network.model.input_shape[-1]
    content_x = network.prepare(read_image_spec(content, channels))
    style_x = network.prepare(read_image_spec(style, channels))
    extractor = feature_extractor(network.model, [content_layer, *style_layers])
    options.setdefault("clip", network.clip)
    result = style_transfer(extractor, content_x, style_x, content_layer=content_layer, style_layers=style_layers,
                            style_weights=style_weights, **options)
    png = confined_path(out_dir, "stylized.png")
    atomic_write_bytes(png, tf.io.encode_png(network.to_pixels(result.image)).numpy())
    report = {"content": content, "style": style, "source": network.source, "content_layer": content_layer,
              "style_layers": list(style_layers), "style_weights": list(style_weights),
              "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()},
              "image": png, "history": result.history}
    atomic_write_json(confined_path(out_dir, "style_transfer.json"), report)
    return report
