"""The library-tier image captioner (lecture 10): CNN encoder, LSTM/GRU decoder, soft attention, on the engine.

The model (:class:`Captioner`, a ``tf.keras.Model``):

- **Encoder**: any convolutional model of the registry, cut at its last feature map (``[H', W',
  D]``, flattened to ``L = H' W'`` positions), or the pretrained ``efficientnet_lite0``
  (``encoder_weights="imagenet"``; its fixed input normalisation is used). ``freeze_encoder``
  keeps its weights (and batch-norm statistics) fixed. Images enter in unit scale ``[0, 1]``; the
  model normalises them itself (the training split's per-channel statistics, or the pretrained
  weights' ``input_stats``).
- **Decoder**: word embedding, a recurrent cell (``rnn`` = Keras ``SimpleRNN``, ``lstm``,
  ``gru`` with cuDNN-compatible settings), initial states ``tanh(W mean(features) + b)`` (Xu et al.
  2015's initialisation; the course's captioner uses the projection without ``tanh``), and the
  vocabulary logits of the hidden state.
- **Soft attention** (``attention=True``; Xu et al., "Show, Attend and Tell", 2015): before each
  word the decoder scores every position, ``e_i = v^T tanh(K_i + W_h h)`` with keys ``K = W_k
  features`` computed once per image, takes ``alpha = softmax(e)`` and the context ``z = beta *
  sum_i alpha_i features_i`` with the gating scalar ``beta = sigmoid(w_b^T h)``; the cell reads
  ``[embedding, z]`` and the logits read ``[h, z]``. The doubly stochastic regulariser
  ``lambda * sum_i (1 - sum_t alpha_ti)^2`` (over the caption's real words) pushes the model to
  look at every part of the image over a caption.

Training is teacher forcing: the caption ``<START> w1 .. wn <END> <NULL>..`` is read up to its
second-to-last token and predicts from its second one; ``<NULL>`` targets are masked. The loss (the engine's ``loss``) is each caption's
cross-entropy in nats per word, averaged over the batch, so short and long captions weigh alike;
the objective adds the regulariser. At every
evaluation the captioner decodes each held-out image (beam search, :mod:`cs231n_tf.sequence.decoding`)
and :meth:`CaptionTask.evaluate_end` scores the captions with corpus BLEU-1..4
(:mod:`cs231n_tf.sequence.bleu`) against all of the image's references: ``val_bleu4`` etc. in
``metrics.json``.

:class:`CaptionServing` is the exported module: ``encode(images)``, ``decode_step(tokens, memory,
h[, c])`` (the states in and out, for a server or phone driving its own search) and
``caption(images)`` (the whole beam search in the graph, words as strings).
"""

import dataclasses
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
from cs231n_tf.sequence import decoding
from cs231n_tf.sequence.bleu import corpus_bleu
from cs231n_tf.sequence.captions import END, NULL, START, Vocabulary, load_captions
from cs231n_tf.train.config import _flag

NAME = "caption"
CELLS = ("rnn", "lstm", "gru")
DEFAULT_ENCODER = "small_convnet"

_DATA, _MODEL, _OPT = "model and data", "model", "optimisation"
_DECODE, _PERF, _RUN = "decoding", "performance and devices", "run directory and checkpoints"


