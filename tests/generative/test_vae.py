"""Autoencoder and VAE: the ELBO's terms against closed forms and Monte Carlo, the task on the engine, the probe."""

import dataclasses
import json
import math
import os

import numpy as np
import pytest

import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from cs231n_tf.errors import ConfigError, RunDirError, ShapeError
from cs231n_tf.export import export_module
from cs231n_tf.generative import vae
from cs231n_tf.generative.autoencoder import (
    AutoencoderConfig, AutoencoderTask, linear_probe, load_models, sample, targets, train, write_manifold,
)
from cs231n_tf.generative.data import GANImages, load_images, quantize


def quiet(_):
    pass


@pytest.fixture(scope="module")
def small():
    data = load_images("digits")
    return GANImages(data.x_train[:256], data.y_train[:256], data.x_test[:64], data.y_test[:64], data.source)


def tiny(**overrides):
    return AutoencoderConfig(**{**dict(batch_size=32, epochs=1, log_every=10 ** 6, latent_dim=4, filters=4,
                                       hidden=16, binarize=True), **overrides})


def test_kl_closed_form_matches_formula_and_monte_carlo():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(3, 4)).astype(np.float32)
    log_var = rng.normal(scale=0.5, size=(3, 4)).astype(np.float32)
    kl = vae.gaussian_kl(mean, log_var).numpy()
    var = np.exp(log_var.astype(np.float64))
    formula = np.sum(0.5 * (var + mean.astype(np.float64) ** 2 - 1 - log_var), axis=1)
    np.testing.assert_allclose(kl, formula, rtol=1e-5)
    # KL(q || p) = E_q[log q(z) - log p(z)], estimated with 400k samples of q.
    z = mean[:, None] + np.sqrt(var)[:, None] * rng.standard_normal((3, 400_000, 4))
    log_q = -0.5 * np.sum((z - mean[:, None]) ** 2 / var[:, None] + np.log(2 * np.pi * var[:, None]), axis=-1)
    log_p = -0.5 * np.sum(z ** 2 + np.log(2 * np.pi), axis=-1)
    mc = np.mean(log_q - log_p, axis=1)
    stderr = np.std(log_q - log_p, axis=1) / np.sqrt(400_000)
    assert np.all(np.abs(mc - kl) < 4 * stderr + 1e-4), (mc, kl, stderr)
    assert vae.gaussian_kl(np.zeros((1, 5), np.float32), np.zeros((1, 5), np.float32)).numpy()[0] == 0.0


def test_bernoulli_nll_and_reparameterisation_gradients():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 3, 1))
    x = rng.uniform(size=(2, 3, 3, 1))
    p = 1 / (1 + np.exp(-logits))
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    np.testing.assert_allclose(vae.bernoulli_nll(logits, x).numpy(), expected, rtol=1e-5)
    mean, log_var = tf.Variable([[0.3, -1.0]]), tf.Variable([[0.2, -0.4]])
    eps = tf.constant([[1.5, -0.5]])
    with tf.GradientTape(persistent=True) as tape:
        z = vae.reparameterize(mean, log_var, eps)
        total = tf.reduce_sum(z)
    np.testing.assert_allclose(tape.gradient(total, mean).numpy(), [[1.0, 1.0]])
    np.testing.assert_allclose(tape.gradient(total, log_var).numpy(), 0.5 * np.exp(0.5 * log_var.numpy()) * eps.numpy(),
                               rtol=1e-6)


def test_interpolation_and_manifold_codes():
    line = vae.interpolate([0.0, 2.0], [1.0, 0.0], 5)
    np.testing.assert_allclose(line, [[0, 2], [0.25, 1.5], [0.5, 1], [0.75, 0.5], [1, 0]])
    codes = vae.manifold_codes(3)
    q = 1.6448536  # the standard normal's 0.95 quantile
    np.testing.assert_allclose(codes, [[-q, q], [0, q], [q, q], [-q, 0], [0, 0], [q, 0], [-q, -q], [0, -q], [q, -q]],
                               atol=1e-6)


def test_builders_for_the_8x8_and_28x28_digits():
    for side in (8, 28):
        encoder, decoder = vae.conv_encoder((side, side, 1), 6), vae.conv_decoder((side, side, 1), 3)
        assert encoder.output_shape == (None, 6) and decoder.output_shape == (None, side, side, 1)


def test_binarised_targets():
    x = np.array([-1.0, -0.01, 0.01, 1.0], np.float32)
    np.testing.assert_array_equal(targets(x, True), [0, 0, 1, 1])
    np.testing.assert_allclose(targets(x, False), (x + 1) / 2)
    np.testing.assert_array_equal(quantize(x, 256), [0, 126, 129, 255])


