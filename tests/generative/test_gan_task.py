"""The GAN task on the engine: alternating updates, exact resume, NaN guard, sample grids, export."""

import dataclasses
import json
import os

import numpy as np
import pytest

import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from cs231n_tf.engine import Engine
from cs231n_tf.errors import ConfigError, NonFiniteLossError, RunDirError, ShapeError
from cs231n_tf.export import export_module
from cs231n_tf.export.exporter import export_signature_tflite
from cs231n_tf.generative import gan, losses
from cs231n_tf.generative.data import GANImages, load_images
from cs231n_tf.generative.task import GANConfig, GANTask, load_generator, sample, train


def quiet(_):
    pass


@pytest.fixture(scope="module")
def images():
    data = load_images("digits28")
    return GANImages(data.x_train[:256], data.y_train[:256], data.x_test[:64], data.y_test[:64], data.source)


def tiny(**overrides):
    return GANConfig(**{**dict(batch_size=32, epochs=2, log_every=10 ** 6, noise_dim=8, frechet=False), **overrides})


def weights(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "_CHECKPOINTABLE" not in k and not k.startswith("save_counter")}


def test_digits28_view_in_signed_range():
    data = load_images("digits28")
    assert data.image_shape == (28, 28, 1) and data.x_train.dtype == np.float32
    assert data.x_train.min() == -1.0 and data.x_train.max() == 1.0
    small = load_images("digits")
    assert small.image_shape == (8, 8, 1) and len(small.x_train) == len(data.x_train)
    # Resizing a constant image keeps it constant: the view is the same digits, only larger.
    np.testing.assert_allclose(tf.image.resize(small.x_train[:3], (28, 28)).numpy(), data.x_train[:3], atol=1e-6)


def test_one_step_is_one_d_update_then_one_g_update(images):
    task = GANTask(tiny(max_steps=1), images=images)
    engine = Engine(task, None, log=quiet)
    d0 = [v.numpy() for v in task.discriminator.trainable_variables]
    g0 = [v.numpy() for v in task.generator.trainable_variables]
    real = images.x_train[np.random.default_rng([0, 0]).permutation(256)[:32]]
    z_d = gan.sample_noise(32, 8, seed=task._seed_value(0, 0))
    expected_d = losses.discriminator_loss(task.discriminator(real.reshape(32, 784), training=True),
                                           task.discriminator(task.generator(z_d, training=True), training=True))
    engine.run()
    assert int(task.d_optimizer.iterations.numpy()) == int(task.g_optimizer.iterations.numpy()) == 1
    assert all(np.abs(a - v.numpy()).max() > 0 for a, v in zip(d0, task.discriminator.trainable_variables))
    assert all(np.abs(a - v.numpy()).max() > 0 for a, v in zip(g0, task.generator.trainable_variables))
    assert engine.last_logs["d_loss"].numpy() == pytest.approx(expected_d.numpy(), rel=1e-5)


@pytest.fixture(scope="module")
def small():
    return load_images("digits")


@pytest.mark.parametrize("loss,model", [("gan", "dcgan"), ("lsgan", "dcgan"), ("wgan_gp", "fc")])
def test_losses_and_models_train_finite(images, small, loss, model):
    data = images if model == "fc" else small
    result = train(tiny(loss=loss, model=model, max_steps=3, base_filters=4), images=data, log=quiet,
                   progress=False)
    m = result.metrics
    assert m["steps"] == 3 and np.isfinite(m["history"][-1]["train_d_loss"] if m["history"] else 0)


def test_resume_equals_uninterrupted_and_writes_grids(tmp_path, small):
    images = small
    config = tiny(epochs=1, model="dcgan", base_filters=4, checkpoint_every=4, sample_every=4, sample_count=9)
    full = str(tmp_path / "full")
    train(dataclasses.replace(config, max_steps=8), full, images=images, log=quiet, progress=False)
    part = str(tmp_path / "part")
    train(dataclasses.replace(config, max_steps=4), part, images=images, log=quiet, progress=False)
    train(dataclasses.replace(config, max_steps=8), part, resume=True, images=images, log=quiet, progress=False)
    a, b = weights(full), weights(part)
    assert len(a) > 20
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    grids = sorted(os.listdir(os.path.join(full, "samples")))
    assert grids == ["step-0000004.png", "step-0000008.png"]
    png = tf.io.decode_png(tf.io.read_file(os.path.join(full, "samples", grids[-1]))).numpy()
    assert png.shape == (3 * 8, 3 * 8, 1)
    # The grid is the generator's output for the hook's fixed noise.
    module = load_generator(full)
    expected = module.serve(gan.sample_noise(9, 8, seed=0))["images"].numpy()
    top_left = np.round((expected[0] + 1) * 127.5)
    np.testing.assert_allclose(png[:8, :8].astype(np.float32), top_left, atol=1)
    out = sample(full, 4, str(tmp_path / "samples"), seed=3)
    assert tf.io.decode_png(tf.io.read_file(out)).shape == (16, 16, 1)


def test_nan_guard_stops_with_last_good_checkpoint(tmp_path, small):
    # A NaN image in the third batch of epoch 1 (the task's order: permutation of rng([seed, epoch])).
    x = small.x_train.copy()
    x[np.random.default_rng([0, 0]).permutation(len(x))[2 * 32]] = np.nan
    poisoned = GANImages(x, small.y_train, small.x_test, small.y_test, "poisoned")
    with pytest.raises(NonFiniteLossError) as info:
        train(tiny(epochs=20, checkpoint_every=1, model="dcgan", base_filters=4), str(tmp_path / "run"),
              images=poisoned, log=quiet, progress=False)
    assert info.value.step == 3
    assert info.value.last_good_checkpoint.endswith("ckpt-2")
    for name, value in weights(str(tmp_path / "run")).items():
        if value.dtype.kind == "f":
            assert np.all(np.isfinite(value)), name


