"""Lecture 7's regularisers as options of the basic builders: DropConnect, max-norm, fractional pooling.

The options must add no parameters, keep the defaults exactly as they were, reach the package's
trainer and CLI, and (for max-norm) really be enforced by the optimizer after every step.
"""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import cli, models
from cs231n_tf.errors import ConfigError
from cs231n_tf.export import export_run
from cs231n_tf.models import complexity
from cs231n_tf.models.regularization import DropConnect, FractionalMaxPool2D
from cs231n_tf.train.trainer import train
from cs231n_tf.train.evaluate import load_run

DIGITS = (8, 8, 1)
MAX_NORM_BUILDERS = ("two_layer_net", "fc_net", "three_layer_convnet", "lenet5", "lenet300_100", "small_convnet")
KERNEL_LAYERS = (tf.keras.layers.Dense, tf.keras.layers.Conv2D)


def kernel_layers(model):
    return [layer for layer in model.layers if isinstance(layer, KERNEL_LAYERS)]


def unit_norms(layer):
    """L2 norm of each unit's incoming weights: over all kernel axes but the last."""
    w = layer.kernel.numpy()
    return np.sqrt((w.reshape(-1, w.shape[-1]) ** 2).sum(0))


@pytest.mark.parametrize("name", MAX_NORM_BUILDERS)
def test_defaults_have_no_constraint_and_max_norm_adds_no_parameters(name):
    plain = models.build(name, DIGITS, 10)
    limited = models.build(name, DIGITS, 10, max_norm=2.5)
    assert limited.count_params() == plain.count_params()
    assert [type(layer) for layer in limited.layers] == [type(layer) for layer in plain.layers]
    assert all(layer.kernel_constraint is None for layer in kernel_layers(plain))
    constrained = kernel_layers(limited)
    assert len(constrained) >= 2
    for layer in constrained:
        c = layer.kernel_constraint
        assert isinstance(c, tf.keras.constraints.MaxNorm) and c.max_value == 2.5
        # One unit = one output column: every kernel axis but the last.
        assert list(np.atleast_1d(c.axis)) == list(range(layer.kernel.shape.rank - 1))


