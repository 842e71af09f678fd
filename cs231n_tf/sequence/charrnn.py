"""Karpathy's char-RNN (lecture 10) as a task on the package's one engine.

A character-level language model: ``Embedding -> stacked LSTM/GRU -> Dense`` vocabulary logits,
trained with stateful truncated backpropagation through time. The training text is cut into
``batch_size`` contiguous streams (:func:`~cs231n_tf.sequence.text.tbptt_chunks`); batch ``k`` of
an epoch holds chunk ``k`` of every stream, so each step continues the text the previous step
ended. The recurrent states are carried from one step to the next in non-trainable
``tf.Variable`` s (:class:`CarriedState`, checkpointed with the model: a run killed mid-epoch
resumes with the state it had, exactly), and reset at the start of every epoch (the first batch
of an epoch says so, in the graph). Gradients stop at chunk boundaries (``seq_len`` characters).

The step: mean cross-entropy in nats per character, gradients clipped with
``tf.clip_by_global_norm(clip_norm)``, Adam. At the end of every epoch the validation text (the
last ``validation_fraction`` of the text, read as up to ``batch_size`` streams with the state
carried over its chunks) gives ``val_loss`` (nats/char) and ``val_perplexity = exp(val_loss)``
in ``metrics.json``. Compiled steps, ``steps_per_execution``, XLA, mixed precision, the NaN/Inf
guard, checkpoints, exact resume and TensorBoard are the engine's.

The recurrent layers are Keras's ``LSTM`` / ``GRU`` with cuDNN-compatible settings (default
activations, ``recurrent_dropout=0``, ``unroll=False``, ``use_bias=True``, GRU
``reset_after=True``), so on a GPU Keras runs them with cuDNN. Dropout, when set, is applied to
every recurrent layer's output (Zaremba et al.; Karpathy's char-rnn).

:func:`sample` generates in the graph: one ``tf.function`` feeds the prime and then its own
samples one character at a time with the states, drawing each character with
``tf.random.stateless_categorical(logits / temperature)`` (the same ``seed`` gives the same text).

The default budget, ``max_steps`` = :data:`DEFAULT_MAX_STEPS` = 1500: the default model (2-layer
LSTM, 256 hidden, 64-dim embedding, batch 32 x 100 characters, 0.89 M parameters on a 103-character
vocabulary) trains at 2.3-2.5 steps/s on the 2-core CPU machine this package is tested on
(measured while another test job shared it; ``steps_per_execution`` 10 barely helps, XLA on the
CPU is about 10x slower). An end-to-end ``cs231n-tf charrnn train --text 1MB.txt --max-steps 320``
took 139 s in the engine (2.3 steps/s including one validation of the 50 kB held out and three
checkpoints) and 156 s with start-up, so the default 1500 steps (about 5 epochs of a 1 MB text,
296 steps each) take about 11 minutes: within 15 minutes with room to spare. More steps keep
improving the model (``max_steps``; ``--resume`` continues a run).
"""

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.engine.context import precision
from cs231n_tf.engine.loop import MIXED_PRECISION, Engine, EngineConfig
from cs231n_tf.engine.state import restore_checkpoint
from cs231n_tf.engine.task import Task
from cs231n_tf.errors import ConfigError, DataError
from cs231n_tf.sequence.text import CharVocab, load_text, split_text, tbptt_chunks, text_digest
from cs231n_tf.train.config import _flag

CELLS = ("lstm", "gru")
# The carried state is one batch of streams: it cannot be split over replicas.
STRATEGIES = ("default", "one_device")
DEFAULT_MAX_STEPS = 1500  # see the module docstring
NAME = "charrnn"

_DATA, _MODEL, _OPT = "model and data", "model", "optimisation"
_PERF, _RUN = "performance and devices", "run directory and checkpoints"


