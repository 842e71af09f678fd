"""The library-tier captioner: step == sequence, losses, attention, training, exact resume, BLEU, export, CLI."""

import dataclasses
import json
import os

import numpy as np
import pytest

import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from cs231n_tf import cli
from cs231n_tf.errors import ConfigError, DataError
from cs231n_tf.export import TFLiteRunner
from cs231n_tf.sequence import captioner, decoding
from cs231n_tf.sequence.bleu import corpus_bleu
from cs231n_tf.sequence.captioner import CaptionConfig, Captioner, caption_loss
from cs231n_tf.sequence.captions import END, START, load_captions

TINY = dict(hidden=16, embedding=8, attention_dim=8, batch_size=16, epochs=2, log_every=10 ** 6, beam_width=2,
            max_length=12, encoder="three_layer_convnet")
# (no batch norm in the encoder: a dozen steps leave batch-norm moving statistics far from the data)


def quiet(_):
    pass


@pytest.fixture(scope="module")
def data():
    return load_captions("synthetic:96", image_size=32, max_length=12)


def tiny(**overrides):
    return CaptionConfig(**{**TINY, **overrides})


def weights(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "_CHECKPOINTABLE" not in k and not k.startswith("save_counter")}


@pytest.mark.parametrize("cell, attention", [("rnn", False), ("lstm", False), ("gru", False), ("lstm", True),
                                             ("gru", True)])
def test_stepping_the_cell_equals_the_teacher_forced_sequence(data, cell, attention):
    """decode_step (the cell, used by the search and the exports) == the fused sequence layer."""
    tf.keras.utils.set_random_seed(0)
    model = Captioner(tiny(cell=cell, attention=attention), len(data.vocab), data.image_shape, data.mean,
                      data.std).build_all()
    images = tf.constant(data.splits["train"].images[:3] / 255.0, tf.float32)
    tokens = tf.constant(data.splits["train"].encoded[:3, :-1])
    logits, alpha = model((images, tokens), training=False)
    memory, states = model.encode(images)
    for t in range(tokens.shape[1]):
        log_probs, states, step_alpha = model.step(tokens[:, t], states, memory)
        np.testing.assert_allclose(log_probs.numpy(), tf.nn.log_softmax(logits[:, t]).numpy(), atol=2e-5)
        if attention:
            np.testing.assert_allclose(step_alpha.numpy(), alpha[:, t].numpy(), atol=1e-6)
            np.testing.assert_allclose(step_alpha.numpy().sum(-1), 1.0, atol=1e-5)
        else:
            assert step_alpha.shape == (3, 0)
    assert len(states) == (2 if cell == "lstm" else 1)


def test_loss_masks_null_and_the_regulariser_has_its_closed_form():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 7)).astype(np.float32)
    targets = np.array([[5, 6, 2, 0], [4, 2, 0, 0]], np.int32)
    alpha = rng.dirichlet(np.ones(3), size=(2, 4)).astype(np.float32)
    per_caption, words, reg = (t.numpy() for t in caption_loss(logits, targets, alpha, doubly_stochastic=0.5))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    for b in range(2):
        n = int((targets[b] != 0).sum())
        assert words[b] == n
        np.testing.assert_allclose(per_caption[b], -sum(log_p[b, t, targets[b, t]] for t in range(n)), rtol=1e-5)
        np.testing.assert_allclose(reg[b], 0.5 * ((1.0 - alpha[b, :n].sum(0)) ** 2).sum(), rtol=1e-5)