def test_max_norm_constraint_projects_each_unit_like_the_closed_form():
    model = models.build("three_layer_convnet", DIGITS, 10, num_filters=4, filter_size=3, hidden_dim=8, max_norm=0.5)
    for layer in kernel_layers(model):
        w = layer.kernel.numpy()
        norms = unit_norms(layer)
        expected = w * np.minimum(1.0, 0.5 / norms)  # w * min(1, c / ||w_j||) for each unit j
        np.testing.assert_allclose(layer.kernel_constraint(layer.kernel).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_fc_net_dropconnect_replaces_hidden_layers_without_new_parameters():
    plain = models.build("fc_net", DIGITS, 10, hidden_dims=[16, 12])
    dc = models.build("fc_net", DIGITS, 10, hidden_dims=[16, 12], dropconnect=0.3)
    hidden = [layer for layer in dc.layers if isinstance(layer, DropConnect)]
    assert [layer.name for layer in hidden] == ["fc1", "fc2"]
    assert all(layer.keep_probability == pytest.approx(0.7) for layer in hidden)  # drop rate 0.3 = keep 0.7
    assert type(dc.get_layer("logits")) is tf.keras.layers.Dense
    assert dc.count_params() == plain.count_params() == 64 * 16 + 16 + 16 * 12 + 12 + 12 * 10 + 10
    assert not any(isinstance(layer, DropConnect) for layer in plain.layers)
    # With batchnorm the hidden DropConnect layers drop their bias like the plain affine layers do.
    bn_plain = models.build("fc_net", DIGITS, 10, hidden_dims=[16], normalization="batchnorm")
    bn_dc = models.build("fc_net", DIGITS, 10, hidden_dims=[16], normalization="batchnorm", dropconnect=0.5)
    assert bn_dc.count_params() == bn_plain.count_params() and not bn_dc.get_layer("fc1").use_bias

    # Test time: the plain network with the same weights; training: weights are masked at random.
    dc.set_weights(plain.get_weights())
    x = tf.random.stateless_normal((5, *DIGITS), seed=(1, 2))
    np.testing.assert_allclose(dc(x, training=False).numpy(), plain(x, training=False).numpy(), rtol=1e-5, atol=1e-5)
    assert np.abs(dc(x, training=True).numpy() - plain(x).numpy()).max() > 1e-3


def test_three_layer_convnet_fractional_pooling_shapes_and_counts():
    f, hidden = 4, 8
    model = models.build("three_layer_convnet", DIGITS, 10, num_filters=f, filter_size=3, hidden_dim=hidden,
                         pooling="fractional")
    pool = model.get_layer("pool1")
    assert isinstance(pool, FractionalMaxPool2D) and pool.pooling_ratio == pytest.approx(math.sqrt(2))
    side = int(8 / math.sqrt(2))  # floor(8 / sqrt 2) = 5, where 2x2 pooling gives 4
    assert side == 5 and tuple(pool.output.shape) == (None, side, side, f)
    assert model.count_params() == (3 * 3 * 1 * f + f) + (side * side * f * hidden + hidden) + (hidden * 10 + 10)
    # Canonical 32x32x3 input: 22x22 after fractional pooling instead of 16x16.
    big = models.build("three_layer_convnet", pooling="fractional")
    assert big.count_params() == (7 * 7 * 3 * 32 + 32) + (22 * 22 * 32 * 100 + 100) + (100 * 10 + 10)

    prof = complexity.profile(model)
    assert prof.unknown_layers == ()
    assert prof.params == model.count_params()
    assert prof.multiply_adds == 8 * 8 * 3 * 3 * 1 * f + side * side * f * hidden + hidden * 10

    # Deterministic at test time, random regions while training.
    x = tf.random.stateless_normal((3, *DIGITS), seed=(3, 4))
    np.testing.assert_array_equal(model(x, training=False).numpy(), model(x, training=False).numpy())
    reference = model(x, training=False).numpy()
    assert any(np.abs(model(x, training=True).numpy() - reference).max() > 1e-6 for _ in range(5))


def test_small_convnet_fractional_pooling_keeps_parameter_count():
    plain = models.build("small_convnet", DIGITS, 10, width=8)
    frac = models.build("small_convnet", DIGITS, 10, width=8, pooling="fractional")
    assert frac.count_params() == plain.count_params()
    assert tuple(frac.get_layer("pool1").output.shape[1:3]) == (5, 5)  # floor(8 / sqrt 2)
    assert tuple(frac.get_layer("pool2").output.shape[1:3]) == (3, 3)  # floor(5 / sqrt 2)
    assert tuple(plain.get_layer("pool2").output.shape[1:3]) == (2, 2)
    plain_prof, frac_prof = complexity.profile(plain), complexity.profile(frac)
    assert frac_prof.unknown_layers == () and frac_prof.params == plain_prof.params
    # The second stage's convolutions see 5x5 maps instead of 4x4: 25/16 of their multiply-adds.
    stage2 = lambda p: sum(r.multiply_adds for r in p.layers if r.name.startswith("conv2_"))  # noqa: E731
    assert stage2(frac_prof) * 16 == stage2(plain_prof) * 25


def test_dropconnect_model_profiles_like_plain_model():
    plain = complexity.profile(models.build("fc_net", DIGITS, 10, hidden_dims=[32]))
    dc = complexity.profile(models.build("fc_net", DIGITS, 10, hidden_dims=[32], dropconnect=0.5))
    assert dc.unknown_layers == ()
    assert (dc.params, dc.multiply_adds) == (plain.params, plain.multiply_adds) == (64 * 32 + 32 + 330, 64 * 32 + 320)


@pytest.mark.parametrize("name, options, match", [
    ("fc_net", {"dropconnect": 1.0}, r"dropconnect must be in \[0, 1\), got 1.0"),
    ("fc_net", {"dropconnect": -0.1}, "dropconnect"),
    ("fc_net", {"dropconnect": "lots"}, r"dropconnect must be a number in \[0, 1\), got 'lots'"),
    ("fc_net", {"max_norm": 0}, "max_norm must be None or a positive finite number, got 0"),
    ("two_layer_net", {"max_norm": -1.0}, "max_norm"),
    ("lenet300_100", {"max_norm": float("inf")}, "max_norm"),
    ("small_convnet", {"max_norm": "big"}, "max_norm.*'big'"),
    ("lenet5", {"max_norm": True}, "max_norm"),
    ("three_layer_convnet", {"pooling": "avg"}, "pooling must be 'max' or 'fractional', got 'avg'"),
    ("small_convnet", {"pooling": "fractonal"}, "pooling must be 'max' or 'fractional', got 'fractonal'"),
    ("lenet5", {"pooling": "fractional"}, "pooling must be 'avg' or 'max', got 'fractional'"),
    ("two_layer_net", {"dropconnect": 0.5}, "does not accept option.*dropconnect"),
])
def test_bad_option_values_raise_config_error(name, options, match):
    with pytest.raises(ConfigError, match=match):
        models.build(name, DIGITS, 10, **options)


@pytest.mark.parametrize("model, options, strategy", [
    ("fc_net", {"hidden_dims": [32, 16], "dropconnect": 0.3, "max_norm": 0.5}, "default"),
    ("three_layer_convnet", {"num_filters": 4, "filter_size": 3, "hidden_dim": 16, "pooling": "fractional",
                             "max_norm": 0.5}, "mirrored"),
])
def test_trainer_enforces_max_norm_after_every_step(tmp_path, model, options, strategy):
    # he_normal units start with norm ~sqrt(2) > 0.5, so the bound is active from the first step.
    result = train(run_dir=str(tmp_path / "run"), model=model, model_options=options, epochs=1, batch_size=32,
                   optimizer="sgd", lr=0.05, max_steps=8, strategy=strategy)
    assert result.metrics["steps"] == 8 and np.isfinite(result.metrics["final_train_loss"])
    loaded = load_run(str(tmp_path / "run")).model
    for trained in (result.model, loaded):
        layers = kernel_layers(trained)
        assert len(layers) == 3
        for layer in layers:
            norms = unit_norms(layer)
            assert norms.max() <= 0.5 + 1e-6, layer.name
            # Active: the largest unit sits at the bound (projected; the last step may pull it
            # slightly inside), far below the ~1.4 of an unconstrained he_normal unit.
            assert norms.max() >= 0.49, layer.name
    # Without the option the same run leaves units far above 0.5.
    free = train(run_dir=str(tmp_path / "free"), model=model, model_options={**options, "max_norm": None}, epochs=1,
                 batch_size=32, optimizer="sgd", lr=0.05, max_steps=8, strategy=strategy)
    assert max(unit_norms(layer).max() for layer in kernel_layers(free.model)) > 1.0


def test_cli_train_with_dropconnect_model_option(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "--model", "fc_net", "--model-option", "dropconnect=0.3",
                     "--model-option", "hidden_dims=[32]", "--model-option", "max_norm=2",
                     "--epochs", "1", "--max-steps", "5", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "done: test_accuracy=" in capsys.readouterr().out
    run = load_run(str(out))
    assert run.config.model_options == {"dropconnect": 0.3, "hidden_dims": [32], "max_norm": 2}
    fc1 = run.model.get_layer("fc1")
    assert isinstance(fc1, DropConnect) and fc1.keep_probability == pytest.approx(0.7)
    assert fc1.kernel_constraint.max_value == 2.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 5

    # A bad value is a user mistake: exit 2 and one line naming the option, no traceback.
    code = cli.main(["train", "--model", "three_layer_convnet", "--model-option", "pooling=avg",
                     "--epochs", "1", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2
    assert "pooling must be 'max' or 'fractional', got 'avg'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_fractional_pooling_run_exports_to_saved_model(tmp_path):
    run_dir = str(tmp_path / "run")
    train(run_dir=run_dir, model="small_convnet", model_options={"width": 8, "pooling": "fractional"}, epochs=1,
          batch_size=64, max_steps=5)
    report = export_run(run_dir, format="saved_model", out=str(tmp_path / "export"))
    # The SavedModel's serving graph uses the fixed test-time regions: the same logits as Keras.
    assert report["max_abs_diff"] < 1e-4 and report["prediction_agreement"] == 1.0
    loaded = tf.saved_model.load(str(tmp_path / "export" / "saved_model"))
    sig = loaded.signatures["serving_default"]
    images = tf.random.stateless_uniform((4, *DIGITS), seed=(5, 6))
    first, second = sig(images=images)["logits"].numpy(), sig(images=images)["logits"].numpy()
    np.testing.assert_array_equal(first, second)