@dataclasses.dataclass
class CharRNNConfig(EngineConfig):
    """Everything that determines a char-RNN run (saved in the run's ``config.json``).

    ``text``: ``"pydoc"`` or a UTF-8 file. ``batch_size`` streams of ``seq_len`` characters per
    step. ``max_steps`` defaults to the 15-minute budget of the module docstring; ``epochs`` is
    an upper bound. ``clip_norm=None`` (library only) trains without clipping.
    """

    epochs: int = _flag(100, "passes over the training text (max_steps usually ends the run first)",
                        kind="positive_int")
    batch_size: int = _flag(32, "text streams trained side by side (one chunk of each per step)", kind="positive_int",
                            group=_DATA)
    seed: int = _flag(0, "random seed of the weights and dropout (sampling has its own seed)", kind="non_negative_int")
    max_steps: int = _flag(DEFAULT_MAX_STEPS, "stop after this many steps (resumable; the default is a "
                           "15-minute budget for a 1 MB text on 2 CPU cores)", kind="positive_int")
    steps_per_execution: int = _flag(1, "train steps per tf.function call", kind="positive_int", group=_PERF)
    xla: bool = _flag(False, "compile the train step with XLA (jit_compile)", kind="bool", group=_PERF)
    mixed_precision: str = _flag(None, "mixed precision policy (float16 uses dynamic loss scaling)",
                                 choices=MIXED_PRECISION, group=_PERF)
    strategy: str = _flag("default", "tf.distribute strategy (one replica: the carried state is one batch)",
                          choices=STRATEGIES, group=_PERF)
    checkpoint_every: int = _flag(100, "also checkpoint every N steps (0: at the end of each epoch only)",
                                  kind="non_negative_int", group=_RUN)
    keep_checkpoints: int = _flag(3, "checkpoints kept", kind="positive_int", group=_RUN)
    log_every: int = _flag(50, "TensorBoard scalars every N steps", kind="positive_int", group=_RUN)
    deterministic: bool = _flag(False, "enable TensorFlow op determinism", kind="bool", group=_PERF)
    text: str = _flag("pydoc", "training text: a UTF-8 file, or pydoc (Python's own pydoc topics, ~465 kB)",
                      group=_DATA, metavar="FILE")
    validation_fraction: float = _flag(0.05, "share of the text, at its end, held out for validation",
                                       kind="unit_float", group=_DATA)
    cell: str = _flag("lstm", "recurrent cell", choices=CELLS, group=_MODEL)
    layers: int = _flag(2, "stacked recurrent layers", kind="positive_int", group=_MODEL)
    hidden: int = _flag(256, "units of each recurrent layer", kind="positive_int", group=_MODEL)
    embedding: int = _flag(64, "character embedding size", kind="positive_int", group=_MODEL)
    dropout: float = _flag(0.0, "dropout on every recurrent layer's output", kind="unit_float", group=_MODEL)
    seq_len: int = _flag(100, "characters per chunk: backpropagation through time stops at its ends",
                         kind="positive_int", group=_DATA)
    lr: float = _flag(2e-3, "Adam learning rate", kind="positive_float")
    clip_norm: float = _flag(5.0, "clip the gradient's global norm to this (tf.clip_by_global_norm)",
                             kind="positive_float")

    def validate(self):
        EngineConfig.validate(self)
        if not isinstance(self.text, str) or not self.text:
            raise ConfigError(f"text must be 'pydoc' or the path of a UTF-8 text file, got {self.text!r}")
        validation.one_of("cell", self.cell, CELLS)
        validation.one_of("strategy", self.strategy, STRATEGIES)
        for name in ("layers", "hidden", "embedding", "seq_len"):
            validation.positive_int(name, getattr(self, name))
        validation.positive_number("lr", self.lr)
        if self.clip_norm is not None:
            validation.positive_number("clip_norm", self.clip_norm)
        dropout = validation.positive_number("dropout", self.dropout, allow_zero=True)
        if dropout >= 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        fraction = validation.positive_number("validation_fraction", self.validation_fraction, allow_zero=True)
        if fraction >= 0.5:
            raise ConfigError(f"validation_fraction must be in [0, 0.5), got {self.validation_fraction!r}")
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        from cs231n_tf.engine.rundir import config_from_json

        return config_from_json(cls, obj, "char-rnn config")


def state_names(config):
    """The names of one recurrent layer's states (``h, c`` for an LSTM, ``h`` for a GRU), per layer."""
    per_layer = ("h", "c") if config.cell == "lstm" else ("h",)
    return [f"{name}{i}" for i in range(config.layers) for name in per_layer]