@dataclasses.dataclass
class CaptionConfig(EngineConfig):
    """Everything that determines a captioning run (saved in the run's ``config.json``)."""

    epochs: int = _flag(15, "passes over the training images (each with one of its captions per epoch)",
                        kind="positive_int")
    batch_size: int = _flag(64, "global batch size (images)", kind="positive_int", group=_DATA)
    seed: int = _flag(0, "random seed of the weights, dropout and caption choice", kind="non_negative_int")
    max_steps: int = _flag(None, "stop after this many steps (resumable)", kind="positive_int")
    steps_per_execution: int = _flag(1, "train steps per tf.function call", kind="positive_int", group=_PERF)
    xla: bool = _flag(False, "compile the train step with XLA (jit_compile)", kind="bool", group=_PERF)
    mixed_precision: str = _flag(None, "mixed precision policy (float16 uses dynamic loss scaling)",
                                 choices=MIXED_PRECISION, group=_PERF)
    strategy: str = _flag("default", "tf.distribute strategy", choices=("default", "one_device", "mirrored"),
                          group=_PERF)
    checkpoint_every: int = _flag(0, "also checkpoint every N steps (0: at the end of each epoch only)",
                                  kind="non_negative_int", group=_RUN)
    keep_checkpoints: int = _flag(3, "checkpoints kept", kind="positive_int", group=_RUN)
    log_every: int = _flag(20, "TensorBoard scalars every N steps", kind="positive_int", group=_RUN)
    deterministic: bool = _flag(False, "enable TensorFlow op determinism", kind="bool", group=_PERF)
    dataset: str = _flag("synthetic", "captioning data: synthetic, synthetic:N, coco_captions:ANN.json:IMAGE_DIR "
                         "or coco_captions (tfds)", group=_DATA, metavar="SPEC")
    image_size: int = _flag(None, "resize images to this square size (default: the data set's own; "
                            "COCO images need one)", kind="positive_int", group=_DATA)
    max_length: int = _flag(16, "most words per caption (longer ones are an error unless --truncate)",
                            kind="positive_int", group=_DATA)
    truncate: bool = _flag(False, "cut longer training captions to max_length words", kind="bool", group=_DATA)
    min_count: int = _flag(1, "words seen fewer times in the training captions become <UNK>", kind="positive_int",
                           group=_DATA)
    validation_fraction: float = _flag(0.1, "share of the images held out for validation", kind="unit_float",
                                       group=_DATA)
    test_fraction: float = _flag(0.1, "share of the images held out for the test split", kind="unit_float",
                                 group=_DATA)
    encoder: str = _flag(DEFAULT_ENCODER, "encoder: a convolutional model of the registry (cut at its last "
                         "feature map) or efficientnet_lite0", group=_MODEL, metavar="MODEL")
    encoder_weights: str = _flag(None, "pretrained encoder weights (imagenet for efficientnet_lite0)",
                                 group=_MODEL, metavar="WEIGHTS")
    freeze_encoder: bool = _flag(False, "keep the encoder's weights and batch-norm statistics fixed", kind="bool",
                                 group=_MODEL)
    cell: str = _flag("lstm", "decoder cell", choices=CELLS, group=_MODEL)
    attention: bool = _flag(True, "soft attention over the encoder's feature map (Show, Attend and Tell)",
                            kind="bool", group=_MODEL)
    embedding: int = _flag(128, "word embedding size", kind="positive_int", group=_MODEL)
    hidden: int = _flag(256, "units of the recurrent cell", kind="positive_int", group=_MODEL)
    attention_dim: int = _flag(128, "size of the attention's keys", kind="positive_int", group=_MODEL)
    dropout: float = _flag(0.2, "dropout before the vocabulary logits", kind="unit_float", group=_MODEL)
    doubly_stochastic: float = _flag(1.0, "weight lambda of the doubly stochastic attention regulariser",
                                     kind="non_negative_float", group=_MODEL)
    lr: float = _flag(2e-3, "Adam learning rate", kind="positive_float")
    clip_norm: float = _flag(5.0, "clip the gradient's global norm to this", kind="positive_float")
    beam_width: int = _flag(3, "beam width when evaluating (1: greedy)", kind="positive_int", group=_DECODE)
    length_penalty: float = _flag(0.6, "alpha of Wu et al.'s length penalty ((5 + n) / 6) ** alpha",
                                  kind="non_negative_float", group=_DECODE)

    def validate(self):
        EngineConfig.validate(self)
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"dataset must be a non-empty spec string, got {self.dataset!r}")
        if not isinstance(self.encoder, str) or not self.encoder:
            raise ConfigError(f"encoder must be a model name, got {self.encoder!r}")
        validation.one_of("cell", self.cell, CELLS)
        validation.optional_positive_int("image_size", self.image_size)
        for name in ("max_length", "min_count", "embedding", "hidden", "attention_dim", "beam_width"):
            validation.positive_int(name, getattr(self, name))
        validation.positive_number("lr", self.lr)
        validation.positive_number("clip_norm", self.clip_norm)
        validation.positive_number("doubly_stochastic", self.doubly_stochastic, allow_zero=True)
        validation.positive_number("length_penalty", self.length_penalty, allow_zero=True)
        dropout = validation.positive_number("dropout", self.dropout, allow_zero=True)
        if dropout >= 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        return rundir.config_from_json(cls, obj, "caption config")


# ---- the model ------------------------------------------------------------------------------------


def build_encoder(name, image_shape, weights=None):
    """``(model: images -> [B, H', W', D] feature map, input_stats or None)`` from the registry.

    Classifiers are cut at their last 4-D output (before global pooling); models with an
    ``include_top`` option are built without their top.
    """
    from cs231n_tf.models import registry

    spec = registry.pretrained_spec(name, weights) if weights is not None else registry.get_spec(name)
    options = {}
    accepted = spec.options()
    if "include_top" in accepted:
        options.update(include_top=False, pooling=None)
    if weights is not None:
        options["weights"] = weights
    net = registry.build(name, tuple(image_shape), spec.canonical_num_classes, **options)
    grid = None
    for layer in reversed(net.layers):
        if isinstance(layer, tf.keras.layers.InputLayer):
            break
        out = layer.output
        if not isinstance(out, (list, tuple, dict)) and len(out.shape) == 4:
            grid = out
            break
    if grid is None:
        raise ConfigError(f"encoder {name!r} has no convolutional feature map to caption from; use a "
                          f"convolutional model (e.g. {DEFAULT_ENCODER}, resnet20, efficientnet_lite0)")
    encoder = tf.keras.Model(net.inputs, grid, name=f"encoder_{name}")
    return encoder, (spec.input_stats if weights is not None else None)


