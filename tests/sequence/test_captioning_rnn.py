"""The captioning network of assignment 3: the notebooks' checks, gradients, training, sampling."""

import copy

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.errors import ConfigError, DataError, InputTypeError, ShapeError
from cs231n_tf.ops.gradcheck import numerical_gradient, relative_error
from cs231n_tf.optim.rules import adam
from cs231n_tf.sequence import CaptioningRNN, Parameter

KEYS = {"W_proj", "b_proj", "W_embed", "Wx", "Wh", "b", "W_vocab", "b_vocab"}
WORDS = ["<NULL>", "<START>", "<END>", "cat", "dog", "sat"]
VOCAB = {w: i for i, w in enumerate(WORDS)}
NULL, START, END = 0, 1, 2


def linspace_params(model):
    """The notebooks' way of giving every parameter fixed values (replaces entries by NumPy)."""
    for k, v in model.params.items():
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)


def small_model(cell_type, seed=0, **kwargs):
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=5, hidden_dim=6, cell_type=cell_type,
                          dtype=np.float64, seed=seed, **kwargs)
    # Biases start at zero; random ones make the gradient check cover their gradients properly.
    rng = np.random.default_rng(seed)
    for k, v in model.params.items():
        model.params[k] = v.numpy() + 0.3 * rng.standard_normal(v.shape)
    return model


# Batch 2, timesteps 3 (captions of 4 words); the second caption's last target is <NULL>, so the
# mask removes one step.
SMALL_CAPTIONS = np.array([[START, 3, 4, END], [START, 5, END, NULL]])
SMALL_FEATURES = np.random.default_rng(1).standard_normal((2, 4))


# --- the notebooks' forward checks ---------------------------------------------------------------

# RNN_Captioning.ipynb uses features in [-1.5, 0.3], LSTM_Captioning.ipynb features in [-0.5, 1.7];
# the published losses are for those ranges.
@pytest.mark.parametrize("cell_type, feature_range, expected", [
    ("rnn", (-1.5, 0.3), 9.83235591003),
    ("lstm", (-0.5, 1.7), 9.82445935443),
])
def test_course_forward_check(cell_type, feature_range, expected):
    N, D, W, H = 10, 20, 30, 40
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    V = len(word_to_idx)
    T = 13
    model = CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type,
                          dtype=np.float64)
    assert model._start is None and model._end is None
    linspace_params(model)
    features = np.linspace(*feature_range, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % V).reshape(N, T)
    loss, grads = model.loss(features, captions)
    assert relative_error(loss, expected) < 1e-9
    assert set(grads) == KEYS
    for k, g in grads.items():
        assert isinstance(g, np.ndarray) and g.dtype == np.float64 and g.shape == model.params[k].shape


def test_float32_model_takes_the_notebooks_float64_values():
    model = CaptioningRNN({"<NULL>": 0, "cat": 2, "dog": 3}, input_dim=20, wordvec_dim=30, hidden_dim=40)
    assert model.dtype == tf.float32
    linspace_params(model)
    features = np.linspace(-1.5, 0.3, num=200).reshape(10, 20)
    loss, grads = model.loss(features, (np.arange(130) % 3).reshape(10, 13))
    assert relative_error(loss, 9.83235591003) < 1e-5
    assert all(g.dtype == np.float32 for g in grads.values())