def build_model(config, vocab_size, mixed_precision=None):
    """``[ids [b, t], *states [b, hidden]] -> [logits [b, t, vocab] (float32), *final states]``.

    Built under ``mixed_precision`` (a policy name or ``None``), restoring the global policy after.
    """
    with precision(mixed_precision):
        layers = tf.keras.layers
        ids = tf.keras.Input((None,), dtype="int32", name="ids")
        x = layers.Embedding(vocab_size, config.embedding, name="embedding")(ids)
        per_layer = len(state_names(config)) // config.layers
        state_inputs, state_outputs = [], []
        for i in range(config.layers):
            # In the compute dtype: Keras casts the float32 carried states on the way in.
            initial = [tf.keras.Input((config.hidden,), dtype=tf.keras.mixed_precision.global_policy().compute_dtype,
                                      name=name)
                       for name in state_names(config)[i * per_layer:(i + 1) * per_layer]]
            common = dict(activation="tanh", recurrent_activation="sigmoid", use_bias=True, recurrent_dropout=0.0,
                          unroll=False, return_sequences=True, return_state=True)
            if config.cell == "lstm":
                rnn = layers.LSTM(config.hidden, name=f"lstm_{i}", **common)
            else:
                rnn = layers.GRU(config.hidden, reset_after=True, name=f"gru_{i}", **common)
            x, *states = rnn(x, initial_state=initial)
            if config.dropout:
                x = layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
            state_inputs += initial
            state_outputs += states
        # float32 logits (the mixed-precision guide's float32 output layer): losses never see float16.
        logits = layers.Dense(vocab_size, dtype="float32", name="logits")(x)
        return tf.keras.Model([ids] + state_inputs, [logits] + state_outputs, name=f"char_{config.cell}")


class CarriedState(tf.keras.layers.Layer):
    """The recurrent states carried from one chunk to the next: non-trainable float32 variables.

    ``shapes``: ``{split: [state shape, ...]}`` (``"train"``: ``[batch_size, hidden]`` per state).
    A task lists it in ``models()``, so the engine checkpoints it with the weights.
    """

    def __init__(self, shapes, name="carried_state"):
        super().__init__(name=name, dtype="float32", trainable=False)
        self.splits = list(shapes)
        self._states = {}
        for split, split_shapes in shapes.items():
            self._states[split] = [self.add_weight(name=f"{split}_{i}", shape=tuple(shape), dtype=tf.float32,
                                                   initializer="zeros", trainable=False)
                                   for i, shape in enumerate(split_shapes)]

    def variables_of(self, split):
        return list(self._states[split])

    def read(self, split, reset):
        """The states of ``split``, or zeros where ``reset`` (a boolean scalar tensor) is true."""
        return [tf.where(reset, tf.zeros_like(v), tf.convert_to_tensor(v)) for v in self._states[split]]

    def write(self, split, states):
        for variable, value in zip(self._states[split], states):
            variable.assign(tf.cast(value, variable.dtype))

    def call(self, inputs):  # a container, never called as a layer
        return inputs


def _first_flags(chunks):
    return np.arange(chunks) == 0


