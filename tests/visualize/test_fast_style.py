"""Fast style transfer on tiny sizes: the network's shape contract, instance normalisation, the perceptual
loss falls, exact resume through the CLI, and SavedModel/TFLite exports that agree with Keras."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import cli
from cs231n_tf.data import photos
from cs231n_tf.errors import ConfigError
from cs231n_tf.visualize import fast_style
from cs231n_tf.visualize.fast_style import FastStyleConfig, load_transform, train, transform_net

TINY = dict(style="photo:coffee", image_size=32, crops=2, batch_size=2, filters=4, residual_blocks=1, lr=1e-2,
            log_every=1)
FLAGS = ["--style", "photo:coffee", "--image-size", "32", "--crops", "2", "--batch-size", "2", "--filters", "4",
         "--residual-blocks", "1", "--lr", "0.01", "--log-every", "1", "--checkpoint-every", "4"]


def quiet(_):
    pass


def test_transform_net_is_fully_convolutional_with_instance_norm():
    model = transform_net(filters=4, residual_blocks=2)
    x = np.random.default_rng(0).random((2, 20, 28, 3)).astype(np.float32)
    y = model(x).numpy()
    assert y.shape == x.shape and y.min() > 0 and y.max() < 1
    assert model(np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)).shape == (1, 32, 32, 3)
    # Instance norm: each image and channel is normalised on its own, so a batch-mate changes nothing.
    np.testing.assert_allclose(model(x[:1]).numpy(), y[:1], atol=1e-5)
    norm = model.get_layer("in_in")
    a = tf.keras.Model(model.input, norm.input)(x).numpy()
    want = (a - a.mean((1, 2), keepdims=True)) / np.sqrt(a.var((1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(tf.keras.Model(model.input, norm.output)(x).numpy(), want, atol=1e-4)
    # ... and equals Keras's GroupNormalization with one group per channel, with the same scale and offset.
    gamma, beta = np.linspace(0.5, 2, 4, dtype=np.float32), np.linspace(-1, 1, 4, dtype=np.float32)
    norm.set_weights([gamma, beta])
    keras_norm = tf.keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    keras_norm.build(a.shape)
    keras_norm.set_weights([gamma, beta])
    np.testing.assert_allclose(norm(a).numpy(), keras_norm(a).numpy(), atol=1e-4)


def test_config_refuses_bad_values():
    with pytest.raises(ConfigError, match="style image"):
        FastStyleConfig().validate()
    with pytest.raises(ConfigError, match="multiple of 4"):
        FastStyleConfig(style="photo:coffee", image_size=34).validate()
    with pytest.raises(ConfigError, match="content must be"):
        FastStyleConfig(style="photo:coffee", content="digits").validate()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fast") / "full")
    result = train(FastStyleConfig(**TINY, epochs=2, max_steps=8, checkpoint_every=4), out, log=quiet, progress=False)
    return out, result


def _weights(run_dir):
    return [w.copy() for w in load_transform(run_dir)[0].get_weights()]


@pytest.mark.slow
def test_perceptual_loss_falls(full_run):
    _, result = full_run
    losses = [h["train_loss"] for h in result.metrics["history"]]
    assert len(losses) == 2 and losses[1] < losses[0]
    last = result.metrics["history"][-1]
    assert last["train_loss"] == pytest.approx(last["train_content"] + last["train_style"] + last["train_tv"],
                                               rel=1e-4)


@pytest.mark.slow
def test_cli_resume_is_bit_exact_then_apply_and_export(full_run, tmp_path, capsys):
    full, _ = full_run
    part = str(tmp_path / "part")
    assert cli.main(["style", "train-fast", "--out", part, "--epochs", "2", "--max-steps", "4"] + FLAGS) == 0
    assert cli.main(["style", "train-fast", "--out", part, "--resume", "--epochs", "2", "--max-steps", "8"]
                    + FLAGS) == 0
    for a, b in zip(_weights(full), _weights(part)):
        np.testing.assert_array_equal(a, b)

    out = str(tmp_path / "apply")
    assert cli.main(["style", "apply", "--run", full, "--image", "photo:astronaut", "--max-side", "64",
                     "--out", out]) == 0
    report = json.load(open(os.path.join(out, "apply.json")))
    png = tf.io.decode_png(tf.io.read_file(report["stylized"])).numpy()
    assert png.shape == (64, 64, 3) and report["size"] == [64, 64]
    model, _ = load_transform(full)
    x = tf.image.resize(tf.cast(photos.load_photo("astronaut"), tf.float32), (64, 64), antialias=True).numpy()
    np.testing.assert_allclose(png / 255.0, fast_style.stylize(model, np.clip(x / 255.0, 0, 1)), atol=1.5 / 255)

    exports = str(tmp_path / "exports")
    assert cli.main(["export", "--run", full, "--out", exports]) == 0  # the generic export forwards to style
    assert cli.main(["style", "export", "--run", full, "--format", "tflite", "--out", exports]) == 0
    for name in ("saved_model.report.json", "model_none.tflite.report.json"):
        r = json.load(open(os.path.join(exports, name)))
        assert r["task"] == "fast_style" and r["examples"] >= 7
        assert r["max_abs_pixel_diff"] == pytest.approx(255 * r["max_abs_diff"]["stylized"])
        assert r["max_abs_pixel_diff"] < 0.5
    capsys.readouterr()
    assert cli.main(["style", "train-fast", "--out", part, "--resume"] + FLAGS + ["--lr", "0.1"]) == 2
    assert "lr" in capsys.readouterr().err
