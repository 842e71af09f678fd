"""The course's GAN builders (parameter counts by hand, shapes, ranges), the noise, the optimizer, DCGAN."""

import numpy as np
import pytest

import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from cs231n_tf.errors import ConfigError, ShapeError
from cs231n_tf.generative import gan


def dense(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def conv(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def batchnorm(c, all_weights=True):
    return (4 if all_weights else 2) * c  # gamma, beta (+ moving mean and variance)


def test_course_parameter_counts():
    # The assignment's notebook checks these four numbers; its generator tests build with noise_dim=4.
    fc_d = dense(784, 256) + dense(256, 256) + dense(256, 1)
    assert fc_d == 267009
    assert gan.fc_discriminator().count_params() == fc_d

    fc_g = dense(4, 1024) + dense(1024, 1024) + dense(1024, 784)
    assert fc_g == 1858320
    assert gan.fc_generator(4).count_params() == fc_g
    assert gan.fc_generator(96).count_params() == fc_g - dense(4, 1024) + dense(96, 1024)

    # 28 -conv5 valid-> 24 -pool-> 12 -conv5-> 8 -pool-> 4: 4*4*64 = 1024 into the dense layer.
    dc_d = conv(5, 1, 32) + conv(5, 32, 64) + dense(4 * 4 * 64, 1024) + dense(1024, 1)
    assert dc_d == 1102721
    assert gan.dc_discriminator().count_params() == dc_d

    # Keras counts batch norm's moving statistics too, as the notebook's count does.
    dc_g = (dense(4, 1024) + batchnorm(1024) + dense(1024, 7 * 7 * 128) + batchnorm(7 * 7 * 128)
            + conv(4, 128, 64) + batchnorm(64) + conv(4, 64, 1))
    assert dc_g == 6595521
    assert gan.dc_generator(4).count_params() == dc_g


def test_course_shapes_and_ranges():
    z = gan.sample_noise(5, 96, seed=1)
    for g in (gan.fc_generator(), gan.dc_generator()):
        images = g(z, training=False).numpy()
        assert images.shape == (5, 784) and images.dtype == np.float32
        assert np.all(np.abs(images) <= 1.0)
    for d in (gan.fc_discriminator(), gan.dc_discriminator()):
        assert d(tf.zeros((3, 784))).shape == (3, 1)
    layers = [type(l).__name__ for l in gan.dc_generator().layers]
    assert layers == ["Dense", "BatchNormalization", "Dense", "BatchNormalization", "Reshape", "Conv2DTranspose",
                      "BatchNormalization", "Conv2DTranspose", "Activation", "Flatten"]
    leaky = [l.alpha for l in gan.dc_discriminator().layers if isinstance(l, tf.keras.layers.LeakyReLU)]
    assert np.allclose(leaky, 0.01) and len(leaky) == 3


def test_mixed_precision_outputs_stay_float32():
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        d, g = gan.dc_discriminator(), gan.fc_generator(8)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    assert d.layers[1].compute_dtype == "float16"
    assert d(tf.zeros((2, 784))).dtype == tf.float32 and g(tf.zeros((2, 8))).dtype == tf.float32


def test_sample_noise_uniform_and_seeded():
    z = gan.sample_noise(20000, 3, seed=7).numpy()
    assert z.shape == (20000, 3) and z.min() >= -1 and z.max() <= 1
    # U[-1, 1]: mean 0, variance 1/3.
    assert abs(z.mean()) < 0.02 and abs(z.var() - 1 / 3) < 0.01
    np.testing.assert_array_equal(z, gan.sample_noise(20000, 3, seed=7).numpy())
    assert not np.array_equal(z, gan.sample_noise(20000, 3, seed=8).numpy())
    assert gan.sample_noise(4, 2).shape == (4, 2)
    for bad in (0, -3, 2.5):
        with pytest.raises(ConfigError, match="noise_dim"):
            gan.sample_noise(4, bad)
    with pytest.raises(ConfigError, match="noise_dim"):
        gan.fc_generator(0)


def test_gan_optimizer_is_the_courses_adam():
    opt = gan.gan_optimizer()
    assert isinstance(opt, tf.keras.optimizers.Adam)
    assert float(opt.learning_rate.numpy()) == pytest.approx(1e-3)
    assert opt.beta_1 == 0.5 and opt.beta_2 == 0.999
    # One step from zero gradient history is Adam's: -lr * sign(g) (bias-corrected moments).
    v = tf.Variable([1.0, -2.0])
    opt.apply_gradients([(tf.constant([0.3, -4.0]), v)])
    np.testing.assert_allclose(v.numpy(), [1.0 - 1e-3, -2.0 + 1e-3], rtol=1e-4)
    with pytest.raises(ConfigError, match="beta1"):
        gan.gan_optimizer(beta1=1.0)


def test_dcgan_64_matches_the_reference_dcgan_counts():
    # pytorch/examples dcgan (nz=100, ngf=ndf=64, nc=3): G 3,576,704 and D 2,765,568 trainable.
    g_ref = (dense(100, 4 * 4 * 512, bias=False) + batchnorm(512, False) + conv(4, 512, 256, False)
             + batchnorm(256, False) + conv(4, 256, 128, False) + batchnorm(128, False) + conv(4, 128, 64, False)
             + batchnorm(64, False) + conv(4, 64, 3, False))
    assert g_ref == 3576704
    d_ref = (conv(4, 3, 64, False) + conv(4, 64, 128, False) + batchnorm(128, False) + conv(4, 128, 256, False)
             + batchnorm(256, False) + conv(4, 256, 512, False) + batchnorm(512, False) + dense(4 * 4 * 512, 1, False))
    assert d_ref == 2765568
    g, d = gan.dcgan_generator((64, 64, 3), 100), gan.dcgan_discriminator((64, 64, 3))

    def trainable(m):
        return sum(int(np.prod(v.shape)) for v in m.trainable_variables)

    assert trainable(g) == g_ref and trainable(d) == d_ref


@pytest.mark.parametrize("shape,doublings", [((8, 8, 1), 1), ((28, 28, 1), 2), ((32, 32, 3), 3),
                                             ((12, 20, 2), 2)])
def test_dcgan_any_reachable_size(shape, doublings):
    assert gan.dcgan_layout(shape)[0] == doublings
    g = gan.dcgan_generator(shape, noise_dim=16, base_filters=8)
    d = gan.dcgan_discriminator(shape, base_filters=8)
    images = g(gan.sample_noise(3, 16, seed=0), training=False)
    assert images.shape == (3, *shape) and np.all(np.abs(images.numpy()) <= 1)
    assert d(images, training=False).shape == (3, 1)
    strided = [l for l in d.layers if isinstance(l, tf.keras.layers.Conv2D)]
    assert len(strided) == doublings and all(l.strides == (2, 2) for l in strided)
    assert not any(isinstance(l, (tf.keras.layers.MaxPool2D, tf.keras.layers.Dense)) for l in g.layers[2:])
    assert gan.check_generator_output(g, shape) == shape


@pytest.mark.parametrize("shape", [(9, 9, 1), (22, 22, 3), (8, 16, 1), (2, 2, 1)])
def test_dcgan_unreachable_size_names_valid_ones(shape):
    with pytest.raises(ConfigError, match=r"cannot be reached by doubling.*6, 8, 10, 12, 14, 16"):
        gan.dcgan_generator(shape)
    assert 28 in gan.reachable_sizes() and 64 in gan.reachable_sizes() and 9 not in gan.reachable_sizes()


def test_dcgan_norms_and_conditional():
    layer_norm = gan.dcgan_discriminator((16, 16, 1), base_filters=4, norm="layer")
    assert not any(isinstance(l, tf.keras.layers.BatchNormalization) for l in layer_norm.layers)
    assert any(isinstance(l, tf.keras.layers.LayerNormalization) for l in layer_norm.layers)
    with pytest.raises(ConfigError, match="norm"):
        gan.dcgan_discriminator((16, 16, 1), norm="group")
    g = gan.dcgan_generator((16, 16, 1), noise_dim=8, base_filters=4, num_classes=10)
    d = gan.dcgan_discriminator((16, 16, 1), base_filters=4, num_classes=10)
    z = tf.repeat(gan.sample_noise(1, 8, seed=3), 2, axis=0)
    images = g([z, tf.constant([1, 7])], training=False)
    # Same noise, different labels: different images (the label reaches the output).
    assert np.abs(images[0].numpy() - images[1].numpy()).max() > 1e-4
    assert d([images, tf.constant([1, 7])], training=False).shape == (2, 1)


def test_generator_data_shape_mismatch():
    with pytest.raises(ShapeError, match=r"outputs \[784\].*8x8x1"):
        gan.check_generator_output(gan.fc_generator(), (8, 8, 1))
    assert gan.check_generator_output(gan.fc_generator(), (28, 28, 1)) == (784,)