class CharRNNTask(Task):
    """A char-RNN language model of ``config.text`` (a :class:`CharRNNConfig`).

    ``text``: the corpus itself (instead of loading ``config.text``). ``vocab``: the vocabulary
    the text must have (a resumed run's); ``digest``: the SHA-256 its text must have.
    """

    name = NAME
    final_splits = (("validation", "val_"),)
    epoch_split = "validation"

    def __init__(self, config, text=None, vocab=None, digest=None):
        super().__init__(config.validate())
        self._given_text = text
        self._expected_vocab = vocab
        self._expected_digest = digest
        self._prepared = False
        self.vocab = None
        self.model = self.optimizer = self.carry = None
        self._sampler = None

    # ---- data ---------------------------------------------------------------------------------

    def prepare(self):
        if self._prepared:
            return
        config = self.config
        text = self._given_text if self._given_text is not None else load_text(config.text)
        if not isinstance(text, str) or not text:
            raise DataError("the text is empty")
        self.digest = text_digest(text)
        if self._expected_digest is not None and self.digest != self._expected_digest:
            raise DataError(f"the text {config.text!r} is not the one this run was trained on (its SHA-256 differs)")
        self.vocab = CharVocab.from_text(text)
        if self._expected_vocab is not None and self.vocab != self._expected_vocab:
            raise DataError(f"the text {config.text!r} does not have the run's vocabulary")
        ids = self.vocab.encode(text)
        train, val = split_text(ids, config.validation_fraction)
        b, t = config.batch_size, config.seq_len
        need_val = t + 1 if config.validation_fraction > 0 else 0
        if len(train) < b * t + 1 or len(val) < need_val:
            raise DataError(
                f"the text has {len(ids)} characters: too short for one training chunk of batch_size {b} x "
                f"seq_len {t} (needs {b * t + 1}) plus validation_fraction {config.validation_fraction} of it "
                f"(needs {need_val}); it has {len(train)} for training and {len(val)} for validation")
        self.text_chars, self.train_chars, self.validation_chars = len(ids), len(train), len(val)
        self.x, self.y = tbptt_chunks(train, b, t)
        self.eval_streams = 0
        if len(val):
            self.eval_streams = min(b, (len(val) - 1) // t)
            self.val_x, self.val_y = tbptt_chunks(val, self.eval_streams, t)
        self._prepared = True

    def steps_per_epoch(self):
        return len(self.x)

    def train_dataset(self, epoch, skip_batches=0):
        # Every epoch reads the streams in the same order; only the first batch resets the state.
        first = _first_flags(len(self.x))
        return tf.data.Dataset.from_tensor_slices((self.x, self.y, first)).skip(skip_batches)

    def eval_dataset(self, split):
        if split != "validation" or not self.eval_streams:
            return None
        return tf.data.Dataset.from_tensor_slices((self.val_x, self.val_y, _first_flags(len(self.val_x))))

    # ---- models and steps ---------------------------------------------------------------------

    def build(self, ctx):
        config = self.config
        if ctx.num_replicas != 1:
            raise ConfigError(f"the char-rnn carries its state over one batch of streams and needs one replica; "
                              f"strategy {config.strategy!r} has {ctx.num_replicas}")
        self.model = build_model(config, len(self.vocab), config.mixed_precision)
        count = len(state_names(config))
        shapes = {"train": [(config.batch_size, config.hidden)] * count}
        if self.eval_streams:
            shapes["validation"] = [(self.eval_streams, config.hidden)] * count
        self.carry = CarriedState(shapes)
        self.optimizer = ctx.optimizer(tf.keras.optimizers.Adam(config.lr))
        self.optimizer.build(self.model.trainable_variables)
        self.train_loss = tf.keras.metrics.Mean("loss")
        self.val_loss = tf.keras.metrics.Mean("loss")

    def models(self):
        return {"model": self.model, "carried_state": self.carry}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def metrics(self):
        return [self.train_loss]

    def eval_metrics(self):
        return [self.val_loss]

    def _forward(self, x, y, first, split, training):
        states = self.carry.read(split, first)
        outputs = self.model([x, *states], training=training)
        logits = tf.cast(outputs[0], tf.float32)
        per_char = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(y, tf.int32), logits=logits)
        return per_char, outputs[1:]

    def train_step(self, batch, ctx):
        x, y, first = batch
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            per_char, states = self._forward(x, y, first, "train", training=True)
            loss = ctx.mean(per_char)  # nats per character
        clip_norm = self.config.clip_norm
        clip = None if clip_norm is None else (lambda grads: tf.clip_by_global_norm(grads, clip_norm)[0])
        ctx.minimize(tape, loss, variables, self.optimizer, gradient_transform=clip)
        self.carry.write("train", states)
        self.train_loss.update_state(per_char)
        return {"loss": loss}

    def eval_step(self, batch, ctx):
        x, y, first = batch
        per_char, states = self._forward(x, y, first, "validation", training=False)
        self.carry.write("validation", states)
        self.val_loss.update_state(per_char)
        return {}

    def evaluate_end(self, outputs, split):
        return {"perplexity": float(math.exp(float(self.val_loss.result().numpy())))}

    # ---- reporting, sampling, export ----------------------------------------------------------

    def run_config(self):
        return {"config": self.config.to_json(), "vocab": self.vocab.chars,
                "text": {"sha256": self.digest, "characters": self.text_chars, "train_characters": self.train_chars,
                         "validation_characters": self.validation_chars}}

    def describe(self):
        c = self.config
        source = "the given text" if self._given_text is not None else repr(c.text)
        return (f"training a char-rnn ({c.layers} x {c.cell} {c.hidden}) on {source} ({self.text_chars} characters, "
                f"{len(self.vocab)} distinct)")

    def summary(self, metrics):
        out = super().summary(metrics)
        out.update(vocab_size=len(self.vocab), train_characters=self.train_chars,
                   validation_characters=self.validation_chars)
        return out

    def sampler(self):
        """The :class:`CharRNNSampler` of the task's model (built once)."""
        if self.model is None:
            raise ConfigError("the task has no model yet: train it (or build it) before sampling")
        if self._sampler is None:
            self._sampler = CharRNNSampler(self.model, self.vocab)
        return self._sampler

    def serving_module(self):
        """The sampler: ``serve(prime ids, length, temperature, seed) -> ids`` (prime included)."""
        return self.sampler()