def test_one_step_loss_is_the_negative_elbo_and_metrics(tmp_path, small):
    task = AutoencoderTask(tiny(max_steps=1), images=small)
    from cs231n_tf.engine import Engine

    engine = Engine(task, None, log=quiet)
    x = targets(small.x_train, True)[np.random.default_rng([0, 0]).permutation(256)[:32]]
    eps = tf.random.stateless_normal([32, 4], seed=task._seed_value(0))
    mean, log_var = vae.split_moments(task.encoder(x))
    logits = task.decoder(vae.reparameterize(mean, log_var, eps))
    p = tf.sigmoid(logits).numpy().astype(np.float64)
    by_hand = (-np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
               + 0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1 - log_var, axis=1)).mean()
    engine.run()
    assert engine.last_logs["loss"].numpy() == pytest.approx(by_hand, rel=1e-4)


def weights(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "_CHECKPOINTABLE" not in k and not k.startswith("save_counter")}


def test_vae_resume_metrics_samples_and_export(tmp_path, small):
    config = tiny(epochs=2, latent_dim=2, checkpoint_every=3, sample_every=6, sample_count=4)
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    result = train(dataclasses.replace(config, max_steps=6), full, images=small, log=quiet, progress=False)
    train(dataclasses.replace(config, max_steps=3), part, images=small, log=quiet, progress=False)
    train(dataclasses.replace(config, max_steps=6), part, resume=True, images=small, log=quiet, progress=False)
    a, b = weights(full), weights(part)
    assert len(a) > 10
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    m = json.load(open(os.path.join(full, "metrics.json")))
    assert m["test_neg_elbo_nats"] == pytest.approx(m["test_reconstruction_nats"] + m["test_kl_nats"])
    assert m["test_bits_per_dim"] == pytest.approx(m["test_neg_elbo_nats"] / (64 * math.log(2)))
    # The same number from the restored models and the task's fixed test eps.
    cfg, encoder, decoder = load_models(full)
    x = targets(small.x_test, True)
    eps = np.random.default_rng([0, 1]).standard_normal((64, 2)).astype(np.float32)
    mean, log_var = vae.split_moments(encoder(x))
    rec, kl = vae.negative_elbo(decoder(vae.reparameterize(mean, log_var, eps)), x, mean, log_var)
    assert m["test_neg_elbo_nats"] == pytest.approx(float(np.mean(rec + kl)), rel=1e-5)
    assert os.listdir(os.path.join(full, "samples")) == ["step-0000006.png"]
    out = sample(full, 6, str(tmp_path / "s"), seed=1)
    assert tf.io.decode_png(tf.io.read_file(out)).shape == (16, 24, 1)
    assert tf.io.decode_png(tf.io.read_file(str(tmp_path / "s" / "manifold.png"))).shape == (80, 80, 1)
    assert tf.io.decode_png(tf.io.read_file(str(tmp_path / "s" / "interpolation.png"))).shape == (40, 64, 1)
    module = result.task.serving_module()
    z = np.random.default_rng(2).normal(size=(3, 2)).astype(np.float32)
    report = export_module(module, str(tmp_path / "saved_model"), {"latent": z})
    assert report["max_abs_diff"]["images"] < 1e-6
    np.testing.assert_allclose(module.serve(z)["images"].numpy(), result.task.decode(z), atol=1e-6)


def test_autoencoder_codes_and_bad_inputs(tmp_path, small):
    run = str(tmp_path / "ae")
    result = train(tiny(model="ae", max_steps=2), run, images=small, log=quiet, progress=False)
    assert "test_bits_per_dim" not in result.metrics and result.metrics["test_reconstruction_nats"] > 0
    codes = result.task.encode(small.x_test[:5])
    np.testing.assert_allclose(codes, result.task.encoder(targets(small.x_test[:5], True)).numpy(), atol=1e-6)
    with pytest.raises(ConfigError, match="no prior"):
        sample(run, 4, str(tmp_path / "s"))
    with pytest.raises(ConfigError, match="latent_dim"):
        tiny(latent_dim=0).validate()
    with pytest.raises(ShapeError, match="multiples of 4"):
        vae.conv_encoder((6, 6, 1), 4)
    with pytest.raises(ConfigError, match="2-D"):
        write_manifold(result.task.decoder, 3, str(tmp_path / "m.png"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"task": "gan", "config": {}}')
    with pytest.raises(RunDirError, match="'gan' run"):
        load_models(str(other))


def test_linear_probe_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    centres = np.array([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = rng.integers(0, 3, 90)
    x = centres[y] + rng.normal(size=(90, 2))
    assert linear_probe(x[:60], y[:60], x[60:], y[60:]) == 1.0
    noisy = x + rng.normal(scale=3.0, size=x.shape)
    scaler = StandardScaler().fit(noisy[:60])
    clf = LogisticRegression(max_iter=5000).fit(scaler.transform(noisy[:60]), y[:60])
    expected = float(np.mean(clf.predict(scaler.transform(noisy[60:])) == y[60:]))
    assert linear_probe(noisy[:60], y[:60], noisy[60:], y[60:]) == expected