# --- parameters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cell_type, gates", [("rnn", 1), ("lstm", 4)])
def test_params_shapes_and_initialisation(cell_type, gates):
    D, W, H = 400, 300, 200
    words = ["<NULL>", "<START>", "<END>"] + [f"w{i}" for i in range(497)]
    V = len(words)
    model = CaptioningRNN({w: i for i, w in enumerate(words)}, input_dim=D, wordvec_dim=W, hidden_dim=H,
                          cell_type=cell_type, dtype=np.float64)
    shapes = {"W_proj": (D, H), "b_proj": (H,), "W_embed": (V, W), "Wx": (W, gates * H),
              "Wh": (H, gates * H), "b": (gates * H,), "W_vocab": (H, V), "b_vocab": (V,)}
    assert {k: tuple(v.shape) for k, v in model.params.items()} == shapes
    scales = {"W_proj": 1 / np.sqrt(D), "W_embed": 0.01, "Wx": 1 / np.sqrt(W), "Wh": 1 / np.sqrt(H),
              "W_vocab": 1 / np.sqrt(H)}
    for k, v in model.params.items():
        assert isinstance(v, tf.Variable) and isinstance(v, Parameter)
        assert v.dtype == tf.float64
        assert v.size == int(np.prod(shapes[k])) and isinstance(v.size, int) and v.ndim == len(shapes[k])
        values = np.asarray(v)
        assert np.array_equal(values, v.numpy())
        if k in scales:
            assert abs(values.mean()) < 0.05 * scales[k]
            assert values.std() == pytest.approx(scales[k], rel=0.05)
        else:
            assert not values.any()
    assert (model._null, model._start, model._end) == (0, 1, 2)
    assert model.idx_to_word[3] == "w0" and model.word_to_idx["w0"] == 3
    assert model.cell_type == cell_type and model.dtype == tf.float64


def test_deepcopy_keeps_parameters():
    model = CaptioningRNN(VOCAB, 4, 5, 6)
    copied = copy.deepcopy(model)
    for k, v in copied.params.items():
        assert isinstance(v, Parameter) and v.size == model.params[k].size
        assert np.array_equal(v.numpy(), model.params[k].numpy())
    copied.params["Wx"].assign_add(tf.ones_like(copied.params["Wx"]))
    assert not np.array_equal(copied.params["Wx"].numpy(), model.params["Wx"].numpy())
    # The copy computes with its own parameters.
    assert copied.loss(SMALL_FEATURES, SMALL_CAPTIONS)[0] != model.loss(SMALL_FEATURES, SMALL_CAPTIONS)[0]


def test_seed_fixes_the_initial_params():
    a, b, c = (CaptioningRNN(VOCAB, 4, 5, 6, seed=s) for s in (3, 3, 4))
    for k in KEYS - {"b_proj", "b", "b_vocab"}:
        assert np.array_equal(a.params[k].numpy(), b.params[k].numpy())
        assert not np.array_equal(a.params[k].numpy(), c.params[k].numpy())


def test_loss_reads_params_as_they_are_now():
    model = small_model("rnn")
    base, _ = model.loss(SMALL_FEATURES, SMALL_CAPTIONS)
    # A NumPy entry perturbed in place (what the notebooks' eval_numerical_gradient does) ...
    model.params["W_vocab"][0, 3] += 0.5
    moved, _ = model.loss(SMALL_FEATURES, SMALL_CAPTIONS)
    assert moved != base
    # ... and a variable entry assigned to.
    model.params["W_vocab"] = Parameter(model.params["W_vocab"])
    delta = np.zeros((6, 6))
    delta[0, 3] = 0.5
    model.params["W_vocab"].assign_sub(delta)
    assert model.loss(SMALL_FEATURES, SMALL_CAPTIONS)[0] == pytest.approx(base, rel=1e-12)


# --- gradients -----------------------------------------------------------------------------------

def richardson_gradient(f, x, h=1e-3):
    """Numerical gradient with O(h^4) error: ``(4 D(h) - D(2h)) / 3`` from two centred differences.

    Plain centred differences of the whole loss (~5) cannot resolve the LSTM's smallest gradient
    entries (~3e-5) to 1e-7: at h = 1e-5 the loss's rounding error alone is ~1e-10 per entry,
    and a larger h brings O(h^2) truncation error. Cancelling the h^2 term allows h = 1e-3.
    """
    return (4 * numerical_gradient(f, x, h=h) - numerical_gradient(f, x, h=2 * h)) / 3


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_gradients_match_numerical(cell_type):
    model = small_model(cell_type)
    _, grads = model.loss(SMALL_FEATURES, SMALL_CAPTIONS)
    assert set(grads) == KEYS
    for name in sorted(KEYS):
        original = model.params[name].copy()

        def f(w, name=name):
            model.params[name] = w
            return model.loss(SMALL_FEATURES, SMALL_CAPTIONS)[0]

        numeric = richardson_gradient(f, original)
        model.params[name] = original
        assert relative_error(grads[name], numeric) < 1e-7, name
    # <NULL> targets are masked: the <NULL> row of W_embed is never read, so its gradient is zero,
    # and a caption that is all padding after <START> adds nothing.
    assert not grads["W_embed"][NULL].any()