class CharRNNSampler(tf.Module):
    """Text from a char-RNN model, generated in the graph.

    ``serve(prime, length, temperature, seed)`` is one ``tf.function``: a ``tf.while_loop`` that
    feeds the prime ids one at a time with the states (teacher forcing), then its own samples,
    drawing each with ``tf.random.stateless_categorical(logits / temperature, seed=fold_in(seed, i))``.
    It returns the prime followed by ``length`` new ids. Without a prime, the first character is
    drawn uniformly from the vocabulary (the model has no context for it) and counts as new.
    """

    def __init__(self, model, vocab):
        super().__init__(name="charrnn_sampler")
        self.model = model
        self.vocab = vocab
        self._state_shapes = [tuple(t.shape[1:]) for t in model.inputs[1:]]
        self._vocab_size = int(model.outputs[0].shape[-1])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="prime"),
                                  tf.TensorSpec([], tf.int32, name="length"),
                                  tf.TensorSpec([], tf.float32, name="temperature"),
                                  tf.TensorSpec([2], tf.int64, name="seed")])
    def serve(self, prime, length, temperature, seed):
        uniform = tf.random.stateless_categorical(tf.zeros([1, self._vocab_size]), 1, seed=seed,
                                                  dtype=tf.int32)[0]
        start = tf.cond(tf.size(prime) > 0, lambda: prime, lambda: uniform)
        new = tf.where(tf.size(prime) > 0, length, length - 1)
        given = tf.size(start)
        total = given + new
        tokens = tf.TensorArray(tf.int32, size=total, element_shape=[]).write(0, start[0])
        states = [tf.zeros((1,) + shape, tf.float32) for shape in self._state_shapes]

        def body(i, current, tokens, states):
            outputs = self.model([tf.reshape(current, [1, 1]), *states], training=False)
            logits = tf.cast(outputs[0][:, -1, :], tf.float32) / temperature
            step_seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(i, tf.int64))
            drawn = tf.random.stateless_categorical(logits, 1, seed=step_seed, dtype=tf.int32)[0, 0]
            # Inside the prime, the next input is the prime's next character (teacher forcing).
            following = tf.where(i + 1 < given, start[tf.minimum(i + 1, given - 1)], drawn)
            return i + 1, following, tokens.write(i + 1, following), [tf.cast(s, tf.float32) for s in outputs[1:]]

        _, _, tokens, _ = tf.while_loop(
            lambda i, *_: i < total - 1, body, (tf.constant(0), start[0], tokens, states),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([]), None,
                              [tf.TensorShape((None,) + s) for s in self._state_shapes]))
        return tokens.stack()

    def sample(self, length, temperature=1.0, prime="", seed=0):
        """``prime`` followed by ``length`` generated characters (see the class docstring)."""
        length = validation.positive_int("length", length)
        temperature = validation.positive_number("temperature", temperature)
        seed = validation.non_negative_int("seed", seed)
        prime_ids = self.vocab.encode(prime, what="prime")
        ids = self.serve(tf.constant(prime_ids, tf.int32), tf.constant(length, tf.int32),
                         tf.constant(temperature, tf.float32), tf.constant([seed, 0], tf.int64))
        return self.vocab.decode(ids.numpy())