class SoftAttentionCell(tf.keras.layers.Layer):
    """Show, Attend and Tell's soft attention wrapped around a Keras recurrent cell.

    Used inside ``tf.keras.layers.RNN(cell, ...)(embeddings, initial_state=..., constants=[memory])``
    and stepped directly by the decoder. ``memory`` is ``[B, L, D + A]``: the features and their
    attention keys, concatenated once per image. Output per step: ``[h (H), context (D), alpha (L)]``.
    """

    def __init__(self, cell, feature_dim, attention_dim, positions, input_dim, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.feature_dim, self.attention_dim, self.positions = int(feature_dim), int(attention_dim), int(positions)
        self.input_dim = int(input_dim)
        self.state_size = cell.state_size
        self.output_size = int(cell.units) + self.feature_dim + self.positions
        self.query = tf.keras.layers.Dense(self.attention_dim, use_bias=False, name="query")
        self.score = tf.keras.layers.Dense(1, use_bias=False, name="score")
        self.gate = tf.keras.layers.Dense(1, activation="sigmoid", name="gate")

    def build(self, input_shape):
        units = int(self.cell.units)
        self.query.build((None, units))
        self.score.build((None, self.attention_dim))
        self.gate.build((None, units))
        self.cell.build((None, self.input_dim + self.feature_dim))
        self.built = True

    def attend(self, h, memory):
        """``(context [B, D], alpha [B, L])`` for hidden state ``h`` over ``memory``."""
        features, keys = memory[..., :self.feature_dim], memory[..., self.feature_dim:]
        energy = self.score(tf.tanh(keys + self.query(h)[:, None, :]))[..., 0]
        alpha = tf.nn.softmax(tf.cast(energy, tf.float32), axis=-1)
        context = tf.einsum("bl,bld->bd", tf.cast(alpha, features.dtype), features)
        return self.gate(h) * context, alpha

    def call(self, inputs, states, constants=None, training=None):
        (memory,) = constants
        h = states[0]
        context, alpha = self.attend(h, memory)
        out, new_states = self.cell(tf.concat([inputs, context], -1), states, training=training)
        new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
        return tf.concat([out, context, tf.cast(alpha, out.dtype)], -1), new_states


def _cell_layer(kind, units, sequence=True, name=None):
    common = dict(return_sequences=True, return_state=True)
    if kind == "lstm":
        cell_args = dict(activation="tanh", recurrent_activation="sigmoid", use_bias=True, recurrent_dropout=0.0)
        return (tf.keras.layers.LSTM(units, unroll=False, name=name, **cell_args, **common) if sequence
                else tf.keras.layers.LSTMCell(units, name=name, **cell_args))
    if kind == "gru":
        cell_args = dict(activation="tanh", recurrent_activation="sigmoid", use_bias=True, recurrent_dropout=0.0,
                         reset_after=True)
        return (tf.keras.layers.GRU(units, unroll=False, name=name, **cell_args, **common) if sequence
                else tf.keras.layers.GRUCell(units, name=name, **cell_args))
    return (tf.keras.layers.SimpleRNN(units, activation="tanh", name=name, **common) if sequence
            else tf.keras.layers.SimpleRNNCell(units, activation="tanh", name=name))


class Captioner(tf.keras.Model):
    """Encoder + (attention) decoder; see the module docstring.

    ``config``: a :class:`CaptionConfig`; ``vocab_size``; ``image_shape`` ``(H, W, 3)``;
    ``mean``/``std``: the per-channel normalisation of unit-scale images (overridden by the
    pretrained encoder's ``input_stats``).
    """

    def __init__(self, config, vocab_size, image_shape, mean, std, name="captioner"):
        super().__init__(name=name)
        self.settings = config
        self.vocab_size = int(vocab_size)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.encoder, stats = build_encoder(config.encoder, self.image_shape, config.encoder_weights)
        if stats is not None:
            mean, std = stats
        self.mean = tf.constant(np.broadcast_to(np.asarray(mean, np.float32), (3,)))
        self.std = tf.constant(np.broadcast_to(np.asarray(std, np.float32), (3,)))
        if config.freeze_encoder:
            self.encoder.trainable = False
        grid = self.encoder.output_shape
        self.grid = (int(grid[1]), int(grid[2]))
        self.positions, self.feature_dim = self.grid[0] * self.grid[1], int(grid[3])
        self.num_states = 2 if config.cell == "lstm" else 1
        h = config.hidden
        self.init_states = [tf.keras.layers.Dense(h, activation="tanh", name=f"init_{s}")
                            for s in ("h", "c")[:self.num_states]]
        self.embed = tf.keras.layers.Embedding(self.vocab_size, config.embedding, name="embedding")
        if config.attention:
            self.keys = tf.keras.layers.Dense(config.attention_dim, name="attention_keys")
            self.cell = SoftAttentionCell(_cell_layer(config.cell, h, sequence=False, name=config.cell),
                                          self.feature_dim, config.attention_dim, self.positions, config.embedding,
                                          name="soft_attention")
            # Unrolled over the (static) caption length: about 2x faster to train on a CPU than
            # the while loop, whose backward pass keeps every step's attention on a stack.
            self.rnn = tf.keras.layers.RNN(self.cell, return_sequences=True, return_state=True, unroll=True, name="decoder")
            self.memory_dim = self.feature_dim + config.attention_dim
            self.attention_size = self.positions
        else:
            self.rnn = _cell_layer(config.cell, h, name="decoder")
            self.cell = self.rnn.cell
            self.memory_dim = self.feature_dim
            self.attention_size = 0
        self.drop = tf.keras.layers.Dropout(config.dropout, name="dropout")
        # float32 logits (the mixed-precision guide's float32 output layer).
        self.logits = tf.keras.layers.Dense(self.vocab_size, dtype="float32", name="logits")

    # The pieces, each used by training, decoding and the serving signatures alike.

    def encode(self, images, training=False):
        """Unit-scale images ``[B, H, W, 3]`` -> ``(memory [B, L', M], initial states)``.

        With attention ``memory`` is ``[B, L, D + A]`` (features and keys); without it is the
        mean feature ``[B, 1, D]`` (what the initial states are computed from; the steps ignore it).
        """
        x = (tf.cast(images, tf.float32) - self.mean) / self.std
        frozen = self.settings.freeze_encoder
        grid = self.encoder(x, training=training and not frozen)
        features = tf.reshape(grid, [-1, self.positions, self.feature_dim])
        pooled = tf.reduce_mean(features, axis=1)
        states = [layer(pooled) for layer in self.init_states]
        memory = tf.concat([features, self.keys(features)], -1) if self.settings.attention else pooled[:, None, :]
        return memory, states

    def _head(self, outputs, training):
        h = self.settings.hidden
        if self.settings.attention:
            hidden, context = outputs[..., :h], outputs[..., h:h + self.feature_dim]
            alpha = outputs[..., h + self.feature_dim:]
            x = tf.concat([hidden, context], -1)
        else:
            x, alpha = outputs, None
        return self.logits(self.drop(x, training=training)), alpha

    def decode(self, tokens, memory, states, training=False):
        """Teacher forcing: ``tokens [B, T]`` -> ``(logits [B, T, V], alpha [B, T, L] or None)``."""
        embedded = self.embed(tokens)
        if self.settings.attention:
            outputs, *_ = self.rnn(embedded, initial_state=states, constants=[memory], training=training)
        else:
            outputs, *_ = self.rnn(embedded, initial_state=states, training=training)
        return self._head(outputs, training)

    def step(self, tokens, states, memory):
        """One decoding step: ``tokens [N]`` -> ``(log_probs [N, V], states, alpha [N, L])`` (a search's ``step_fn``)."""
        embedded = self.embed(tokens)
        if self.settings.attention:
            out, new_states = self.cell(embedded, list(states), constants=[memory])
        else:
            out, new_states = self.cell(embedded, list(states) if self.num_states > 1 else states[0])
        new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
        logits, alpha = self._head(out, training=False)
        if alpha is None:
            alpha = tf.zeros([tf.shape(tokens)[0], 0], tf.float32)
        return tf.nn.log_softmax(logits), new_states, tf.cast(alpha, tf.float32)

    def call(self, inputs, training=False):
        images, tokens = inputs
        memory, states = self.encode(images, training=training)
        return self.decode(tokens, memory, states, training=training)

    def search(self, images, beam_width, max_length, length_penalty, ids):
        """Beam search (width 1: greedy) in the graph: a :class:`~cs231n_tf.sequence.decoding.Decoded`."""
        memory, states = self.encode(images)
        return decoding.beam_search(self.step, states, memory, start_id=ids[START], end_id=ids[END],
                                    null_id=ids[NULL], max_length=max_length, beam_width=beam_width,
                                    length_penalty=length_penalty, attention_size=self.attention_size)

    def build_all(self):
        """Create every variable (a zero batch through the model and one decoding step)."""
        images = tf.zeros((1,) + self.image_shape)
        self((images, tf.zeros((1, 2), tf.int32)), training=False)
        memory, states = self.encode(images)
        self.step(tf.zeros([1], tf.int32), states, memory)
        return self


def caption_loss(logits, targets, alpha=None, doubly_stochastic=0.0):
    """``(per-caption loss [B], per-caption words [B], regulariser [B])`` of teacher-forced logits.

    ``targets`` ``[B, T]`` with ``<NULL>`` = 0 masked: the loss of a caption is the sum of its
    words' cross-entropies; the regulariser is ``lambda * sum_i (1 - sum_t alpha_ti)^2`` over
    its real (unmasked) steps.
    """
    mask = tf.cast(tf.not_equal(targets, 0), tf.float32)
    per_word = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=tf.cast(logits, tf.float32))
    words = tf.reduce_sum(mask, axis=1)
    per_caption = tf.reduce_sum(per_word * mask, axis=1)
    reg = tf.zeros_like(per_caption)
    if alpha is not None and doubly_stochastic:
        coverage = tf.reduce_sum(tf.cast(alpha, tf.float32) * mask[..., None], axis=1)
        reg = doubly_stochastic * tf.reduce_sum(tf.square(1.0 - coverage), axis=-1)
    return per_caption, words, reg


