"""Transfer learning: block grouping, freezing, linear probes and the finetune run (digits 0-5 -> 6-9)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import cli, models
from cs231n_tf.data import sources
from cs231n_tf.errors import ConfigError, RunDirError, ShapeError
from cs231n_tf.train import transfer
from cs231n_tf.train.evaluate import evaluate_run, load_run
from cs231n_tf.train.trainer import train

SMALL = dict(model="small_convnet", model_options={"width": 8, "dropout": 0.0}, batch_size=32, lr=3e-3,
             log_every=1000)


def quiet(*_):
    pass


def _task_npz(path, classes, pad=0):
    """Digits of ``classes`` relabelled 0..k-1, 75/25 train/test, as uint8 images in an npz."""
    raw = sources.load_digits()
    keep = np.isin(raw.y_train, classes)
    x = np.round(raw.x_train[keep] * (255 / 16)).astype(np.uint8)
    y = np.searchsorted(np.asarray(classes), raw.y_train[keep])
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    order = np.random.default_rng(0).permutation(len(x))
    cut = len(x) * 3 // 4
    np.savez(path, x_train=x[order[:cut]], y_train=y[order[:cut]], x_test=x[order[cut:]], y_test=y[order[cut:]])
    return f"npz:{path}"


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    source = _task_npz(root / "source.npz", [0, 1, 2, 3, 4, 5])
    target = _task_npz(root / "target.npz", [6, 7, 8, 9])
    run = str(root / "source_run")
    # Enough steps for the batchnorm moving statistics (momentum 0.99) to settle: they are kept.
    train(run_dir=run, dataset=source, epochs=5, **SMALL)
    return {"root": root, "source": source, "target": target, "run": run}


@pytest.fixture(scope="module")
def finetuned(tasks):
    out = str(tasks["root"] / "finetuned")
    result = transfer.finetune(tasks["run"], tasks["target"], out, head_epochs=2, unfreeze_blocks=1,
                               finetune_epochs=1, lr=0.03, finetune_lr=1e-3, log=quiet)
    return out, result


def _layer_weights(model, name):
    return [w.numpy() for w in model.get_layer(name).weights]


def _checkpoints(run_dir):
    return tf.train.get_checkpoint_state(f"{run_dir}/checkpoints").all_model_checkpoint_paths


def test_blocks_group_named_units_and_normalisation():
    small = models.build("small_convnet", (8, 8, 1), 10)
    assert [(n, [l.name for l in ls]) for n, ls in transfer.blocks(small)] == [
        ("conv1_1", ["conv1_1", "bn1_1"]), ("conv1_2", ["conv1_2", "bn1_2"]),
        ("conv2_1", ["conv2_1", "bn2_1"]), ("conv2_2", ["conv2_2", "bn2_2"])]
    assert transfer.head_layer(small).name == "logits"
    resnet = models.build("resnet20", (8, 8, 3), 10)
    names = [n for n, _ in transfer.blocks(resnet)]
    # The stem, then 3 stages of 3 residual blocks (CIFAR ResNet-20, He et al. 2016).
    assert names == ["conv1_conv"] + [f"conv{s}_block{b}" for s in (2, 3, 4) for b in (1, 2, 3)]
    assert [l.name for l in transfer.blocks(resnet)[1][1]][:2] == ["conv2_block1_1_conv", "conv2_block1_1_bn"]
    assert [n for n, _ in transfer.blocks(models.build("lenet5", (8, 8, 1), 10))] == ["c1", "c3", "c5", "f6"]
    # SqueezeNet's head is a convolution (conv10), its blocks the fire modules (Iandola et al. 2016).
    squeeze = models.build("squeezenet1_1")
    assert transfer.head_layer(squeeze).name == "conv10"
    assert [n for n, _ in transfer.blocks(squeeze)] == ["conv1"] + [f"fire{i}" for i in range(2, 10)]
    assert [len(layers) for _, layers in transfer.blocks(squeeze)][1:] == [3] * 8  # squeeze, expand 1x1, 3x3


def test_freeze_and_unfreeze_set_trainable_flags():
    model = models.build("small_convnet", (8, 8, 1), 10)
    frozen = transfer.freeze(model, up_to="bn1_2")
    assert frozen == ["conv1_1", "bn1_1", "conv1_2", "bn1_2"]
    assert model.get_layer("conv2_1").trainable and not model.get_layer("conv1_2").trainable
    assert transfer.freeze(model, up_to=-2) == [l.name for l in model.layers[:-1] if l.weights]
    assert transfer.freeze(model) == [l.name for l in model.layers if l.weights and l.name != "logits"]
    # Only the head's kernel and bias remain trainable.
    assert [v.name.split(":")[0] for v in model.trainable_variables] == ["logits/kernel", "logits/bias"]
    assert transfer.unfreeze(model, 2) == ["conv2_1", "conv2_2"]
    assert sorted(v.name.split(":")[0] for v in model.trainable_variables) == [
        "conv2_1/kernel", "conv2_2/kernel", "logits/bias", "logits/kernel"]
    assert not model.get_layer("bn2_2").trainable  # batchnorm stays in inference mode
    transfer.unfreeze(model, 1, train_batchnorm=True)
    assert model.get_layer("bn2_2").trainable and not model.get_layer("conv2_1").trainable
    assert transfer.unfreeze(model, None) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2"]
    with pytest.raises(ConfigError, match="no layer 'conv9'"):
        transfer.freeze(model, up_to="conv9")
    with pytest.raises(ConfigError, match="out of range"):
        transfer.freeze(model, up_to=len(model.layers))
    with pytest.raises(ConfigError, match=r"last_n_blocks must be an int in 0\.\.4"):
        transfer.unfreeze(model, 5)


def test_frozen_batchnorm_runs_in_inference_mode():
    model = models.build("small_convnet", (8, 8, 1), 3, width=4, dropout=0.0)
    bn = model.get_layer("bn1_1")
    bn.moving_mean.assign(tf.fill(bn.moving_mean.shape, 0.5))
    transfer.freeze(model)
    x = tf.random.stateless_normal((4, 8, 8, 1), seed=(1, 2))
    assert np.array_equal(model(x, training=True).numpy(), model(x, training=False).numpy())
    assert np.all(bn.moving_mean.numpy() == 0.5)


def test_feature_extractor_is_the_heads_input_and_probe_learns():
    model = models.build("small_convnet", (8, 8, 1), 5, width=4)
    x = tf.random.stateless_normal((6, 8, 8, 1), seed=(3, 4))
    features = transfer.feature_extractor(model)(x, training=False)
    assert features.shape == (6, 8)
    kernel, bias = model.get_layer("logits").get_weights()
    np.testing.assert_allclose(features.numpy() @ kernel + bias, model(x, training=False).numpy(), rtol=1e-5, atol=1e-5)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 4
    labels = np.repeat(np.arange(3), 30)
    feats = centres[labels] + rng.normal(size=(90, 8))
    probe = transfer.linear_probe(feats, labels)
    assert (probe.predict(feats) == labels).mean() > 0.95
    with pytest.raises(ShapeError, match="features"):
        transfer.linear_probe(feats[:, :, None], labels)


def test_head_phase_keeps_body_bit_exact_and_trains_head(tasks, finetuned):
    out, result = finetuned
    source = load_run(tasks["run"]).model
    paths = _checkpoints(out)
    assert len(paths) == 3  # one per epoch: 2 head epochs, 1 fine-tuning epoch
    epoch1, epoch2 = (load_run(out, checkpoint=p).model for p in paths[:2])
    for layer in ("conv1_1", "bn1_1", "conv2_1", "bn2_2"):
        for a, b, c in zip(_layer_weights(source, layer), _layer_weights(epoch1, layer), _layer_weights(epoch2, layer)):
            assert np.array_equal(a, b) and np.array_equal(b, c)  # includes BN moving statistics
    assert epoch2.get_layer("logits").kernel.shape == (16, 4)
    assert not np.array_equal(epoch1.get_layer("logits").kernel.numpy(), epoch2.get_layer("logits").kernel.numpy())
    ft = result.metrics["finetune"]
    assert ft["head"]["trainable_params"] == 16 * 4 + 4
    assert ft["finetune"]["unfrozen_blocks"] == ["conv2_2"]
    assert ft["finetune"]["trainable_params"] == 16 * 4 + 4 + 3 * 3 * 16 * 16


def test_finetune_phase_changes_last_block_only(finetuned):
    out, _ = finetuned
    paths = _checkpoints(out)
    after_head, final = (load_run(out, checkpoint=p).model for p in (paths[1], paths[2]))
    changed = {layer.name for layer in final.layers if layer.weights and any(
        not np.array_equal(a, b)
        for a, b in zip(_layer_weights(after_head, layer.name), _layer_weights(final, layer.name)))}
    assert changed == {"conv2_2", "logits"}


def test_finetuned_run_is_a_normal_run(tasks, finetuned):
    out, result = finetuned
    metrics = json.loads(open(f"{out}/metrics.json").read())
    assert [h["phase"] for h in metrics["history"]] == ["head", "head", "finetune"]
    assert metrics["epochs"] == 3 and metrics["test_accuracy"] == result.metrics["test_accuracy"]
    assert metrics["test_accuracy"] > 0.7  # 4 classes: chance is 0.25
    run = load_run(out)
    assert run.config.dataset == tasks["target"] and run.config.lr == 1e-3 and run.config.epochs == 3
    assert evaluate_run(out)["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_finetune_rejects_other_input_shapes_and_bad_options(tasks):
    padded = _task_npz(tasks["root"] / "padded.npz", [6, 7, 8, 9], pad=1)
    with pytest.raises(ShapeError, match=r"shape \(10, 10, 1\).*\(8, 8, 1\)"):
        transfer.finetune(tasks["run"], padded, str(tasks["root"] / "bad"), log=quiet)
    with pytest.raises(ConfigError, match="both 0"):
        transfer.finetune(tasks["run"], tasks["target"], str(tasks["root"] / "bad"), head_epochs=0,
                          finetune_epochs=0, log=quiet)
    with pytest.raises(ConfigError, match=r"unfreeze_blocks must be an int in 0\.\.4"):
        transfer.finetune(tasks["run"], tasks["target"], str(tasks["root"] / "bad"), unfreeze_blocks=7, log=quiet)
    with pytest.raises(RunDirError, match="does not exist"):
        transfer.finetune(str(tasks["root"] / "nowhere"), tasks["target"], str(tasks["root"] / "bad"), log=quiet)


def test_cli_finetune(tasks, capsys):
    out = str(tasks["root"] / "cli_run")
    assert cli.main(["finetune", "--run", tasks["run"], "--dataset", tasks["target"], "--out", out,
                     "--head-epochs", "1", "--finetune-epochs", "0", "--lr", "0.03"]) == 0
    assert "test_accuracy=" in capsys.readouterr().out
    assert cli.main(["evaluate", "--run", out]) == 0
    accuracy = json.loads(capsys.readouterr().out)["accuracy"]
    assert accuracy > 0.5
    export_dir = str(tasks["root"] / "exported")
    assert cli.main(["export", "--run", out, "--format", "tflite", "--out", export_dir]) == 0
    report = json.loads(open(f"{export_dir}/model_none.tflite.report.json").read())
    assert report["accuracy"] == pytest.approx(accuracy, abs=0.01)
    capsys.readouterr()
    # Mistakes: one line on stderr, exit code 2.
    assert cli.main(["finetune", "--run", str(tasks["root"] / "missing"), "--dataset", tasks["target"],
                     "--out", str(tasks["root"] / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and len(err.splitlines()) == 1
    assert cli.main(["finetune", "--run", tasks["run"], "--dataset", tasks["target"], "--out", out]) == 2
    assert "already holds a run" in capsys.readouterr().err
    # The fine-tuned run records its frozen layers: resuming it keeps them frozen.
    frozen = json.load(open(f"{out}/config.json"))["train"]["frozen_layers"]
    assert frozen and "logits" not in frozen
    kernel = "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    before = tf.train.load_checkpoint(tf.train.latest_checkpoint(f"{out}/checkpoints")).get_tensor(kernel)
    epochs = json.load(open(f"{out}/metrics.json"))["epochs"]
    assert cli.main(["train", "--resume", "--out", out, "--epochs", str(epochs + 1)]) == 0
    capsys.readouterr()
    after = tf.train.load_checkpoint(tf.train.latest_checkpoint(f"{out}/checkpoints")).get_tensor(kernel)
    np.testing.assert_array_equal(before, after)  # the first (frozen) layer did not move
    assert json.load(open(f"{out}/config.json"))["train"]["frozen_layers"] == frozen
    assert cli.main(["finetune", "--run", tasks["run"], "--dataset", tasks["target"], "--out", out,
                     "--unfreeze-blocks", "some"]) == 2
    assert "expected an integer >= 0 or 'all'" in capsys.readouterr().err
