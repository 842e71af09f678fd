"""Karpathy's char-RNN on the engine: corpus, TBPTT layout, carried state, learning, exact resume, sampling, CLI."""

import dataclasses
import json
import math
import os

import numpy as np
import pytest

import cs231n_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from cs231n_tf import cli
from cs231n_tf.engine import Engine, rundir
from cs231n_tf.errors import ConfigError, DataError, RunDirError
from cs231n_tf.sequence import charrnn
from cs231n_tf.sequence.charrnn import CharRNNConfig, CharRNNTask
from cs231n_tf.sequence.text import CharVocab, load_text, split_text, tbptt_chunks

TEXT = "the quick brown fox jumps over the lazy dog. " * 40  # 1800 characters, 28 distinct
TINY = dict(hidden=32, layers=1, embedding=16, seq_len=16, batch_size=8, log_every=10 ** 6, checkpoint_every=0,
            epochs=1000)


def quiet(_):
    pass


def tiny(**overrides):
    return CharRNNConfig(**{**TINY, **overrides})


def weights(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "_CHECKPOINTABLE" not in k and not k.startswith("save_counter")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LSTM trained 300 steps on TEXT into a run directory."""
    run = str(tmp_path_factory.mktemp("charrnn") / "run")
    result = charrnn.train(tiny(max_steps=300, lr=1e-2, steps_per_execution=25), run, text=TEXT, log=quiet,
                           progress=False)
    return run, result


# ---- corpus and vocabulary ----------------------------------------------------------------------


def test_vocab_round_trip_and_unknown_characters():
    text = "Grüße, world!\n"
    vocab = CharVocab.from_text(text)
    assert vocab.chars == "".join(sorted(set(text))) and len(vocab) == 13
    ids = vocab.encode(text)
    assert ids.dtype == np.int32 and ids.tolist()[:2] == [vocab.chars.index("G"), vocab.chars.index("r")]
    assert vocab.decode(ids) == text
    with pytest.raises(ConfigError, match=r"prime has character\(s\).*'Q', 'z'"):
        vocab.encode("Gz rQ", what="prime")
    assert CharVocab(vocab.chars) == vocab


def test_load_text_and_its_errors(tmp_path):
    from pydoc_data import topics

    text = load_text()
    assert text == "".join(topics.topics[k] for k in sorted(topics.topics)) and 400_000 < len(text) < 600_000
    good = tmp_path / "good.txt"
    good.write_bytes("\ufeffnaïve text\n".encode("utf-8"))
    assert load_text(str(good)) == "naïve text\n"
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.bin").write_bytes(b"abc\x00\x01\x02")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    for name, message in (("missing.txt", "does not exist"), ("empty.txt", "is empty"),
                          ("binary.bin", "binary"), ("latin1.txt", "not UTF-8")):
        with pytest.raises(DataError, match=message):
            load_text(str(tmp_path / name))
    # Too short for one chunk of batch_size x seq_len plus a validation chunk.
    with pytest.raises(DataError, match="too short"):
        CharRNNTask(tiny(), text=TEXT[:8 * 16]).prepare()
    with pytest.raises(ConfigError, match="cell"):
        tiny(cell="rnn").validate()


def test_validation_split_is_the_end_of_the_text():
    ids = np.arange(100)
    train, val = split_text(ids, 0.05)
    assert train.tolist() == list(range(95)) and val.tolist() == [95, 96, 97, 98, 99]


def test_tbptt_layout_continues_each_stream():
    ids = np.arange(25)  # 2 streams of 12 (+1 target), 4 chunks of 3
    x, y = tbptt_chunks(ids, streams=2, seq_len=3)
    assert x.shape == y.shape == (4, 2, 3)
    assert x[0].tolist() == [[0, 1, 2], [12, 13, 14]] and x[1].tolist() == [[3, 4, 5], [15, 16, 17]]
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x[1:, :, 0], y[:-1, :, -1])  # chunk k+1 starts where chunk k ended
    # On a text: reading stream i's chunks in order gives back a contiguous piece of the text.
    task = CharRNNTask(tiny(), text=TEXT)
    task.prepare()
    assert task.steps_per_epoch() == len(task.x) == ((len(TEXT) - 90 - 1) // 8) // 16
    for i in range(8):
        stream = task.vocab.decode(task.x[:, i].reshape(-1))
        start = i * ((len(TEXT) - 90 - 1) // 8)
        assert stream == TEXT[start:start + len(stream)]
    batches = list(task.train_dataset(0, skip_batches=2).as_numpy_iterator())
    assert len(batches) == task.steps_per_epoch() - 2 and not any(b[2] for b in batches)
    assert [bool(b[2]) for b in task.train_dataset(1).take(2).as_numpy_iterator()] == [True, False]


# ---- the model and its carried state -----------------------------------------------------------


def test_untrained_loss_is_ln_vocab():
    task = CharRNNTask(tiny(), text=TEXT)
    engine = Engine(task, None, log=None, progress=False)
    result = engine.evaluate("validation")
    assert len(task.vocab) == 28
    assert result["loss"] == pytest.approx(math.log(28), abs=0.03)
    assert result["perplexity"] == pytest.approx(28, rel=0.04)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_state_is_carried_over_chunks_and_reset_each_epoch(cell):
    task = CharRNNTask(tiny(cell=cell, lr=1e-2), text=TEXT)
    engine = Engine(task, None, log=None, progress=False)
    step = tf.function(lambda batch: task.train_step(batch, engine.ctx))
    carried = task.carry.variables_of("train")
    assert len(carried) == (2 if cell == "lstm" else 1) and carried[0].shape == (8, 32)
    zeros = [np.zeros((8, 32), np.float32)] * len(carried)

    def final_states(x, states):  # the model from `states` over chunk x, with the current weights
        return [s.numpy() for s in task.model([x, *states], training=False)[1:]]

    def close(a, b):
        return all(np.allclose(u, v, atol=1e-5) for u, v in zip(a, b))

    epoch0 = list(task.train_dataset(0).take(2))
    expected = final_states(epoch0[0][0], zeros)
    step(epoch0[0])
    s1 = [v.numpy() for v in carried]
    assert close(s1, expected) and np.abs(s1[0]).max() > 1e-2
    # The second chunk starts from the first one's final state, not from zeros.
    expected, from_zeros = final_states(epoch0[1][0], s1), final_states(epoch0[1][0], zeros)
    step(epoch0[1])
    s2 = [v.numpy() for v in carried]
    assert close(s2, expected) and not close(s2, from_zeros)
    # The first chunk of the next epoch starts from zeros again.
    first = next(iter(task.train_dataset(1)))
    expected, carried_on = final_states(first[0], zeros), final_states(first[0], s2)
    step(first)
    s3 = [v.numpy() for v in carried]
    assert close(s3, expected) and not close(s3, carried_on)


def test_tiny_model_learns_a_repetitive_text(trained):
    run, result = trained
    m = json.load(open(os.path.join(run, "metrics.json")))
    ln_v = math.log(28)
    assert m["steps"] == 300 and m["vocab_size"] == 28
    assert m["val_loss"] < 0.15 * ln_v, m["val_loss"]
    assert m["val_perplexity"] == pytest.approx(math.exp(m["val_loss"]), rel=1e-6)
    first, last = m["history"][0], m["history"][-1]
    assert first["val_loss"] > last["val_loss"] and last["train_loss"] < 0.5 * ln_v
    assert all("val_perplexity" in r for r in m["history"])
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["task"] == "charrnn" and config["vocab"] == "".join(sorted(set(TEXT)))
    assert config["config"]["hidden"] == 32 and config["text"]["characters"] == 1800


def test_resume_mid_epoch_equals_uninterrupted(tmp_path):
    # 13 steps an epoch: the run stops at step 9 (mid-epoch, state carried) and resumes to 20.
    config = tiny(dropout=0.1, steps_per_execution=4)
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    straight = charrnn.train(dataclasses.replace(config, max_steps=20), full, text=TEXT, log=quiet, progress=False)
    charrnn.train(dataclasses.replace(config, max_steps=9), part, text=TEXT, log=quiet, progress=False)
    assert np.abs(weights(part)["carried_state/train_0/.ATTRIBUTES/VARIABLE_VALUE"]).max() > 0
    resumed = charrnn.train(dataclasses.replace(config, max_steps=20), part, resume=True, text=TEXT, log=quiet,
                            progress=False)
    a, b = weights(full), weights(part)
    assert any(k.startswith("carried_state/") for k in a) and any(k.startswith("random_generators/") for k in a)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert resumed.metrics["steps"] == straight.metrics["steps"] == 20
    assert resumed.metrics["history"][-1] == straight.metrics["history"][-1]
    # Resuming on another text is refused before anything is trained.
    with pytest.raises(DataError, match="not the one"):
        charrnn.train(dataclasses.replace(config, max_steps=30), part, resume=True, text=TEXT.upper(), log=quiet)


# ---- sampling ------------------------------------------------------------------------------------


def _greedy(model, vocab, prime, length):
    states = [np.zeros((1, int(t.shape[-1])), np.float32) for t in model.inputs[1:]]
    out = model([vocab.encode(prime)[None, :], *states], training=False)
    chars = []
    for _ in range(length):
        nxt = int(np.argmax(out[0][0, -1].numpy()))
        chars.append(vocab.chars[nxt])
        out = model([np.array([[nxt]], np.int32), *out[1:]], training=False)
    return prime + "".join(chars)


def test_sampling_is_seeded_and_low_temperature_is_near_greedy(trained):
    run, result = trained
    sampler = charrnn.load_sampler(run)
    a = sampler.sample(60, temperature=1.5, prime="the ", seed=3)
    assert len(a) == 64 and a.startswith("the ") and set(a) <= set(TEXT)
    assert sampler.sample(60, temperature=1.5, prime="the ", seed=3) == a
    assert sampler.sample(60, temperature=1.5, prime="the ", seed=4) != a
    # The run directory's model is the trained one: the same samples as the task in memory.
    assert charrnn.sample(result.task, 60, temperature=1.5, prime="the ", seed=3) == a
    no_prime = sampler.sample(30, temperature=0.5, seed=1)
    assert len(no_prime) == 30
    greedy = _greedy(sampler.model, sampler.vocab, "the q", 40)
    low = [sampler.sample(40, temperature=0.1, prime="the q", seed=s) for s in range(3)]
    assert low == [greedy] * 3
    assert "quick brown fox" in greedy
    with pytest.raises(ConfigError, match="'€'"):
        sampler.sample(10, prime="the €")
    with pytest.raises(ConfigError, match="temperature"):
        charrnn.sample(sampler, 10, temperature=0)


# ---- command line --------------------------------------------------------------------------------

CLI_TINY = ["--hidden", "16", "--layers", "1", "--embedding", "8", "--seq-len", "8", "--batch-size", "4",
            "--checkpoint-every", "0"]


def _one_line_error(capsys, argv):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    return err


def test_cli_train_resume_and_sample(tmp_path, capsys):
    text_file = tmp_path / "fox.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    run = str(tmp_path / "run")
    assert cli.main(["charrnn", "train", "--text", str(text_file), *CLI_TINY, "--max-steps", "6", "--out", run]) == 0
    m = json.load(open(os.path.join(run, "metrics.json")))
    assert m["steps"] == 6 and math.isfinite(m["val_loss"]) and m["val_loss"] < math.log(28) + 0.1
    assert "val_loss=" in capsys.readouterr().out
    assert cli.main(["charrnn", "train", "--out", run, "--resume", "--max-steps", "8"]) == 0
    assert json.load(open(os.path.join(run, "metrics.json")))["steps"] == 8
    capsys.readouterr()
    err = _one_line_error(capsys, ["charrnn", "train", "--out", run, "--resume", "--hidden", "32"])
    assert "hidden (run has 16)" in err
    assert cli.main(["charrnn", "sample", "--run", run, "--length", "50"]) == 0
    assert len(capsys.readouterr().out.rstrip("\n")) == 50  # TEXT has no newline characters
    assert cli.main(["charrnn", "sample", "--run", run, "--length", "50", "--prime", "the ", "--seed", "2"]) == 0
    out = capsys.readouterr().out.rstrip("\n")
    assert len(out) == 54 and out.startswith("the ")
    assert "'€'" in _one_line_error(capsys, ["charrnn", "sample", "--run", run, "--prime", "€"])
    assert "temperature" in _one_line_error(capsys, ["charrnn", "sample", "--run", run, "--temperature", "0"])
    # The exported sampler gives the run's text for the same seed.
    assert cli.main(["charrnn", "export", "--run", run, "--out", str(tmp_path / "export")]) == 0
    report = json.load(open(tmp_path / "export" / "saved_model.report.json"))
    assert report["max_abs_diff"] == {"output_0": 0.0}
    sampler = charrnn.load_sampler(run)
    loaded = tf.saved_model.load(report["path"]).signatures["serving_default"]
    ids = loaded(prime=tf.constant(sampler.vocab.encode("the "), tf.int32), length=tf.constant(30),
                 temperature=tf.constant(0.7), seed=tf.constant([3, 0], tf.int64))["output_0"]
    assert sampler.vocab.decode(ids.numpy()) == sampler.sample(30, temperature=0.7, prime="the ", seed=3)


def test_cli_bad_inputs_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)))
    for name, message in (("empty.txt", "is empty"), ("binary.bin", "binary"), ("missing.txt", "does not exist")):
        out = str(tmp_path / f"out-{name}")
        err = _one_line_error(capsys, ["charrnn", "train", "--text", str(tmp_path / name), *CLI_TINY, "--out", out])
        assert message in err and not os.path.exists(out)
    other = str(tmp_path / "classifier")
    rundir.create(other)
    rundir.write_config(other, "classification", {"train": {}})
    assert "'classification' run" in _one_line_error(capsys, ["charrnn", "sample", "--run", other])
    assert "does not exist" in _one_line_error(capsys, ["charrnn", "sample", "--run", str(tmp_path / "nowhere")])
    assert "--out" in _one_line_error(capsys, ["charrnn", "train"])
    with pytest.raises(RunDirError, match="'classification' run"):
        charrnn.load_sampler(other)