class CaptionTask(Task):
    """Image captioning on the engine (a :class:`CaptionConfig`); see the module docstring.

    ``data``: a :class:`~cs231n_tf.sequence.captions.CaptionData` to use instead of loading
    ``config.dataset``; ``vocab``: the vocabulary the data must have (a resumed run's).
    """

    name = NAME

    def __init__(self, config, data=None, vocab=None):
        super().__init__(config.validate())
        self.data = data
        self._expected_vocab = vocab
        self.model = self.optimizer = None
        self._serving = None

    # ---- data ---------------------------------------------------------------------------------

    def prepare(self):
        if self.data is None:
            c = self.config
            self.data = load_captions(c.dataset, max_length=c.max_length, min_count=c.min_count,
                                      validation_fraction=c.validation_fraction, test_fraction=c.test_fraction,
                                      split_seed=0, image_size=c.image_size, truncate=c.truncate)
        if self._expected_vocab is not None and self.data.vocab != self._expected_vocab:
            raise DataError(f"the data set {self.config.dataset!r} does not give the run's vocabulary "
                            f"({len(self.data.vocab)} words, the run has {len(self._expected_vocab)})")
        self.vocab = self.data.vocab
        decoding.check_beam_width(self.config.beam_width, len(self.vocab))
        if self.data.steps_per_epoch(self.config.batch_size) == 0:
            raise DataError(f"{self.data.num_images('train')} training images are fewer than one batch of "
                            f"{self.config.batch_size}")

    def steps_per_epoch(self):
        return self.data.steps_per_epoch(self.config.batch_size)

    def train_dataset(self, epoch, skip_batches=0):
        return self.data.train_epoch(epoch, self.config.seed, self.config.batch_size, skip_batches)

    def eval_dataset(self, split):
        if self.data.num_images(split) == 0:
            return None
        return self.data.evaluation_batches(split, self.config.batch_size)

    # ---- models and steps ---------------------------------------------------------------------

    def build(self, ctx):
        c = self.config
        with precision(c.mixed_precision):
            self.model = Captioner(c, len(self.vocab), self.data.image_shape, self.data.mean, self.data.std)
            self.model.build_all()
        self.optimizer = ctx.optimizer(tf.keras.optimizers.Adam(c.lr))
        self.optimizer.build(self.model.trainable_variables)
        self.train_loss = tf.keras.metrics.Mean("loss")
        self.train_reg = tf.keras.metrics.Mean("attention_reg")
        self.val_loss = tf.keras.metrics.Mean("loss")
        self._ids = self.vocab.word_to_idx

    def models(self):
        return {"model": self.model}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def metrics(self):
        return [self.train_loss, self.train_reg]

    def eval_metrics(self):
        return [self.val_loss]

    def _losses(self, images, captions, training):
        inputs, targets = captions[:, :-1], captions[:, 1:]
        logits, alpha = self.model((images, inputs), training=training)
        return caption_loss(logits, targets, alpha, self.config.doubly_stochastic)

    def train_step(self, batch, ctx):
        images, captions = batch
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            per_caption, words, reg = self._losses(images, captions, training=True)
            # nats per word of each caption, averaged over the global batch
            loss = ctx.mean(per_caption / tf.maximum(words, 1.0))
            objective = loss + ctx.mean(reg)
        ctx.minimize(tape, objective, variables, self.optimizer,
                     gradient_transform=lambda g: tf.clip_by_global_norm(g, self.config.clip_norm)[0])
        self.train_loss.update_state(per_caption / tf.maximum(words, 1.0))
        self.train_reg.update_state(reg)
        return {"loss": loss, "attention_reg": ctx.mean(reg)}

    def eval_step(self, batch, ctx):
        images, captions, index = batch
        per_caption, words, _ = self._losses(images, captions, training=False)
        self.val_loss.update_state(per_caption / tf.maximum(words, 1.0))
        c = self.config
        decoded = self.model.search(images, c.beam_width, c.max_length + 1, c.length_penalty, self._ids)
        return {"index": index, "tokens": decoded.tokens}

    def evaluate_end(self, outputs, split):
        if "tokens" not in outputs:
            return {}
        order = np.argsort(outputs["index"], kind="stable")
        hypotheses = self.vocab.decode_tokens(outputs["tokens"][order])
        references = self.data.references(split)
        return corpus_bleu(hypotheses, references)

    # ---- reporting and export -----------------------------------------------------------------

    def run_config(self):
        return {"config": self.config.to_json(), "data": self.data.to_json()}

    def describe(self):
        c = self.config
        head = f"{c.cell} with soft attention" if c.attention else c.cell
        return (f"training a captioner ({c.encoder} encoder, {head} decoder) on {self.data.source} "
                f"({self.data.num_images('train')} training images, {len(self.vocab)} words)")

    def summary(self, metrics):
        out = super().summary(metrics)
        out.update(vocab_size=len(self.vocab), train_images=self.data.num_images("train"))
        return out

    def serving_module(self):
        if self.model is None:
            raise ConfigError("the task has no model yet: train it (or build it) before exporting")
        if self._serving is None:
            self._serving = CaptionServing(self.model, self.vocab, self.config)
        return self._serving