def test_bad_inputs(tmp_path, small):
    with pytest.raises(ShapeError, match="8x8x1"):
        train(tiny(model="fc"), images=small, log=quiet, progress=False)
    with pytest.raises(ConfigError, match="noise_dim"):
        tiny(noise_dim=0).validate()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"task": "charrnn", "config": {}}')
    with pytest.raises(RunDirError, match="'charrnn' run"):
        load_generator(str(other))


def test_generator_export_saved_model_and_tflite(tmp_path, small):
    result = train(tiny(max_steps=2, model="dcgan", data="digits", base_filters=4), images=small,
                   log=quiet, progress=False)
    module = result.task.serving_module()
    noise = gan.sample_noise(6, 8, seed=11).numpy()
    report = export_module(module, str(tmp_path / "saved_model"), {"noise": noise})
    assert report["max_abs_diff"]["images"] < 1e-6
    served = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    np.testing.assert_allclose(served(noise=tf.constant(noise))["images"].numpy(),
                               result.task.generate(noise).numpy(), atol=1e-6)
    lite = export_signature_tflite(module, module.serve, str(tmp_path / "generator.tflite"), {"noise": noise})
    assert lite["max_abs_diff"]["images"] < 1e-4


def test_cli_train_sample_and_one_line_errors(tmp_path, capsys):
    from cs231n_tf import cli

    run = str(tmp_path / "run")
    tiny_flags = ["--data", "digits", "--batch-size", "64", "--noise-dim", "8", "--base-filters", "4", "--no-frechet"]
    assert cli.main(["generate", "train", "--model", "dcgan", *tiny_flags, "--max-steps", "3", "--out", run]) == 0
    assert cli.main(["generate", "train", "--model", "dcgan", "--out", run, "--resume", "--max-steps", "4"]) == 0
    assert int(tf.train.latest_checkpoint(os.path.join(run, "checkpoints")).rsplit("-", 1)[1]) == 4
    assert cli.main(["generate", "sample", "--run", run, "--num", "5", "--out", str(tmp_path / "s")]) == 0
    assert tf.io.decode_png(tf.io.read_file(str(tmp_path / "s" / "samples.png"))).shape == (16, 24, 1)  # 5 images: 2 rows of 3
    capsys.readouterr()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"task": "charrnn", "config": {}}')
    for argv in (["generate", "train", "--data", "digits", "--noise-dim", "0", "--out", str(tmp_path / "a")],
                 ["generate", "train", "--model", "gan", "--data", "digits", "--out", str(tmp_path / "b")],
                 ["generate", "sample", "--run", str(other), "--out", str(tmp_path / "c")]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("cs231n-tf generate"), err
    # The generic evaluate/export read the run's task and say which family opens it.
    assert cli.main(["evaluate", "--run", str(other)]) == 2
    assert capsys.readouterr().err.strip() == ("cs231n-tf evaluate: a 'charrnn' run has no evaluate; its command is "
                                               "`cs231n-tf charrnn` (train|sample|export)")
    (other / "config.json").write_text('{"task": "nonsense"}')
    assert cli.main(["export", "--run", str(other)]) == 2
    assert capsys.readouterr().err.strip() == "cs231n-tf export: no command opens 'nonsense' runs"


def test_frechet_distance_in_metrics(tmp_path, small):
    from cs231n_tf.generative.frechet import feature_classifier, frechet_distance

    run = str(tmp_path / "run")
    result = train(tiny(max_steps=2, model="dcgan", base_filters=4, frechet=True, frechet_epochs=1), run,
                   images=small, log=quiet, progress=False)
    fd = json.load(open(os.path.join(run, "metrics.json")))["frechet_distance"]
    assert fd == result.metrics["frechet_distance"] and fd > 0
    # The same number from the pieces: the same classifier (same seed), the generator's samples.
    features, classifier = feature_classifier(small.x_train, small.y_train, seed=0, epochs=1)
    assert (classifier.predict(small.x_test, verbose=0).argmax(1) == small.y_test).mean() > 0.5
    fake = result.task.generate(gan.sample_noise(len(small.x_test), 8, seed=7919)).numpy()
    expected = frechet_distance(features.predict(small.x_test, verbose=0), features.predict(fake, verbose=0))
    assert fd == pytest.approx(expected, rel=1e-3)
    # Real held-out digits are far closer to the test split than an untrained generator's output.
    assert frechet_distance(features.predict(small.x_test, verbose=0),
                            features.predict(small.x_train[:len(small.x_test)], verbose=0)) < fd


@pytest.mark.parametrize("settings", [dict(strategy="mirrored"), dict(mixed_precision="mixed_float16")])
def test_strategies_and_mixed_precision_come_from_the_engine(small, settings):
    result = train(tiny(max_steps=2, model="dcgan", base_filters=4, **settings), images=small, log=quiet,
                   progress=False)
    task = result.task
    assert result.metrics["steps"] == 2 and np.isfinite(result.task.d_metric.result().numpy())
    if "strategy" in settings:
        assert result.metrics["replicas"] == 2
    else:
        assert isinstance(task.d_optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        assert isinstance(task.g_optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        assert task.generator.layers[2].compute_dtype == "float16"
        assert task.generate(gan.sample_noise(2, 8, seed=0)).dtype == tf.float32
