"""Image captioning with a recurrent network (lecture 10, assignment 3's ``CaptioningRNN``: the
RNN_Captioning and LSTM_Captioning notebooks).

An image's CNN feature vector ``(D,)`` is projected to the recurrent network's initial hidden
state; the network then reads a caption one word vector at a time and scores the next word over
the vocabulary at every step::

    h0 = features @ W_proj + b_proj                    (N, D) -> (N, H)
    x = W_embed[captions[:, :-1]]                      (N, T-1) -> (N, T-1, W)
    h = rnn(x, h0) or lstm(x, h0)                      (N, T-1, H)
    scores = h @ W_vocab + b_vocab                     (N, T-1, V)
    loss = temporal_softmax_loss(scores, captions[:, 1:], captions[:, 1:] != <NULL>)

Every layer is one of the hand-written ops of :mod:`cs231n_tf.ops` (tier 1), so ``loss``'s
gradients are the course's backward passes, run by ``tf.GradientTape`` inside one
``tf.function``. :meth:`CaptioningRNN.sample` decodes greedily with the single-step ops inside a
``tf.while_loop``, so a whole batch of captions is one graph call.
"""

import numbers
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
# tf.Variable(...) is a factory whose concrete class is not exported under ``tf.``; subclassing
# that class is the way to add attributes to a variable while keeping everything a variable does
# (assign, optimizers, tf.function capture, checkpoints).
from tensorflow.python.ops.resource_variable_ops import ResourceVariable

from cs231n_tf import ops, validation
from cs231n_tf.classic._inputs import as_float_tensor, choice
from cs231n_tf.classic._network import float_dtype
from cs231n_tf.errors import ConfigError, DataError, InputTypeError, ShapeError

CELL_TYPES = ("rnn", "lstm")
NULL, START, END = "<NULL>", "<START>", "<END>"


class Parameter(ResourceVariable):
    """A ``tf.Variable`` that also has NumPy's ``size`` and ``ndim`` (Python ints).

    The notebooks reset a model with
    ``model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)``: ``reshape``
    accepts the ints a ``TensorShape`` unpacks to, but a plain ``tf.Variable`` has no ``size``.
    """

    @property
    def size(self):
        return self.shape.num_elements()

    @property
    def ndim(self):
        return self.shape.rank

    def __deepcopy__(self, memo):
        # The base class's copy would be a plain variable without ``size`` (eager only, like it).
        copied = Parameter(self.read_value(), trainable=self.trainable, name=self.name.split(":")[0])
        memo[id(self)] = copied
        return copied


def _check_vocabulary(word_to_idx):
    """``word_to_idx`` as a ``{str: int}`` dict with ``<NULL>`` and distinct non-negative ids.

    Ids need not be contiguous: the vocabulary size is ``len(word_to_idx)``, as in the course
    (whose own check uses ``{'<NULL>': 0, 'cat': 2, 'dog': 3}``), so only the special tokens,
    which the model itself feeds or compares against, must have ids below it.
    """
    if not isinstance(word_to_idx, Mapping):
        raise InputTypeError(f"word_to_idx must be a dict of word -> index, got {type(word_to_idx).__name__}")
    vocab = {}
    owner = {}
    for word, idx in word_to_idx.items():
        if not isinstance(word, str):
            raise InputTypeError(f"word_to_idx keys must be strings, got {word!r}")
        if isinstance(idx, (bool, np.bool_)) or not isinstance(idx, numbers.Integral) or idx < 0:
            raise ConfigError(f"word_to_idx[{word!r}] must be a non-negative int index, got {idx!r}")
        idx = int(idx)
        if idx in owner:
            raise ConfigError(f"word_to_idx maps both {owner[idx]!r} and {word!r} to index {idx}")
        owner[idx] = word
        vocab[word] = idx
    if NULL not in vocab:
        raise ConfigError(f"word_to_idx must contain the padding token {NULL!r} (got words {sorted(vocab)[:10]})")
    for token in (NULL, START, END):
        if token in vocab and vocab[token] >= len(vocab):
            raise ConfigError(
                f"word_to_idx[{token!r}] = {vocab[token]} lies outside the vocabulary of "
                f"len(word_to_idx) = {len(vocab)} words"
            )
    return vocab