class CaptionServing(tf.Module):
    """The exported captioner: ``caption`` (also ``serving_default``), ``encode`` and ``decode_step``.

    - ``encode(images [B, H, W, 3] unit scale) -> {memory, h[, c]}``;
    - ``decode_step(tokens [B] int32, memory, h[, c]) -> {log_probs [B, V], h[, c], attention [B, L]}``,
      the decoder's one step with its states in and out (``c`` for an LSTM only);
    - ``caption(images) -> {tokens [B, T], lengths, scores, attention [B, T, L], captions [B] (strings)}``,
      the whole beam search (the run's ``beam_width`` and ``length_penalty``) in the graph.
    """

    def __init__(self, model, vocab, config, beam_width=None, length_penalty=None):
        super().__init__(name="caption_serving")
        # The functions below are what is exported; tracking the Keras model itself would make
        # tf.saved_model.save retrace every layer's call with guessed input specs. Its variables
        # are tracked, so the SavedModel holds them.
        self.__dict__["model"] = model
        self.model_variables = list(model.variables)
        self.words = tf.constant(vocab.idx_to_word)
        self.ids = dict(vocab.word_to_idx)
        self.beam_width = decoding.check_beam_width(config.beam_width if beam_width is None else beam_width,
                                                    len(vocab))
        self.length_penalty = float(config.length_penalty if length_penalty is None else length_penalty)
        self.max_length = int(config.max_length) + 1  # the words and <END>
        images = tf.TensorSpec([None, *model.image_shape], tf.float32, name="images")
        memory_len = model.attention_size or 1
        specs = [tf.TensorSpec([None], tf.int32, name="tokens"),
                 tf.TensorSpec([None, memory_len, model.memory_dim], tf.float32, name="memory")]
        states = [tf.TensorSpec([None, config.hidden], tf.float32, name=n) for n in ("h", "c")[:model.num_states]]
        self.state_names = [s.name for s in states]
        self.encode = tf.function(self._encode, input_signature=[images])
        if model.num_states == 2:
            step = lambda tokens, memory, h, c: self._step(tokens, memory, [h, c])  # noqa: E731
        else:
            step = lambda tokens, memory, h: self._step(tokens, memory, [h])  # noqa: E731
        self.decode_step = tf.function(step, input_signature=specs + states)
        self.caption = tf.function(self._caption, input_signature=[images])
        self.serve = self.caption

    def _encode(self, images):
        memory, states = self.model.encode(images)
        return {"memory": tf.cast(memory, tf.float32), **{n: tf.cast(s, tf.float32)
                                                          for n, s in zip(self.state_names, states)}}

    def _step(self, tokens, memory, states):
        log_probs, new_states, alpha = self.model.step(tokens, states, memory)
        return {"log_probs": log_probs, "attention": alpha,
                **{n: tf.cast(s, tf.float32) for n, s in zip(self.state_names, new_states)}}

    def _caption(self, images):
        d = self.model.search(images, self.beam_width, self.max_length, self.length_penalty, self.ids)
        words = tf.ragged.boolean_mask(tf.gather(self.words, d.tokens), d.tokens > self.ids[END])
        return {"tokens": d.tokens, "lengths": d.lengths, "scores": d.scores, "attention": d.attention,
                "captions": tf.strings.reduce_join(words, axis=1, separator=" ")}

    def signatures(self, images):
        """``{name: (tf.function, inputs)}`` for :func:`~cs231n_tf.export.export_module`, fed from ``images``."""
        encoded = {k: v.numpy() for k, v in self.encode(tf.constant(images)).items()}
        step_inputs = {"tokens": np.full(len(images), self.ids[START], np.int32), **encoded}
        return {"serving_default": (self.caption, {"images": images}), "encode": (self.encode, {"images": images}),
                "decode_step": (self.decode_step, step_inputs)}