def reference_loss(p, features, captions, cell_type, null):
    """The captioning loss in plain TensorFlow ops, differentiated by TensorFlow's autodiff."""
    captions_in, captions_out = captions[:, :-1], captions[:, 1:]
    mask = tf.cast(tf.not_equal(captions_out, null), features.dtype)
    h = tf.matmul(features, p["W_proj"]) + p["b_proj"]
    c = tf.zeros_like(h)
    x = tf.gather(p["W_embed"], captions_in)
    total = tf.constant(0.0, features.dtype)
    for t in range(captions_in.shape[1]):
        a = tf.matmul(x[:, t], p["Wx"]) + tf.matmul(h, p["Wh"]) + p["b"]
        if cell_type == "rnn":
            h = tf.tanh(a)
        else:
            a_i, a_f, a_o, a_g = tf.split(a, 4, axis=1)
            c = tf.sigmoid(a_f) * c + tf.sigmoid(a_i) * tf.tanh(a_g)
            h = tf.sigmoid(a_o) * tf.tanh(c)
        scores = tf.matmul(h, p["W_vocab"]) + p["b_vocab"]
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=captions_out[:, t], logits=scores)
        total += tf.reduce_sum(losses * mask[:, t])
    return total / tf.cast(tf.shape(features)[0], features.dtype)


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_gradients_equal_tensorflow_autodiff(cell_type):
    rng = np.random.default_rng(5)
    words = ["<NULL>", "<START>", "<END>"] + [f"w{i}" for i in range(9)]
    model = CaptioningRNN({w: i for i, w in enumerate(words)}, input_dim=7, wordvec_dim=8, hidden_dim=9,
                          cell_type=cell_type, dtype=np.float64, seed=2)
    for k, v in model.params.items():
        v.assign_add(0.2 * rng.standard_normal(v.shape))
    features = rng.standard_normal((5, 7))
    captions = rng.integers(0, len(words), size=(5, 8))
    captions[:, 0] = START
    captions[1, 5:] = NULL
    loss, grads = model.loss(features, captions)

    p = {k: tf.constant(v.numpy()) for k, v in model.params.items()}
    with tf.GradientTape() as tape:
        tape.watch(p)
        expected = reference_loss(p, tf.constant(features), tf.constant(captions), cell_type, NULL)
    expected_grads = tape.gradient(expected, p)
    assert relative_error(loss, expected.numpy()) < 1e-12
    for k in KEYS:
        assert relative_error(grads[k], tf.convert_to_tensor(expected_grads[k]).numpy()) < 1e-9, k


# --- training ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_overfits_fifty_captions(cell_type):
    # The notebooks overfit 50 COCO captions; here 50 random captions of up to 17 words with random
    # features, which the network can only memorise.
    rng = np.random.default_rng(0)
    words = ["<NULL>", "<START>", "<END>"] + [f"w{i}" for i in range(17)]
    captions = np.zeros((50, 17), np.int64)
    for row in captions:
        length = rng.integers(8, 16)
        row[0], row[length + 1] = START, END
        row[1:length + 1] = rng.integers(3, len(words), size=length)
    features = rng.standard_normal((50, 32)).astype(np.float32)
    model = CaptioningRNN({w: i for i, w in enumerate(words)}, input_dim=32, wordvec_dim=32, hidden_dim=64,
                          cell_type=cell_type, seed=1)
    configs = {k: {"learning_rate": 2e-2} for k in model.params}
    history = []
    for _ in range(300):
        loss, grads = model.loss_tensors(features, captions)
        history.append(float(loss))
        if history[-1] < 0.1:
            break
        for k, grad in grads.items():
            next_w, configs[k] = adam(tf.convert_to_tensor(model.params[k]), grad, configs[k])
            model.params[k].assign(next_w)
    assert history[0] > 30  # ~ 12 words x log(20) at the start
    assert history[-1] < 0.1
    assert all(isinstance(v, Parameter) for v in model.params.values())