class CaptioningRNN:
    """The assignment's captioning network: CNN features -> RNN/LSTM -> word scores.

    ``word_to_idx`` maps each word to its index; the vocabulary size is
    ``V = len(word_to_idx)``. It must contain ``<NULL>`` (padding; masked out of the loss).
    ``<START>`` (the first input of a sampled caption) and ``<END>`` are only needed by
    :meth:`sample`; ``_start``/``_end`` are None without them. ``cell_type`` is ``'rnn'`` or
    ``'lstm'`` (LSTM gates ordered ``i, f, o, g`` as :func:`cs231n_tf.ops.lstm`).

    ``params`` holds, in ``dtype`` (float32 or float64), with ``G = 1`` (rnn) or ``4`` (lstm):

    - ``W_proj (D, H)`` ~ N(0, 1/D), ``b_proj (H,)`` zeros: features -> initial hidden state;
    - ``W_embed (V, W)`` ~ N(0, 1e-4): word vectors;
    - ``Wx (W, G*H)`` ~ N(0, 1/W), ``Wh (H, G*H)`` ~ N(0, 1/H), ``b (G*H,)`` zeros: the cell;
    - ``W_vocab (H, V)`` ~ N(0, 1/H), ``b_vocab (V,)`` zeros: hidden state -> word scores;

    with ``D = input_dim``, ``W = wordvec_dim``, ``H = hidden_dim``: the course's initialisation,
    drawn from TensorFlow's stateless generator so that ``seed`` fixes it. The entries are
    :class:`Parameter` variables (``.numpy()``, ``.assign``, ``.size``, ``.shape``). As in the
    course's other networks an entry may be replaced by a NumPy array or tensor of the same shape
    (``loss`` and ``sample`` convert whatever they find, casting to ``dtype``); with NumPy entries
    the notebooks' ``eval_numerical_gradient(f, model.params[name])``, which perturbs the array
    in place, works unchanged.
    """

    def __init__(self, word_to_idx, input_dim=512, wordvec_dim=128, hidden_dim=128, cell_type="rnn",
                 dtype=np.float32, seed=0):
        self.word_to_idx = _check_vocabulary(word_to_idx)
        self.idx_to_word = {i: w for w, i in self.word_to_idx.items()}
        self.cell_type = choice("cell_type", cell_type, CELL_TYPES)
        self.dtype = float_dtype(dtype)
        self.input_dim = validation.positive_int("input_dim", input_dim)
        self.wordvec_dim = validation.positive_int("wordvec_dim", wordvec_dim)
        self.hidden_dim = validation.positive_int("hidden_dim", hidden_dim)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise InputTypeError(f"seed must be an int, got {seed!r}")
        self.seed = int(seed)
        self.vocab_size = len(self.word_to_idx)
        self._null = self.word_to_idx[NULL]
        self._start = self.word_to_idx.get(START)
        self._end = self.word_to_idx.get(END)

        d, w, h, v = self.input_dim, self.wordvec_dim, self.hidden_dim, self.vocab_size
        g = 4 * h if self.cell_type == "lstm" else h
        # name -> (shape, standard deviation of the initial values; 0 means zeros).
        layout = {
            "W_embed": ((v, w), 0.01),
            "W_proj": ((d, h), 1 / np.sqrt(d)),
            "b_proj": ((h,), 0.0),
            "Wx": ((w, g), 1 / np.sqrt(w)),
            "Wh": ((h, g), 1 / np.sqrt(h)),
            "b": ((g,), 0.0),
            "W_vocab": ((h, v), 1 / np.sqrt(h)),
            "b_vocab": ((v,), 0.0),
        }
        self.param_shapes = {name: shape for name, (shape, _) in layout.items()}
        self.params = {}
        for stream, (name, (shape, scale)) in enumerate(layout.items(), start=1):
            # Each weight draws from its own stream of the stateless RNG, so one seed fixes them all.
            value = scale * tf.random.stateless_normal(shape, seed=[self.seed, stream], dtype=self.dtype)
            self.params[name] = Parameter(value, name=name)

        self._loss_fn = tf.function(self._loss_and_grads, reduce_retracing=True, autograph=False)
        self._sample_fn = tf.function(self._sample_graph, reduce_retracing=True, autograph=False)

    # --- input checks ----------------------------------------------------------------------------

    def _tensors(self):
        """``params`` as tensors of ``dtype``, each checked against its expected shape."""
        tensors = {}
        for name, shape in self.param_shapes.items():
            if name not in self.params:
                raise ConfigError(f"params is missing {name!r}; it must hold {sorted(self.param_shapes)}")
            value = self.params[name]
            try:
                t = tf.convert_to_tensor(value)
            except (TypeError, ValueError) as exc:
                raise InputTypeError(f"params[{name!r}] must be an array or tensor, got {type(value).__name__}: "
                                     f"{exc}") from None
            if not (t.dtype.is_floating or t.dtype.is_integer):
                raise InputTypeError(f"params[{name!r}] must be numeric, got dtype {t.dtype.name}")
            if tuple(t.shape) != shape:
                raise ShapeError(f"params[{name!r}] must have shape {shape}, got {tuple(t.shape)}")
            tensors[name] = tf.cast(t, self.dtype)
        return tensors

    def _check_features(self, features):
        t = as_float_tensor(features, "features", self.dtype)
        if t.shape.rank != 2 or t.shape[0] == 0:
            raise ShapeError(f"features must have shape (N, D) with N >= 1, got {tuple(t.shape)}")
        if t.shape[1] != self.input_dim:
            raise ShapeError(
                f"features has {t.shape[1]} values per example but the model takes input_dim={self.input_dim}"
            )
        return t

    def _check_captions(self, captions, num_examples):
        if isinstance(captions, (tf.Tensor, tf.Variable)):
            t = tf.convert_to_tensor(captions)
            ok, kind = t.dtype.is_integer, t.dtype.name
        else:
            try:
                arr = np.asarray(captions)
            except (TypeError, ValueError) as exc:
                raise InputTypeError(f"captions must be an array of integer word ids: {exc}") from None
            ok, kind = arr.dtype.kind in "iu", str(arr.dtype)
            t = tf.convert_to_tensor(arr) if ok else None
        if not ok:
            raise InputTypeError(f"captions must hold integer word ids, got dtype {kind}")
        if t.shape.rank != 2:
            raise ShapeError(f"captions must have shape (N, T), got shape {tuple(t.shape)}")
        if t.shape[0] != num_examples:
            raise ShapeError(f"captions has {t.shape[0]} rows but features has {num_examples} examples")
        if t.shape[1] < 2:
            # The network reads captions[:, :-1] and predicts captions[:, 1:]: at least one pair.
            raise ShapeError(f"captions must have T >= 2 words per row (an input and a target), got shape "
                             f"{tuple(t.shape)}")
        values = t.numpy()
        bad = (values < 0) | (values >= self.vocab_size)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"captions[{at[0]}, {at[1]}] = {values[at]} is not a word id of the vocabulary "
                            f"[0, {self.vocab_size})")
        return tf.cast(t, tf.int32)

    # --- loss ------------------------------------------------------------------------------------

    def _loss_and_grads(self, p, features, captions):
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        # <NULL> targets are padding: no loss and no gradient from them.
        mask = tf.not_equal(captions_out, self._null)
        with tf.GradientTape() as tape:
            tape.watch(p)
            h0 = ops.affine(features, p["W_proj"], p["b_proj"])
            x = ops.word_embedding(captions_in, p["W_embed"])
            recurrent = ops.lstm if self.cell_type == "lstm" else ops.rnn
            h = recurrent(x, h0, p["Wx"], p["Wh"], p["b"])
            scores = ops.temporal_affine(h, p["W_vocab"], p["b_vocab"])
            loss = ops.temporal_softmax_loss(scores, captions_out, mask)
        return loss, tape.gradient(loss, p)

    def loss_tensors(self, features, captions):
        """Like :meth:`loss` but returns tensors ``(loss, grads)`` (no NumPy round trip)."""
        features = self._check_features(features)
        captions = self._check_captions(captions, features.shape[0])
        return self._loss_fn(self._tensors(), features, captions)

    def loss(self, features, captions):
        """Training loss and gradients for ground-truth ``captions``.

        ``features (N, D)`` float, ``captions (N, T)`` int word ids in ``[0, V)`` (typically
        ``<START> w1 ... <END> <NULL> ...``). The network reads ``captions[:, :-1]`` and is scored
        on predicting ``captions[:, 1:]`` wherever that is not ``<NULL>``; the loss is the summed
        cross-entropy over time, averaged over N. Returns ``(loss, grads)``: a float and a dict of
        NumPy arrays with the keys and shapes of ``params``.
        """
        loss, grads = self.loss_tensors(features, captions)
        return float(loss), {k: v.numpy() for k, v in grads.items()}

    # --- sampling --------------------------------------------------------------------------------

    def _sample_graph(self, p, features, max_length):
        lstm = self.cell_type == "lstm"
        h = ops.affine(features, p["W_proj"], p["b_proj"])
        word = tf.fill(tf.shape(features)[:1], tf.constant(self._start, tf.int32))
        finished = tf.zeros(tf.shape(features)[:1], tf.bool)
        words = tf.TensorArray(tf.int32, size=max_length)

        def step(t, word, h, c, finished, words):
            x = ops.word_embedding(word[:, None], p["W_embed"])[:, 0]
            if lstm:
                h, c = ops.lstm_step(x, h, c, p["Wx"], p["Wh"], p["b"])
            else:
                h = ops.rnn_step(x, h, p["Wx"], p["Wh"], p["b"])
            word = tf.argmax(ops.affine(h, p["W_vocab"], p["b_vocab"]), axis=1, output_type=tf.int32)
            # The argmax is still fed back after <END> (as the course does), so an unfinished
            # caption is exactly the course's; only what is written out is padded.
            words = words.write(t, tf.where(finished, tf.constant(self._null, tf.int32), word))
            if self._end is not None:
                finished = finished | tf.equal(word, self._end)
            return t + 1, word, h, c, finished, words

        state = (tf.constant(0), word, h, tf.zeros_like(h), finished, words)
        words = tf.while_loop(lambda t, *_: t < max_length, step, state)[-1]
        return tf.transpose(words.stack())

    def sample(self, features, max_length=30):
        """Greedy captions for ``features (N, D)``: an int32 NumPy array ``(N, max_length)``.

        Starting from ``<START>`` and the projected features, each step feeds the previous word
        and keeps the highest-scoring next word. Column ``t`` is the word chosen at step ``t``
        (``<START>`` itself is not included). Unlike the course's loop, which keeps emitting words
        after ``<END>``, every position after a caption's first ``<END>`` is ``<NULL>``; a
        vocabulary without ``<END>`` is never padded. Needs ``<START>`` in the vocabulary.
        """
        if self._start is None:
            raise ConfigError(f"sample needs {START!r} in word_to_idx to begin a caption; the vocabulary has "
                              f"{len(self.word_to_idx)} words without it")
        max_length = validation.positive_int("max_length", max_length)
        features = self._check_features(features)
        return self._sample_fn(self._tensors(), features, tf.constant(max_length)).numpy()