# ---- run directories ------------------------------------------------------------------------------


@dataclasses.dataclass
class CaptionRun:
    """A captioning run loaded for decoding: its config, vocabulary, data statistics and model."""

    run_dir: str
    config: CaptionConfig
    vocab: Vocabulary
    data_info: dict
    model: Captioner
    checkpoint: str

    def serving(self, beam_width=None, length_penalty=None):
        return CaptionServing(self.model, self.vocab, self.config, beam_width, length_penalty)


def load_run_config(run_dir):
    """``(CaptionConfig, Vocabulary, data info)`` of a caption run; other runs raise :class:`RunDirError`."""
    def parse(obj):
        info = obj["data"]
        for key in ("image_shape", "mean", "std", "max_length"):
            info[key]
        return CaptionConfig.from_json(obj["config"]), Vocabulary.from_json(info["vocab"]), info

    return rundir.read_task_config(run_dir, NAME, parse, "caption")


def load_run(run_dir, checkpoint=None):
    """The :class:`CaptionRun` of ``run_dir`` at ``checkpoint`` (default: the latest), in float32."""
    config, vocab, info = load_run_config(run_dir)
    checkpoint = rundir.latest_checkpoint(run_dir, checkpoint)
    # The pretrained weights are in the checkpoint: do not convert them again.
    model = Captioner(dataclasses.replace(config, encoder_weights=None, mixed_precision=None), len(vocab),
                      info["image_shape"], info["mean"], info["std"]).build_all()
    if config.encoder_weights is not None:
        from cs231n_tf.models import registry

        model.mean, model.std = (tf.constant(np.asarray(v, np.float32))
                                 for v in registry.pretrained_spec(config.encoder, config.encoder_weights).input_stats)
    restore_checkpoint(tf.train.Checkpoint(model=model), checkpoint, partial=True)
    return CaptionRun(os.path.abspath(run_dir), config, vocab, info, model, checkpoint)