# --- sampling ------------------------------------------------------------------------------------

def reference_sample(p, features, cell_type, start, max_length):
    """The course's greedy sampling loop in NumPy: keeps going after <END>, no padding."""
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h = features @ p["W_proj"] + p["b_proj"]
    c = np.zeros_like(h)
    word = np.full(len(features), start)
    out = np.zeros((len(features), max_length), np.int32)
    for t in range(max_length):
        a = p["W_embed"][word] @ p["Wx"] + h @ p["Wh"] + p["b"]
        if cell_type == "rnn":
            h = np.tanh(a)
        else:
            a_i, a_f, a_o, a_g = np.split(a, 4, axis=1)
            c = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
            h = sigmoid(a_o) * np.tanh(c)
        word = np.argmax(h @ p["W_vocab"] + p["b_vocab"], axis=1)
        out[:, t] = word
    return out


def pad_after_end(captions, end, null):
    padded = captions.copy()
    for row in padded:
        ends = np.flatnonzero(row == end)
        if ends.size:
            row[ends[0] + 1:] = null
    return padded


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_sample_is_the_courses_greedy_decoding_padded_after_end(cell_type):
    rng = np.random.default_rng(3)
    model = CaptioningRNN(VOCAB, input_dim=8, wordvec_dim=10, hidden_dim=12, cell_type=cell_type,
                          dtype=np.float64, seed=4)
    for v in model.params.values():
        v.assign_add(rng.standard_normal(v.shape))
    features = rng.standard_normal((16, 8))
    # A bias towards <END> so that some, but not all, captions finish inside 12 steps.
    model.params["b_vocab"].assign_add(np.eye(len(VOCAB))[END] * 1.5)
    captions = model.sample(features, max_length=12)
    assert captions.shape == (16, 12) and captions.dtype == np.int32
    assert captions.min() >= 0 and captions.max() < len(VOCAB)
    p = {k: v.numpy() for k, v in model.params.items()}
    course = reference_sample(p, features, cell_type, START, 12)
    assert np.array_equal(captions, pad_after_end(course, END, NULL))
    finished = (course[:, :-1] == END).any(axis=1)
    assert finished.any() and not finished.all()
    # Padding really replaced words the course's loop emitted after <END>.
    assert (course[captions == NULL] != NULL).any()
    assert np.array_equal(model.sample(features, max_length=12), captions)


def chain_model():
    """An RNN whose greedy captions are ``cat dog <END>`` whatever the image.

    One-hot word vectors, no recurrence (``Wh = 0``) and an output layer mapping each input word to
    its successor: <START> -> cat -> dog -> <END> -> sat -> sat ...
    """
    V = len(VOCAB)
    model = CaptioningRNN(VOCAB, input_dim=3, wordvec_dim=V, hidden_dim=V, dtype=np.float64)
    successor = {START: 3, 3: 4, 4: END, END: 5, 5: 5, NULL: 5}
    w_vocab = np.zeros((V, V))
    for word, after in successor.items():
        w_vocab[word, after] = 10.0
    values = {"W_proj": 0.0, "b_proj": 0.0, "W_embed": np.eye(V), "Wx": 10 * np.eye(V), "Wh": 0.0, "b": 0.0,
              "W_vocab": w_vocab, "b_vocab": 0.0}
    for k, value in values.items():
        model.params[k].assign(np.broadcast_to(value, model.params[k].shape))
    return model


def test_sample_pads_with_null_after_end():
    model = chain_model()
    features = np.random.default_rng(0).standard_normal((3, 3))
    captions = model.sample(features, max_length=6)
    assert captions.tolist() == [[3, 4, END, NULL, NULL, NULL]] * 3
    # Without padding (the course's loop) the words after <END> would have been "sat sat sat".
    p = {k: v.numpy() for k, v in model.params.items()}
    assert reference_sample(p, features, "rnn", START, 6).tolist() == [[3, 4, END, 5, 5, 5]] * 3
    assert model.sample(features, max_length=2).tolist() == [[3, 4]] * 3
    assert model.sample(features[:1], max_length=1).tolist() == [[3]]