# ---- run directories ------------------------------------------------------------------------------


def load_run_config(run_dir):
    """``(CharRNNConfig, CharVocab, text sha256)`` of a char-rnn run; other runs raise :class:`RunDirError`."""
    return rundir.read_task_config(
        run_dir, NAME, lambda obj: (CharRNNConfig.from_json(obj["config"]), CharVocab(obj["vocab"]),
                                    obj["text"]["sha256"]), "char-rnn")


def load_sampler(run_dir, checkpoint=None):
    """A :class:`CharRNNSampler` of the run's model at ``checkpoint`` (default: the latest)."""
    config, vocab, _ = load_run_config(run_dir)
    checkpoint = rundir.latest_checkpoint(run_dir, checkpoint)
    model = build_model(config, len(vocab))
    restore_checkpoint(tf.train.Checkpoint(model=model), checkpoint, partial=True)
    return CharRNNSampler(model, vocab)


def sample(source, length, temperature=1.0, prime="", seed=0):
    """``prime`` followed by ``length`` characters generated by a char-RNN.

    ``source``: a run directory, a trained :class:`CharRNNTask` or a :class:`CharRNNSampler`.
    ``temperature`` > 0 divides the logits (small: near greedy; 1: the model's distribution).
    Characters of ``prime`` outside the model's vocabulary raise :class:`ConfigError`.
    """
    validation.positive_int("length", length)
    validation.positive_number("temperature", temperature)
    if isinstance(source, CharRNNSampler):
        sampler = source
    elif isinstance(source, CharRNNTask):
        sampler = source.sampler()
    elif isinstance(source, (str, os.PathLike)):
        sampler = load_sampler(os.fspath(source))
    else:
        raise ConfigError(f"sample needs a run directory, a CharRNNTask or a CharRNNSampler, "
                          f"got {type(source).__name__}")
    return sampler.sample(length, temperature=temperature, prime=prime, seed=seed)


def train(config, run_dir=None, resume=False, text=None, log=print, hooks=(), progress=None):
    """Train a char-RNN on the engine; returns its :class:`~cs231n_tf.engine.EngineResult`.

    The text is loaded and checked before the run directory is touched. ``resume`` continues the
    run in ``run_dir``; its text must be the one it was trained on.
    """
    vocab = digest = None
    if resume:
        if run_dir is None:
            raise ConfigError("resume needs a run directory")
        _, vocab, digest = load_run_config(run_dir)
    task = CharRNNTask(config, text=text, vocab=vocab, digest=digest)
    task.prepare()
    return Engine(task, run_dir, resume=resume, log=log, hooks=hooks, progress=progress).run()


def export(run_dir, out=None, checkpoint=None, saved_models_root="saved_models", prime="The ", length=64):
    """Export a char-rnn run's sampler as a SavedModel, verified, with a report beside it.

    Signature ``serving_default``: ``prime`` (int32 ids ``[n]``), ``length``, ``temperature``,
    ``seed`` (int64 ``[2]``) -> ids ``[n + length]``; the vocabulary (``idx -> character``) is in
    the report, and the same seed gives the same text as :func:`sample`. Written to
    ``out/saved_model/`` (default ``out``: ``saved_models/<run name>/``); returns the report.
    """
    from cs231n_tf.export import export_module
    from cs231n_tf.fileio import atomic_write_json

    sampler = load_sampler(run_dir, checkpoint=checkpoint)
    prime = "".join(ch for ch in prime if ch in sampler.vocab.chars) or sampler.vocab.chars[0]
    out = os.path.abspath(out or os.path.join(saved_models_root, os.path.basename(os.path.normpath(run_dir))))
    inputs = {"prime": np.asarray(sampler.vocab.encode(prime), np.int32), "length": np.asarray(length, np.int32),
              "temperature": np.asarray(1.0, np.float32), "seed": np.asarray([0, 0], np.int64)}
    report = export_module(sampler, os.path.join(out, "saved_model"), inputs)
    report.update({"run_dir": os.path.abspath(run_dir), "vocab": sampler.vocab.chars,
                   "verified_on": f"prime {prime!r}, {length} characters at temperature 1, seed 0"})
    atomic_write_json(report["path"].rstrip("/") + ".report.json", report)
    return report