def draw_attention(image, words, attention, grid, path, title=None):
    """A PNG of ``image`` with each word's attention map over it (Show, Attend and Tell's figure).

    ``image``: ``[H, W, 3]`` in [0, 1]; ``words``: the caption's words (``<END>`` may follow);
    ``attention``: ``[T, L]`` weights of each generated token; ``grid``: ``(H', W')`` with
    ``H' W' = L``. Each map is upsampled bilinearly to the image and drawn on top of it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cs231n_tf.fileio import atomic_write_bytes

    image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    attention = np.asarray(attention, np.float32)
    if attention.ndim != 2 or attention.shape[1] != grid[0] * grid[1]:
        raise DataError(f"attention of shape {attention.shape} does not match a {grid[0]}x{grid[1]} feature grid")
    words = list(words)[:len(attention)]
    panels = len(words) + 1
    cols = min(panels, 6)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(image)
    axes[0, 0].set_title("image", fontsize=9)
    h, w = image.shape[:2]
    for i, word in enumerate(words, start=1):
        ax = axes[i // cols, i % cols]
        heat = tf.image.resize(attention[i - 1].reshape(grid[0], grid[1], 1), (h, w), method="bilinear").numpy()[..., 0]
        ax.imshow(image)
        ax.imshow(heat, cmap="magma", alpha=0.6, extent=(0, w, h, 0))
        ax.set_title(word, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def predict(run, images, out_dir=None, names=None, beam_width=None, length_penalty=None):
    """Captions of unit-scale ``images`` (``[N, H, W, 3]`` at the run's image shape) by a run.

    With ``out_dir`` (and an attention decoder) each image's attention PNG is written there as
    ``<name>.attention.png``. Returns a list of ``{"caption", "score", "attention_png"}``.
    """
    from cs231n_tf.fileio import confined_path

    if not isinstance(run, CaptionRun):
        run = load_run(run)
    captions, decoded = caption_images(run, images, beam_width, length_penalty)
    names = list(names) if names is not None else [f"image{i}" for i in range(len(captions))]
    results = []
    for i, caption in enumerate(captions):
        entry = {"name": names[i], "caption": caption, "score": float(decoded.scores[i])}
        if out_dir is not None and run.model.attention_size:
            os.makedirs(out_dir, exist_ok=True)
            words = caption.split() + [END]
            path = confined_path(out_dir, f"{os.path.basename(names[i])}.attention.png")
            entry["attention_png"] = draw_attention(images[i], words, decoded.attention[i][:len(words)],
                                                    run.model.grid, path, title=caption)
        results.append(entry)
    return results


def read_images(specs, image_shape):
    """Image files or ``photo:NAME`` specs as unit-scale ``[N, H, W, 3]`` at ``image_shape`` (resized bilinearly)."""
    from cs231n_tf.train.predict import read_image_spec

    if isinstance(specs, str) or not specs:
        raise ConfigError("images must be a non-empty list of paths or photo:NAME")
    out = []
    for spec in specs:
        pixels = read_image_spec(spec, channels=3).astype(np.float32) / 255.0
        if pixels.shape[:2] != tuple(image_shape[:2]):
            pixels = tf.image.resize(pixels, tuple(image_shape[:2]), method="bilinear").numpy()
        out.append(np.clip(pixels, 0.0, 1.0))
    return np.stack(out).astype(np.float32)


def load_run_data(run):
    """The captioning data a run was trained on, reloaded from what its ``config.json`` recorded."""
    info = run.data_info
    return load_captions(info["spec"], max_length=info["max_length"], min_count=info.get("min_count", 1),
                         validation_fraction=info.get("validation_fraction", 0.1),
                         test_fraction=info.get("test_fraction", 0.1), split_seed=info.get("split_seed", 0),
                         image_size=tuple(info["image_shape"][:2]), truncate=True)


def train(config, run_dir=None, resume=False, data=None, log=print, hooks=(), progress=None):
    """Train a captioner on the engine; returns its :class:`~cs231n_tf.engine.EngineResult`.

    The data are loaded and checked before the run directory is touched; ``resume`` continues
    the run in ``run_dir`` (its data must give the same vocabulary).
    """
    vocab = None
    if resume:
        if run_dir is None:
            raise ConfigError("resume needs a run directory")
        _, vocab, _ = load_run_config(run_dir)
    task = CaptionTask(config, data=data, vocab=vocab)
    task.prepare()
    return Engine(task, run_dir, resume=resume, log=log, hooks=hooks, progress=progress).run()


def caption_images(run, images, beam_width=None, length_penalty=None, batch_size=32):
    """Captions of unit-scale ``images`` ``[N, H, W, 3]`` by a :class:`CaptionRun` (or run directory).

    Returns ``(captions: list of str, decoded: Decoded of NumPy arrays)``.
    """
    if not isinstance(run, CaptionRun):
        run = load_run(run)
    images = np.asarray(images, np.float32)
    shape = tuple(run.model.image_shape)
    if images.ndim != 4 or images.shape[1:] != shape:
        raise DataError(f"the run's captioner takes images of shape {shape}, got {images.shape[1:]}")
    serving = run.serving(beam_width, length_penalty)
    batch_size = validation.positive_int("batch_size", batch_size)
    parts = [serving.caption(tf.constant(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
    out = {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}
    captions = [c.decode("utf-8") for c in out["captions"]]
    return captions, decoding.Decoded(out["tokens"], out["lengths"], out["scores"],
                                      out["scores"] / decoding.length_penalty_factor(out["lengths"].astype(np.float64),
                                                                                    serving.length_penalty),
                                      out["attention"])


def evaluate(run_dir, dataset=None, split="test", beam_width=None, length_penalty=None, checkpoint=None,
             batch_size=32):
    """BLEU-1..4 of a run's captions: on its own ``split``, or on all of the images of ``dataset``.

    ``dataset`` is a spec of the same kind of data (a held-out COCO-format set); its captions are
    tokenised the same way and every one of them is a reference. Returns a dict with
    ``bleu1..bleu4``, ``images``, ``split``/``dataset``, ``beam_width`` and ``length_penalty``.
    """
    run = load_run(run_dir, checkpoint)
    c = run.config
    if dataset is None:
        data = load_run_data(run)
        if split not in ("validation", "test", "train"):
            raise ConfigError(f"split must be train, validation or test, got {split!r}")
        images = data.splits[split].images
        references = data.references(split)
        where = {"split": split}
    else:
        data = load_captions(dataset, max_length=c.max_length, validation_fraction=0.0, test_fraction=0.0,
                             image_size=tuple(run.model.image_shape[:2]), truncate=True)
        images, references = data.splits["train"].images, data.references("train")
        where = {"dataset": dataset}
        if tuple(data.image_shape) != tuple(run.model.image_shape):
            raise DataError(f"{dataset!r} has images of shape {data.image_shape}, the run's captioner takes "
                            f"{tuple(run.model.image_shape)}")
    if len(images) == 0:
        raise DataError(f"no images to evaluate on ({where})")
    serving = run.serving(beam_width, length_penalty)
    _, decoded = caption_images(run, images / data.pixel_max, serving.beam_width, serving.length_penalty,
                                batch_size)
    scores = corpus_bleu(run.vocab.decode_tokens(decoded.tokens), references)
    return {**scores, "images": int(len(images)), **where, "beam_width": serving.beam_width,
            "length_penalty": serving.length_penalty, "run_dir": run.run_dir, "checkpoint": run.checkpoint}


def export(run_dir, out=None, quantize="none", checkpoint=None, saved_models_root="saved_models", examples=16):
    """Export a caption run: a SavedModel (``serving_default`` = ``caption``, ``encode``, ``decode_step``)
    and the decoder step as ``.tflite``, each verified against the Keras model on test images.

    Writes ``out/saved_model/`` and ``out/decode_step_<quantize>.tflite`` with ``.report.json``
    beside each (default ``out``: ``saved_models/<run name>/``); returns ``{"saved_model": report,
    "tflite": report}``. ``quantize``: ``none``, ``dynamic`` or ``float16`` (the step's inputs are
    token ids and states, not images, so full-int8 calibration is not offered).
    """
    from cs231n_tf.export import export_module, export_signature_tflite

    if quantize not in ("none", "dynamic", "float16"):
        raise ConfigError(f"quantize must be none, dynamic or float16 for the decoder step, got {quantize!r}")
    run = load_run(run_dir, checkpoint)
    data = load_run_data(run)
    split = "test" if data.num_images("test") else "train"
    images = (data.splits[split].images[:validation.positive_int("examples", examples)] / data.pixel_max)
    images = images.astype(np.float32)
    out = os.path.abspath(out or os.path.join(saved_models_root, os.path.basename(os.path.normpath(run_dir))))
    serving = run.serving()
    signatures = serving.signatures(images)
    saved = export_module(serving, os.path.join(out, "saved_model"), signatures=signatures)
    keras_tokens = serving.caption(tf.constant(images))["tokens"].numpy()
    loaded = tf.saved_model.load(saved["path"]).signatures["serving_default"]
    saved["caption_agreement"] = float((loaded(images=tf.constant(images))["tokens"].numpy()
                                        == keras_tokens).all(axis=1).mean())
    step_fn, step_inputs = signatures["decode_step"]
    tflite = export_signature_tflite(serving, step_fn, os.path.join(out, f"decode_step_{quantize}.tflite"),
                                     step_inputs, quantize=quantize, name="decode_step")
    for report in (saved, tflite):
        report.update({"run_dir": run.run_dir, "checkpoint": run.checkpoint, "verified_on": f"{len(images)} {split} images"})
    from cs231n_tf.fileio import atomic_write_json

    atomic_write_json(saved["path"].rstrip("/") + ".report.json", saved)
    atomic_write_json(tflite["path"] + ".report.json", tflite)
    return {"saved_model": saved, "tflite": tflite}