def test_sample_without_end_never_pads():
    words = {"<NULL>": 0, "<START>": 1, "cat": 2}
    model = CaptioningRNN(words, input_dim=3, wordvec_dim=4, hidden_dim=5)
    model.params["b_vocab"].assign([0.0, 0.0, 50.0])
    assert model._end is None
    assert model.sample(np.ones((2, 3)), max_length=4).tolist() == [[2, 2, 2, 2]] * 2


def test_sample_needs_start():
    model = CaptioningRNN({"<NULL>": 0, "cat": 2, "dog": 3}, input_dim=3, wordvec_dim=4, hidden_dim=5)
    with pytest.raises(ConfigError, match="<START>"):
        model.sample(np.ones((2, 3)))


# --- errors --------------------------------------------------------------------------------------

def test_construction_errors():
    with pytest.raises(ConfigError, match="<NULL>"):
        CaptioningRNN({"<START>": 0, "cat": 1})
    with pytest.raises(ConfigError, match="'gru'"):
        CaptioningRNN(VOCAB, cell_type="gru")
    with pytest.raises(ConfigError, match="float16"):
        CaptioningRNN(VOCAB, dtype=np.float16)
    with pytest.raises(ConfigError, match="hidden_dim"):
        CaptioningRNN(VOCAB, hidden_dim=0)
    with pytest.raises(ConfigError, match="'cat'.*'dog'"):
        CaptioningRNN({"<NULL>": 0, "cat": 1, "dog": 1})
    with pytest.raises(ConfigError, match=r"word_to_idx\['<END>'\] = 7"):
        CaptioningRNN({"<NULL>": 0, "<END>": 7})
    with pytest.raises(ConfigError, match="'cat'"):
        CaptioningRNN({"<NULL>": 0, "cat": -1})
    with pytest.raises(InputTypeError, match="word_to_idx"):
        CaptioningRNN(["<NULL>", "cat"])


def test_input_errors():
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=5, hidden_dim=6)
    features = np.zeros((2, 4))
    with pytest.raises(ShapeError, match="input_dim=4"):
        model.loss(np.zeros((2, 5)), SMALL_CAPTIONS)
    with pytest.raises(ShapeError, match="input_dim=4"):
        model.sample(np.zeros((2, 5)))
    with pytest.raises(ShapeError, match=r"\(N, D\)"):
        model.loss(np.zeros(4), SMALL_CAPTIONS[:1])
    with pytest.raises(DataError, match=r"captions\[0, 2\] = 6"):
        model.loss(features, np.array([[1, 3, 6], [1, 2, 0]]))
    with pytest.raises(DataError, match=r"captions\[1, 0\] = -1"):
        model.loss(features, np.array([[1, 3, 2], [-1, 2, 0]]))
    with pytest.raises(InputTypeError, match="float64"):
        model.loss(features, SMALL_CAPTIONS.astype(np.float64))
    with pytest.raises(InputTypeError, match="float32"):
        model.loss(features, tf.constant(SMALL_CAPTIONS, tf.float32))
    with pytest.raises(ShapeError, match=r"\(N, T\)"):
        model.loss(features, SMALL_CAPTIONS[0])
    with pytest.raises(ShapeError, match="3 rows"):
        model.loss(features, np.ones((3, 4), np.int64))
    with pytest.raises(ShapeError, match="T >= 2"):
        model.loss(features, np.ones((2, 1), np.int64))
    with pytest.raises(ConfigError, match="max_length"):
        model.sample(features, max_length=0)
    model.params["Wh"] = np.zeros((6, 7))
    with pytest.raises(ShapeError, match=r"params\['Wh'\].*\(6, 6\)"):
        model.loss(features, SMALL_CAPTIONS)
    del model.params["Wh"]
    with pytest.raises(ConfigError, match="'Wh'"):
        model.sample(features)
