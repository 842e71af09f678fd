"""The library upsampling layers equal the tier-1 ops (values and gradients) and TensorFlow's own."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.ops import upsample as tier1
from cs231n_tf.segmentation.layers import BedOfNails, MaxPoolWithArgmax, MaxUnpooling, upsample

RNG = np.random.default_rng(0)


def _values_and_grads(fn, *xs, seed=1):
    """``fn(*xs)`` and the gradients of ``sum(fn * r)`` for a fixed random ``r``, per input."""
    xs = [tf.constant(x) for x in xs]
    with tf.GradientTape() as tape:
        tape.watch(xs)
        out = fn(*xs)
        r = tf.constant(np.random.default_rng(seed).normal(size=out.shape), out.dtype)
        loss = tf.reduce_sum(out * r)
    return out.numpy(), [g.numpy() for g in tape.gradient(loss, xs)]


def test_nearest_equals_tier1_values_and_gradients():
    x = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    layer = tf.keras.layers.UpSampling2D(3, interpolation="nearest")
    a, (ga,) = _values_and_grads(layer, x)
    b, (gb,) = _values_and_grads(lambda t: tier1.nearest_upsample(t, 3), x)
    assert a.shape == (2, 9, 12, 5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(ga, gb, rtol=1e-6, atol=1e-6)


def test_bed_of_nails_equals_tier1_values_and_gradients():
    x = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    a, (ga,) = _values_and_grads(BedOfNails(2), x)
    b, (gb,) = _values_and_grads(lambda t: tier1.bed_of_nails_upsample(t, 2), x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ga, gb)
    np.testing.assert_array_equal(a[:, ::2, ::2], x)
    assert (a[:, 1::2] == 0).all() and (a[:, :, 1::2] == 0).all()
    assert BedOfNails(2).compute_output_shape((None, 3, 4, 5)).as_list() == [None, 6, 8, 5]


@pytest.mark.parametrize("size,stride,hw", [(2, 2, (8, 6)), (3, 2, (7, 9))])
def test_pool_switches_equal_tier1_and_unpooling_equals_tier1(size, stride, hw):
    x = RNG.normal(size=(2, *hw, 3)).astype(np.float32)  # continuous values: no ties
    pooled, argmax = MaxPoolWithArgmax(size, stride)(x)
    t_pooled, t_argmax = tier1.max_pool_with_argmax(x, size, size, stride)
    np.testing.assert_array_equal(pooled.numpy(), t_pooled.numpy())
    np.testing.assert_array_equal(argmax.numpy(), t_argmax.numpy())
    # The batch is in the index: image 1's indices lie in its own block of the flattened batch.
    assert argmax.numpy()[1].min() >= np.prod(x.shape[1:]) and argmax.numpy().max() < x.size
    y = RNG.normal(size=pooled.shape).astype(np.float32)
    a, (ga,) = _values_and_grads(lambda t: MaxUnpooling()([t, argmax, tf.constant(x)]), y)
    b, (gb,) = _values_and_grads(lambda t: tier1.max_unpool(t, t_argmax, x.shape), y)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)  # overlapping windows add up in both
    np.testing.assert_allclose(ga, gb, rtol=1e-6)
    # The pooling gradient reaches the maxima only, as tier 1's max pool.
    _, (gp,) = _values_and_grads(lambda t: MaxPoolWithArgmax(size, stride)(t)[0], x)
    _, (gt,) = _values_and_grads(lambda t: tier1.max_pool_with_argmax(t, size, size, stride)[0], x)
    np.testing.assert_allclose(gp, gt, rtol=1e-6, atol=1e-6)


def test_unpooling_puts_the_maxima_back_where_they_were():
    x = RNG.normal(size=(1, 4, 4, 2)).astype(np.float32)
    pooled, argmax = MaxPoolWithArgmax(2)(x)
    out = MaxUnpooling()([pooled, argmax, tf.constant(x)]).numpy()
    window_max = x.reshape(1, 2, 2, 2, 2, 2).max(axis=(2, 4))
    expected = np.where(x == np.repeat(np.repeat(window_max, 2, 1), 2, 2), x, 0)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("stride,padding,pad", [(2, "same", 1), (2, "valid", 0), (3, "valid", 0)])
def test_transposed_convolution_equals_tier1(stride, padding, pad):
    x = RNG.normal(size=(2, 4, 5, 3)).astype(np.float32)
    kernel = 4 if padding == "same" else 3
    layer = tf.keras.layers.Conv2DTranspose(6, kernel, strides=stride, padding=padding,
                                            bias_initializer="random_normal")
    layer.build(x.shape)
    w, b = layer.kernel.numpy(), layer.bias.numpy()
    assert w.shape == (kernel, kernel, 6, 3)  # the layout tier 1 takes: (KH, KW, C_out, C_in)
    a, (ga,) = _values_and_grads(layer, x)
    c, (gc, gw, gb) = _values_and_grads(lambda t, k, bias: tier1.conv2d_transpose(t, k, bias, stride, pad), x, w, b)
    np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ga, gc, rtol=1e-4, atol=1e-4)
    with tf.GradientTape() as tape:
        out = layer(tf.constant(x))
        loss = tf.reduce_sum(out * tf.constant(np.random.default_rng(1).normal(size=out.shape), tf.float32))
    dw, db = tape.gradient(loss, [layer.kernel, layer.bias])
    np.testing.assert_allclose(dw.numpy(), gw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db.numpy(), gb, rtol=1e-4, atol=1e-4)


def test_bilinear_matches_half_pixel_closed_form():
    x = RNG.normal(size=(1, 3, 4, 2)).astype(np.float32)
    out = tf.keras.layers.UpSampling2D(2, interpolation="bilinear")(x).numpy()

    def weights(n, factor):  # output pixel i samples input coordinate (i + 0.5) / factor - 0.5, clamped
        m = np.zeros((n * factor, n))
        for i in range(n * factor):
            s = min(max((i + 0.5) / factor - 0.5, 0), n - 1)
            lo = int(np.floor(s))
            hi = min(lo + 1, n - 1)
            m[i, lo] += 1 - (s - lo)
            m[i, hi] += s - lo
        return m

    expected = np.einsum("ih,jw,nhwc->nijc", weights(3, 2), weights(4, 2), x)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_upsample_builder_checks_its_kind():
    from cs231n_tf.errors import ConfigError

    with pytest.raises(ConfigError, match="upsampling 'cubic'"):
        upsample(tf.keras.Input((4, 4, 1)), "cubic")
    with pytest.raises(ConfigError, match="filters"):
        upsample(tf.keras.Input((4, 4, 1)), "transposed")
