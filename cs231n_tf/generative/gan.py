"""The GANs of lecture 13 / assignment 3 (Goodfellow et al. 2014), and DCGAN for any image size.

The course's builders take and return *flattened* 28x28 images, as the assignment does:

- :func:`fc_discriminator`: ``[b, 784] -> [b, 1]`` logits; 784 -> 256 -> 256 -> 1 with
  LeakyReLU(0.01) after the hidden layers.
- :func:`fc_generator`: ``[b, noise_dim] -> [b, 784]`` in [-1, 1]; noise_dim -> 1024 -> 1024 -> 784,
  ReLU, tanh output.
- :func:`dc_discriminator`: ``[b, 784] -> [b, 1]``; the assignment's small conv net ("valid" 5x5
  convolutions, 2x2 max-pools, a 1024-unit dense layer).
- :func:`dc_generator`: ``[b, noise_dim] -> [b, 784]``; InfoGAN's MNIST generator as the course
  gives it (dense 1024, dense 7*7*128, two 4x4 stride-2 transposed convolutions).

:func:`dcgan_generator` / :func:`dcgan_discriminator` follow Radford et al. 2016 ("Unsupervised
representation learning with deep convolutional GANs") for images ``[H, W, C]`` with
``H = h0 * 2**n`` and ``W = w0 * 2**n`` (base ``h0, w0`` in 3..7, ``n >= 1``; see
:func:`dcgan_layout`): no pooling and no hidden dense layers, strided convolutions in D and
fractionally strided (transposed) convolutions in G, batch normalisation in both except G's
output and D's input layer, ReLU in G with a tanh output, LeakyReLU(0.2) in D. Widths double
per resolution halving from ``base_filters`` (``ngf``/``ndf`` of the reference PyTorch DCGAN,
whose 64x64 parameter counts these builders reproduce). With ``num_classes`` they are
conditional (Mirza & Osindero 2014): G gets the one-hot label beside the noise, D the one-hot
label as constant extra input channels.

The last layer of every builder computes in float32, so under a mixed-precision policy the
losses never see float16 (the mixed-precision guide's float32 output layer).
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, ShapeError

layers = tf.keras.layers

COURSE_IMAGE_SHAPE = (28, 28, 1)
COURSE_PIXELS = 784
BASE_SIZES = range(3, 8)  # the smallest feature map DCGAN starts from (Radford et al. use 4x4)
NORMS = ("batch", "layer", "none")


def sample_noise(batch_size, dim, seed=None):
    """Noise ``[batch_size, dim]`` uniform in [-1, 1] (the course's ``sample_noise``).

    ``seed``: ``None`` draws from TensorFlow's global generator; an int or a ``[2]`` int tensor
    gives the same noise every time (``tf.random.stateless_uniform``). Python ints are checked
    (``dim <= 0`` raises :class:`ConfigError`); tensors pass through, for use inside a graph.
    """
    if not tf.is_tensor(batch_size):
        batch_size = validation.positive_int("batch_size", batch_size)
    if not tf.is_tensor(dim):
        dim = validation.positive_int("noise_dim", dim)
    shape = tf.stack([batch_size, dim]) if tf.is_tensor(batch_size) or tf.is_tensor(dim) else (batch_size, dim)
    if seed is None:
        return tf.random.uniform(shape, -1.0, 1.0)
    if not tf.is_tensor(seed):
        seed = [validation.non_negative_int("seed", seed), 0]
    return tf.random.stateless_uniform(shape, seed=tf.cast(seed, tf.int64), minval=-1.0, maxval=1.0)


def gan_optimizer(learning_rate=1e-3, beta1=0.5):
    """The course's GAN optimizer: Adam with ``learning_rate`` 1e-3 and ``beta1`` 0.5 (beta2 0.999)."""
    validation.positive_number("learning_rate", learning_rate)
    if not 0.0 <= float(beta1) < 1.0:
        raise ConfigError(f"beta1 must be in [0, 1), got {beta1!r}")
    return tf.keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta1)


def _noise_input(noise_dim):
    return tf.keras.Input((validation.positive_int("noise_dim", noise_dim),), name="noise")


def fc_discriminator(name="fc_discriminator"):
    """The course's fully connected discriminator: ``[b, 784] -> [b, 1]`` logits (267,009 parameters)."""
    return tf.keras.Sequential([
        tf.keras.Input((COURSE_PIXELS,), name="images"),
        layers.Dense(256, name="fc1"), layers.LeakyReLU(0.01, name="leaky1"),
        layers.Dense(256, name="fc2"), layers.LeakyReLU(0.01, name="leaky2"),
        layers.Dense(1, dtype="float32", name="logits"),
    ], name=name)