def test_encoders_from_the_registry(data):
    enc, stats = captioner.build_encoder("small_convnet", (32, 32, 3))
    assert enc.output_shape == (None, 8, 8, 64) and stats is None
    enc, _ = captioner.build_encoder("efficientnet_lite0", (64, 64, 3))
    assert enc.output_shape == (None, 2, 2, 1280)
    with pytest.raises(ConfigError, match="no convolutional feature map"):
        captioner.build_encoder("fc_net", (32, 32, 3))
    with pytest.raises(ConfigError, match="no pretrained weights"):
        captioner.build_encoder("small_convnet", (32, 32, 3), weights="imagenet")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    run_dir = str(tmp_path_factory.mktemp("caption") / "run")
    result = captioner.train(tiny(epochs=5, lr=4e-3, dataset="synthetic:96", image_size=32), run_dir, data=data, log=quiet,
                             progress=False)
    return run_dir, result


def test_training_learns_and_reports_bleu(trained, data):
    run_dir, result = trained
    m = json.load(open(os.path.join(run_dir, "metrics.json")))
    history = m["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert m["val_loss"] < np.log(len(data.vocab))
    for split in ("val", "test"):
        assert all(0.0 <= m[f"{split}_bleu{n}"] <= 1.0 for n in (1, 2, 3, 4))
    # The BLEU in metrics.json is the task's beam search scored against every reference.
    run = captioner.load_run(run_dir)
    _, decoded = captioner.caption_images(run, data.splits["test"].images / 255.0)
    expected = corpus_bleu(run.vocab.decode_tokens(decoded.tokens), data.references("test"))
    assert m["test_bleu1"] == pytest.approx(expected["bleu1"], abs=1e-9)
    assert m["test_bleu4"] == pytest.approx(expected["bleu4"], abs=1e-9)
    assert captioner.evaluate(run_dir)["bleu1"] == pytest.approx(expected["bleu1"], abs=1e-9)


def test_a_small_training_set_is_fitted(tmp_path):
    """Lecture 10's sanity check: a captioner drives a small training set's loss far below chance."""
    data = load_captions("synthetic:20", image_size=32, max_length=12, validation_fraction=0.0, test_fraction=0.0)
    config = tiny(hidden=64, embedding=32, epochs=100, batch_size=20, dropout=0.0, lr=1e-2, attention=False,
                  doubly_stochastic=0.0, beam_width=1)
    result = captioner.train(config, None, data=data, log=quiet, progress=False)
    # Three paraphrases per image bound the loss below (the choice among them is not in the image).
    assert result.metrics["final_train_loss"] < 0.3 * np.log(len(data.vocab))


def test_resume_mid_run_equals_uninterrupted(tmp_path, data):
    # No held-out splits: the run is only training steps (the evaluation is tested above).
    data = load_captions("synthetic:64", image_size=32, max_length=12, validation_fraction=0.0, test_fraction=0.0)
    config = tiny(epochs=2, dropout=0.2, beam_width=1)
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    captioner.train(config, full, data=data, log=quiet, progress=False)
    captioner.train(dataclasses.replace(config, max_steps=5), part, data=data, log=quiet, progress=False)
    captioner.train(config, part, resume=True, data=data, log=quiet, progress=False)
    a, b = weights(full), weights(part)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    other = load_captions("synthetic:64", image_size=32, max_length=12, min_count=40, validation_fraction=0.0,
                          test_fraction=0.0)
    with pytest.raises(DataError, match="vocabulary"):
        captioner.train(config, part, resume=True, data=other, log=quiet)


def test_export_signatures_and_tflite_decoder_step(trained, tmp_path, data):
    run_dir, _ = trained
    reports = captioner.export(run_dir, out=str(tmp_path / "export"), examples=6)
    saved = reports["saved_model"]
    assert set(saved["signatures"]) == {"serving_default", "encode", "decode_step"}
    for sig in saved["signatures"].values():
        assert all(v <= 1e-5 for v in sig["max_abs_diff"].values())
    assert saved["caption_agreement"] == 1.0
    assert max(reports["tflite"]["max_abs_diff"].values()) < 1e-4
    # Drive the .tflite step by hand: greedy decoding gives the Keras model's greedy caption.
    run = captioner.load_run(run_dir)
    serving = run.serving(beam_width=1)
    images = (data.splits["test"].images[:2] / 255.0).astype(np.float32)
    encoded = {k: v.numpy() for k, v in serving.encode(tf.constant(images)).items()}
    step = TFLiteRunner(model_path=reports["tflite"]["path"], signature="decode_step")
    tokens, words = np.full(2, run.vocab.word_to_idx[START], np.int32), []
    state = {k: encoded[k] for k in serving.state_names}
    for _ in range(serving.max_length):
        out = step.run(tokens=tokens, memory=encoded["memory"], **state)
        log_probs = out["log_probs"].copy()
        log_probs[:, :2] = -np.inf  # <NULL>, <START>
        tokens = log_probs.argmax(-1).astype(np.int32)
        state = {k: out[k] for k in serving.state_names}
        words.append(tokens)
    mine = decoding.strip(np.stack(words, 1), run.vocab.word_to_idx[END])
    keras = serving.caption(tf.constant(images))
    assert [run.vocab.decode(np.array(w + [2])) for w in mine] == [c.decode() for c in keras["captions"].numpy()]
    loaded = tf.saved_model.load(saved["path"])
    got = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_array_equal(got["tokens"].numpy(), run.serving().caption(tf.constant(images))["tokens"].numpy())


def _one_line_error(capsys, argv):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    return err


def _coco_dir(root, images, captions):
    image_dir = root / "images"
    image_dir.mkdir(parents=True)
    entries, anns = [], []
    for i, (image, caps) in enumerate(zip(images, captions)):
        name = f"{i:04d}.png"
        tf.io.write_file(str(image_dir / name), tf.io.encode_png(image))
        entries.append({"id": i, "file_name": name})
        anns += [{"id": len(anns), "image_id": i, "caption": c} for c in caps]
    ann = root / "captions.json"
    ann.write_text(json.dumps({"images": entries, "annotations": anns}))
    return f"coco_captions:{ann}:{image_dir}"


def test_cli_evaluate_on_a_held_out_coco_set_predict_and_errors(trained, tmp_path, capsys, data):
    run_dir, _ = trained
    split = data.splits["test"]
    captions = [split.captions[i] for i in range(len(split))]
    spec = _coco_dir(tmp_path, split.images, captions)
    out_json = str(tmp_path / "bleu.json")
    assert cli.main(["caption", "evaluate", "--run", run_dir, "--dataset", spec, "--out", out_json]) == 0
    report = json.load(open(out_json))
    # The same images and references as the run's own test split: the same BLEU.
    assert report["bleu4"] == pytest.approx(captioner.evaluate(run_dir)["bleu4"], abs=1e-9)
    assert report["images"] == len(split)
    png = tmp_path / "one.png"
    tf.io.write_file(str(png), tf.io.encode_png(split.images[0]))
    capsys.readouterr()
    assert cli.main(["caption", "predict", str(png), "--run", run_dir, "--out", str(tmp_path / "pred")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{png}: ") and os.path.isfile(tmp_path / "pred" / "one.png.attention.png")
    assert "cannot decode" in _one_line_error(capsys, ["caption", "predict", out_json, "--run", run_dir])
    _one_line_error(capsys, ["caption", "predict", str(tmp_path / "missing.png"), "--run", run_dir])
    err = _one_line_error(capsys, ["caption", "evaluate", "--run", run_dir, "--dataset", "flickr:x"])
    assert "unknown caption data set" in err
    err = _one_line_error(capsys, ["caption", "train", "--out", str(tmp_path / "x"), "--encoder", "fc_net"])
    assert "no convolutional feature map" in err
    err = _one_line_error(capsys, ["caption", "train", "--out", str(tmp_path / "y"), "--dataset", "synthetic:50",
                                   "--max-length", "3"])
    assert "max_length" in err
    # A run of another task.
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "charrnn", "config": {}}))
    err = _one_line_error(capsys, ["caption", "predict", str(png), "--run", str(other)])
    assert "charrnn" in err