def fc_generator(noise_dim=96, name="fc_generator"):
    """The course's fully connected generator: ``[b, noise_dim] -> [b, 784]`` in [-1, 1] (tanh)."""
    return tf.keras.Sequential([
        _noise_input(noise_dim),
        layers.Dense(1024, activation="relu", name="fc1"),
        layers.Dense(1024, activation="relu", name="fc2"),
        layers.Dense(COURSE_PIXELS, name="fc3"),
        layers.Activation("tanh", dtype="float32", name="tanh"),
    ], name=name)


def dc_discriminator(name="dc_discriminator"):
    """The course's convolutional discriminator: ``[b, 784] -> [b, 1]`` logits.

    28x28x1 -> conv 32 5x5 (valid: 24x24) -> LeakyReLU(0.01) -> max-pool 2 (12x12) -> conv 64
    5x5 (8x8) -> LeakyReLU -> max-pool 2 (4x4x64 = 1024) -> dense 1024 -> LeakyReLU -> dense 1.
    """
    return tf.keras.Sequential([
        tf.keras.Input((COURSE_PIXELS,), name="images"),
        layers.Reshape(COURSE_IMAGE_SHAPE, name="reshape"),
        layers.Conv2D(32, 5, strides=1, padding="valid", name="conv1"), layers.LeakyReLU(0.01, name="leaky1"),
        layers.MaxPool2D(2, strides=2, name="pool1"),
        layers.Conv2D(64, 5, strides=1, padding="valid", name="conv2"), layers.LeakyReLU(0.01, name="leaky2"),
        layers.MaxPool2D(2, strides=2, name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(4 * 4 * 64, name="fc1"), layers.LeakyReLU(0.01, name="leaky3"),
        layers.Dense(1, dtype="float32", name="logits"),
    ], name=name)


def dc_generator(noise_dim=96, name="dc_generator"):
    """The course's convolutional generator: ``[b, noise_dim] -> [b, 784]`` in [-1, 1].

    dense 1024, ReLU, batchnorm, dense 7*7*128, ReLU, batchnorm, reshape 7x7x128, transposed conv
    64 4x4 stride 2 "same" (14x14), ReLU, batchnorm, transposed conv 1 4x4 stride 2 "same"
    (28x28), tanh, flatten to 784.
    """
    return tf.keras.Sequential([
        _noise_input(noise_dim),
        layers.Dense(1024, activation="relu", name="fc1"), layers.BatchNormalization(name="bn1"),
        layers.Dense(7 * 7 * 128, activation="relu", name="fc2"), layers.BatchNormalization(name="bn2"),
        layers.Reshape((7, 7, 128), name="reshape"),
        layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu", name="deconv1"),
        layers.BatchNormalization(name="bn3"),
        layers.Conv2DTranspose(1, 4, strides=2, padding="same", name="deconv2"),
        layers.Activation("tanh", dtype="float32", name="tanh"),
        layers.Flatten(name="flatten"),
    ], name=name)


# ---- DCGAN for any image size ---------------------------------------------------------------------


def _doublings(size):
    n = 0
    while size % 2 == 0 and size // 2 >= BASE_SIZES[0]:
        size //= 2
        n += 1
    return n, size


def reachable_sizes(limit=256):
    """Every image side length up to ``limit`` a DCGAN reaches by doubling a 3..7 base (see :func:`dcgan_layout`)."""
    return sorted({b * 2 ** n for b in BASE_SIZES for n in range(1, 9) if b * 2 ** n <= limit})


def dcgan_layout(image_shape):
    """``(n, h0, w0)``: ``image_shape = (h0 * 2**n, w0 * 2**n, C)`` with ``h0, w0`` in 3..7 and ``n >= 1``.

    ``n`` is the number of stride-2 layers of G and of D; an unreachable size raises
    :class:`ConfigError` naming the valid ones.
    """
    shape = _image_shape(image_shape)
    (nh, h0), (nw, w0) = _doublings(shape[0]), _doublings(shape[1])
    n = min(nh, nw)
    h0, w0 = shape[0] // 2 ** n, shape[1] // 2 ** n
    if n < 1 or h0 not in BASE_SIZES or w0 not in BASE_SIZES:
        raise ConfigError(f"image size {shape[0]}x{shape[1]} cannot be reached by doubling a DCGAN base of "
                          f"{BASE_SIZES[0]}..{BASE_SIZES[-1]} pixels; valid side lengths (height and width "
                          f"with the same number of doublings) up to 256: "
                          f"{', '.join(map(str, reachable_sizes()))}")
    return n, h0, w0


def _image_shape(image_shape):
    try:
        shape = tuple(int(d) for d in image_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"image_shape must be (height, width, channels), got {image_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1 or any(int(d) != d for d in image_shape):
        raise ConfigError(f"image_shape must be (height, width, channels) of positive ints, got {image_shape!r}")
    return shape


def _norm(kind, name):
    if kind == "batch":
        return layers.BatchNormalization(name=name)
    # Layer norm over each example's whole feature map (Gulrajani et al.'s critic: no batch norm).
    return layers.LayerNormalization(axis=[1, 2, 3], name=name)


def dcgan_generator(image_shape=(64, 64, 3), noise_dim=100, base_filters=64, num_classes=None,
                    name="dcgan_generator"):
    """Radford et al.'s DCGAN generator: noise ``[b, noise_dim]`` -> images ``[b, H, W, C]`` in [-1, 1].

    Project and reshape to ``h0 x w0 x base_filters * 2**(n-1)`` (a bias-free dense layer), then
    ``n - 1`` transposed 4x4 stride-2 convolutions halving the width, each with batch norm and
    ReLU, and a last one to ``C`` channels with tanh (no batch norm). Layout: :func:`dcgan_layout`.
    For 64x64x3, noise 100, base 64 it is the reference PyTorch DCGAN's generator (3,576,704
    trainable parameters). With ``num_classes`` the inputs are ``[noise, labels [b] int]``.
    """
    n, h0, w0 = dcgan_layout(image_shape)
    channels = image_shape[-1]
    base_filters = validation.positive_int("base_filters", base_filters)
    noise = _noise_input(noise_dim)
    inputs, x = [noise], noise
    if num_classes is not None:
        labels = tf.keras.Input((), dtype="int32", name="labels")
        num_classes = validation.int_in("num_classes", num_classes, 2)
        inputs.append(labels)
        x = layers.Concatenate(name="noise_and_label")([noise, layers.CategoryEncoding(
            num_classes, output_mode="one_hot", name="one_hot")(labels)])
    filters = base_filters * 2 ** (n - 1)
    x = layers.Dense(h0 * w0 * filters, use_bias=False, name="project")(x)
    x = layers.Reshape((h0, w0, filters), name="reshape")(x)
    x = layers.ReLU(name="relu0")(layers.BatchNormalization(name="bn0")(x))
    for i in range(1, n):
        filters //= 2
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False, name=f"deconv{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(layers.BatchNormalization(name=f"bn{i}")(x))
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", use_bias=False, name=f"deconv{n}")(x)
    images = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return tf.keras.Model(inputs if num_classes is not None else noise, images, name=name)


def dcgan_discriminator(image_shape=(64, 64, 3), base_filters=64, norm="batch", num_classes=None,
                        name="dcgan_discriminator"):
    """Radford et al.'s DCGAN discriminator: images ``[b, H, W, C]`` -> logits ``[b, 1]``.

    ``n`` 4x4 stride-2 convolutions (bias-free) widening from ``base_filters``, each followed by
    ``norm`` (except the first, the input layer) and LeakyReLU(0.2), then a bias-free dense
    logit: for 64x64x3 and base 64 the reference PyTorch DCGAN's discriminator (2,765,568
    trainable parameters; its last 4x4 "valid" convolution is this dense layer). ``norm``:
    ``batch`` (the paper), ``layer`` (per-example, for WGAN-GP's critic) or ``none``. With
    ``num_classes`` the inputs are ``[images, labels [b] int]``.
    """
    n, _, _ = dcgan_layout(image_shape)
    shape = _image_shape(image_shape)
    base_filters = validation.positive_int("base_filters", base_filters)
    validation.one_of("norm", norm, NORMS)
    images = tf.keras.Input(shape, name="images")
    inputs, x = [images], images
    if num_classes is not None:
        labels = tf.keras.Input((), dtype="int32", name="labels")
        num_classes = validation.int_in("num_classes", num_classes, 2)
        inputs.append(labels)
        one_hot = layers.CategoryEncoding(num_classes, output_mode="one_hot", name="one_hot")(labels)
        planes = layers.Reshape((1, 1, num_classes), name="label_planes")(one_hot)
        planes = layers.UpSampling2D(shape[:2], name="label_maps")(planes)
        x = layers.Concatenate(name="images_and_label")([images, planes])
    for i in range(n):
        x = layers.Conv2D(base_filters * 2 ** i, 4, strides=2, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        if i > 0 and norm != "none":
            x = _norm(norm, f"{norm}_norm{i + 1}")(x)
        x = layers.LeakyReLU(0.2, name=f"leaky{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    logits = layers.Dense(1, use_bias=False, dtype="float32", name="logits")(x)
    return tf.keras.Model(inputs if num_classes is not None else images, logits, name=name)


def check_generator_output(generator, image_shape):
    """:class:`ShapeError` unless ``generator``'s output holds one image of ``image_shape`` per example.

    Flattened outputs (the course's 784) count when their size is ``H * W * C``.
    """
    out = tuple(generator.output_shape[1:])
    shape = tuple(int(d) for d in image_shape)
    if out == shape or out == (int(np.prod(shape)),):
        return out
    raise ShapeError(f"generator {generator.name!r} outputs {list(out)} per example, but the data's images are "
                     f"{'x'.join(map(str, shape))} (= {int(np.prod(shape))} values); choose a model for "
                     f"{'x'.join(map(str, shape))} images or data the generator's size")
