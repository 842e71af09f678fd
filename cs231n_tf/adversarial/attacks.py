"""White-box attacks in pixel units: FGSM, BIM/PGD (L-inf and L2), momentum iterative FGSM, the lecture's
"fool by gradient ascent", the linear-model attack, and robust accuracy over a list of epsilons.

- FGSM: Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples" (2015).
- BIM: Kurakin, Goodfellow & Bengio (2016); PGD: Madry et al., "Towards Deep Learning Models Resistant
  to Adversarial Attacks" (2018).
- MI-FGSM: Dong et al., "Boosting Adversarial Attacks with Momentum" (2018).
- Linear attack: Karpathy, "Breaking Linear Classifiers on ImageNet" (2015).

Every attack takes images ``x`` of shape ``(N, H, W, C)`` (or ``(N, D)``) in ``[clip_min, clip_max]`` and
integer labels ``y`` of shape ``(N,)``. The inner loops are ``tf.range`` loops inside one ``tf.function``.
Conventions follow cleverhans 4 (``cleverhans.tf2``) exactly, which the tests check image for image: the
L2 step is ``g / sqrt(max(1e-12, sum g^2))`` and the L2 projection scales by ``min(1, eps / norm)``.

Softmax outputs: a model whose output is a probability vector (a Keras model whose last layer's
activation is softmax, or any callable whose outputs on the given batch are non-negative and sum to 1)
is attacked through its log-probabilities, which are valid logits (softmax(log p) = p).
"""

import weakref

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, DataError, InputTypeError

_TINY = 1e-12


def _from_run(run_dir):
    # The same loader `predict_images(run_dir=...)` uses; its normalisation becomes part of the function.
    from cs231n_tf.train.evaluate import load_run

    run = load_run(run_dir, None, float32=True)
    info = run.run_config["data"]
    mean, std = np.asarray(info["mean"], np.float32), np.asarray(info["std"], np.float32)
    model = run.model
    return lambda x: model((x - mean) / std, training=False), model


def _from_saved_model(path):
    # An exported classifier: its serving signature takes pixel-unit `images` and returns `logits`
    # (the package's exports put the normalisation inside the graph), and is differentiable.
    loaded = tf.saved_model.load(str(path))  # kept alive by the closure: the signature only references its variables
    signature = loaded.signatures.get("serving_default")
    if signature is None or "images" not in signature.structured_input_signature[1] \
            or "logits" not in signature.structured_outputs:
        raise InputTypeError(f"{path}: a SavedModel to attack needs a serving_default signature from `images` to "
                             f"`logits` (as `cs231n-tf export` writes)")
    return lambda x, _owner=loaded: signature(images=tf.cast(x, tf.float32))["logits"]


def _pretrained(name, weights):
    from cs231n_tf.models import build
    from cs231n_tf.models.registry import pretrained_spec

    spec = pretrained_spec(name, weights)
    model = build(name, input_shape=spec.canonical_input_shape, weights=weights)
    mean, std = (np.asarray(s, np.float32) for s in spec.input_stats)
    return lambda x: model((x - mean) / std, training=False), model


def _keras_softmax(model):
    last = model.layers[-1] if model.layers else None
    act = getattr(last, "activation", None)
    return act is tf.keras.activations.softmax or isinstance(last, tf.keras.layers.Softmax)


def as_logits_fn(model, weights="imagenet", x=None):
    """A callable ``images in pixel units -> logits (N, K)`` for ``model``.

    ``model``: a Keras classifier, a callable images -> logits, a run directory (``str``/path that is a
    directory, loaded with the run's normalisation), a SavedModel directory (its ``serving_default``
    signature, ``images`` in pixel units -> ``logits``), or a registered pretrained model name such as
    ``"efficientnet_lite0"`` (``weights``, with its ``input_stats`` normalisation). Softmax outputs are
    turned into log-probabilities (see the module docstring); ``x`` is the batch used to detect them on a
    plain callable.
    """
    import os

    keras_model = None
    if isinstance(model, (str, os.PathLike)) and os.path.isfile(os.path.join(model, "saved_model.pb")):
        fn = _from_saved_model(model)
    elif isinstance(model, (str, os.PathLike)):
        fn, keras_model = _from_run(model) if os.path.isdir(model) else _pretrained(str(model), weights)
    elif isinstance(model, tf.keras.Model):
        keras_model = model
        fn = lambda t: model(t, training=False)  # noqa: E731
    elif callable(model):
        fn = model
    else:
        raise InputTypeError(f"model must be a Keras model, a callable, a run directory or a pretrained model name, "
                             f"got {type(model).__name__}")
    softmax = keras_model is not None and _keras_softmax(keras_model)
    if not softmax and x is not None and keras_model is None:
        p = np.asarray(fn(tf.convert_to_tensor(x[:8], tf.float32)), np.float64)
        softmax = p.ndim == 2 and p.min() >= 0 and np.allclose(p.sum(axis=1), 1.0, atol=1e-4)
    if softmax:
        return lambda t: tf.math.log(tf.maximum(tf.cast(fn(t), tf.float32), _TINY))
    return lambda t: tf.cast(fn(t), tf.float32)


_COMPILED = weakref.WeakKeyDictionary()


def _compiled(model, logits_fn, key, make):
    """One ``tf.function`` per (model, attack variant), so repeated attacks on a model trace once."""
    try:
        per_model = _COMPILED.setdefault(model, {})
    except TypeError:  # not weak-referenceable (a run path string): compile per call
        return make(logits_fn)
    if key not in per_model:
        per_model[key] = make(logits_fn)
    return per_model[key]


def _check_common(x, y, eps, clip_min, clip_max, logits_fn):
    x = tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank is None or x.shape.rank < 2:
        raise DataError(f"x must be a batch (N, ...) of images, got shape {tuple(x.shape)}")
    if not clip_max > clip_min:
        raise ConfigError(f"clip_max must exceed clip_min, got clip_min={clip_min!r}, clip_max={clip_max!r}")
    eps = validation.positive_number("eps", eps, allow_zero=True)
    if eps > clip_max - clip_min:
        raise ConfigError(f"eps must be in 0..{clip_max - clip_min} (the pixel range), got {eps!r}")
    y = np.asarray(y)
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"y must be {x.shape[0]} integer labels, got shape {y.shape} dtype {y.dtype}")
    num_classes = int(logits_fn(x[:1]).shape[-1])
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"labels must be in 0..{num_classes - 1}, got values in {y.min()}..{y.max()}")
    return x, tf.convert_to_tensor(y, tf.int32), eps


def _loss_grad(logits_fn, x, y, targeted):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits_fn(x))
        if targeted:
            loss = -loss
    return tape.gradient(loss, x)


def _axes(x):
    return list(range(1, x.shape.rank))


def _step(grad, norm, axes):
    if norm == "inf":
        return tf.sign(grad)
    return grad / tf.sqrt(tf.maximum(_TINY, tf.reduce_sum(tf.square(grad), axes, keepdims=True)))


def _project(eta, eps, norm, axes):
    if norm == "inf":
        return tf.clip_by_value(eta, -eps, eps)
    l2 = tf.sqrt(tf.maximum(_TINY, tf.reduce_sum(tf.square(eta), axes, keepdims=True)))
    return eta * tf.minimum(1.0, eps / l2)


def fgsm_graph(logits_fn, x, y, eps, targeted=False, clip_min=0.0, clip_max=1.0):
    """FGSM on tensors inside any ``tf.function`` (the body of :func:`fgsm` and of adversarial training).

    ``logits_fn``: pixel-unit images -> float32 logits; ``x`` float32 images, ``y`` int labels (N,).
    """
    return tf.clip_by_value(x + eps * tf.sign(_loss_grad(logits_fn, x, y, targeted)), clip_min, clip_max)


def pgd_graph(logits_fn, x, y, eps, step_size, steps, norm="inf", start=None, targeted=False, clip_min=0.0,
              clip_max=1.0):
    """PGD on tensors inside any ``tf.function`` (the body of :func:`pgd` and of adversarial training).

    ``start``: the initial perturbation (e.g. :func:`random_ball`), or ``None`` to begin at ``x`` (BIM).
    """
    axes = _axes(x)
    adv = x if start is None else tf.clip_by_value(x + start, clip_min, clip_max)
    for _ in tf.range(steps):
        adv = tf.clip_by_value(adv + step_size * _step(_loss_grad(logits_fn, adv, y, targeted), norm, axes),
                               clip_min, clip_max)
        adv = tf.clip_by_value(x + _project(adv - x, eps, norm, axes), clip_min, clip_max)
    return adv


def fgsm(model, x, y, eps, targeted=False, clip_min=0.0, clip_max=1.0):
    """Fast gradient sign method: ``clip(x + eps * sign(grad_x CE(logits(x), y)))``, shape of ``x``.

    ``targeted=True`` descends the cross-entropy of the target labels ``y`` instead.
    """
    logits_fn = as_logits_fn(model, x=x)
    x, y, eps = _check_common(x, y, eps, clip_min, clip_max, logits_fn)

    def make(logits_fn):
        @tf.function
        def run(x, y, eps):
            return fgsm_graph(logits_fn, x, y, eps, targeted, clip_min, clip_max)
        return run

    run = _compiled(model, logits_fn, ("fgsm", bool(targeted), float(clip_min), float(clip_max)), make)
    return run(x, y, tf.constant(eps)).numpy()


def random_ball(shape, eps, norm, seed):
    """A random point of the ``norm`` ball of radius ``eps`` per example, shape ``shape = [N, ...]``.

    Uniform in the L-inf ball; for L2, uniform in the L2 ball (direction from a Gaussian, radius
    ``eps * u^(1/d)``), the distribution cleverhans's ``random_lp_vector`` draws from. Stateless: the
    same integer ``seed`` (a scalar tensor) gives the same draw. ``shape[0]`` may be a tensor.
    """
    if norm == "inf":
        return tf.random.stateless_uniform(shape, tf.stack([seed, 0]), -eps, eps)
    rank = len(shape)
    d = int(np.prod(shape[1:]))
    g = tf.random.stateless_normal(shape, tf.stack([seed, 1]))
    g /= tf.norm(tf.reshape(g, [shape[0], -1]), axis=1)[(...,) + (None,) * (rank - 1)]
    r = tf.random.stateless_uniform([shape[0]] + [1] * (rank - 1), tf.stack([seed, 2])) ** (1.0 / d)
    return eps * r * g


def _check_iterative(norm, steps, step_size):
    if norm not in ("inf", 2) or isinstance(norm, bool):
        norm = {"2": 2, "l2": 2, "linf": "inf", "np.inf": "inf"}.get(str(norm).lower(), norm)
        if norm is np.inf:
            norm = "inf"
        validation.one_of("norm", norm, ("inf", 2))
    return norm, validation.positive_int("steps", steps), validation.positive_number("step_size", step_size)


def pgd(model, x, y, eps, step_size, steps, norm="inf", random_start=True, seed=0, targeted=False,
        clip_min=0.0, clip_max=1.0):
    """Projected gradient descent (Madry et al.) in the L-inf or L2 ball of radius ``eps`` around ``x``.

    Each of ``steps`` iterations takes a gradient step of ``step_size`` (sign for L-inf, unit L2 direction
    for L2), clips to the pixel range, projects onto the ball and clips again. ``random_start`` begins at a
    uniform point of the ball drawn with the stateless generator from ``seed``; with ``random_start=False``
    and ``step_size = eps / steps`` this is BIM (Kurakin et al.). Returns an array shaped like ``x``.
    """
    norm, steps, step_size = _check_iterative(norm, steps, step_size)
    logits_fn = as_logits_fn(model, x=x)
    x, y, eps = _check_common(x, y, eps, clip_min, clip_max, logits_fn)

    def make(logits_fn):
        @tf.function
        def run(x, y, eps, step_size, steps, seed):
            start = random_ball(x.shape.as_list(), eps, norm, seed) if random_start else None
            return pgd_graph(logits_fn, x, y, eps, step_size, steps, norm, start, targeted, clip_min, clip_max)
        return run

    run = _compiled(model, logits_fn, ("pgd", norm, random_start, bool(targeted), float(clip_min), float(clip_max)),
                    make)
    return run(x, y, tf.constant(eps), tf.constant(step_size), tf.constant(steps), tf.constant(int(seed))).numpy()


def momentum_iterative_fgsm(model, x, y, eps, step_size, steps, decay=1.0, norm="inf", targeted=False,
                            clip_min=0.0, clip_max=1.0):
    """Momentum iterative FGSM (Dong et al. 2018): ``g <- decay * g + grad / mean|grad|``, step along ``g``.

    The accumulated direction ``g`` stabilises the update and transfers better to other models. The
    gradient is normalised by its per-example mean absolute value (as cleverhans does; any per-example
    L1 scaling gives the same signs). Steps and projection as in :func:`pgd` without random start.
    """
    norm, steps, step_size = _check_iterative(norm, steps, step_size)
    decay = validation.positive_number("decay", decay, allow_zero=True)
    logits_fn = as_logits_fn(model, x=x)
    x, y, eps = _check_common(x, y, eps, clip_min, clip_max, logits_fn)
    axes = _axes(x)

    @tf.function
    def run(x, y):
        adv, g = x, tf.zeros_like(x)
        for _ in tf.range(steps):
            grad = _loss_grad(logits_fn, adv, y, targeted)
            g = decay * g + grad / tf.maximum(_TINY, tf.reduce_mean(tf.abs(grad), axes, keepdims=True))
            adv = adv + step_size * _step(g, norm, axes)
            adv = tf.clip_by_value(x + _project(adv - x, eps, norm, axes), clip_min, clip_max)
        return adv

    return run(x, y).numpy()


def fool(model, x, target, step_size, max_steps, clip_min=None, clip_max=None):
    """The lecture's fooling image: gradient ascent on the target class's score until it is predicted.

    Each step adds ``step_size * g / ||g||_2`` where ``g = d score_target / d x`` (assignment 3's
    ``make_fooling_image``); an example stops moving as soon as its prediction is ``target``.
    ``target`` is an int or ``(N,)`` ints. Returns a dict: ``images`` (like ``x``), ``steps`` (N,) steps
    taken per example, ``success`` (N,) bool, ``linf`` and ``l2`` (N,) size of the change.
    """
    max_steps = validation.positive_int("max_steps", max_steps)
    step_size = validation.positive_number("step_size", step_size)
    logits_fn = as_logits_fn(model, x=x)
    x = tf.convert_to_tensor(x, tf.float32)
    n = int(x.shape[0])
    target = np.broadcast_to(np.asarray(target), (n,))
    num_classes = int(logits_fn(x[:1]).shape[-1])
    if not np.issubdtype(target.dtype, np.integer) or target.min() < 0 or target.max() >= num_classes:
        raise DataError(f"target must be class indices in 0..{num_classes - 1}, got {target.tolist()[:8]}")
    axes = _axes(x)
    lo = -np.inf if clip_min is None else clip_min
    hi = np.inf if clip_max is None else clip_max

    @tf.function
    def run(x, t):
        def done_mask(img):
            return tf.equal(tf.argmax(logits_fn(img), axis=1, output_type=tf.int32), t)

        def body(i, img, steps):
            with tf.GradientTape() as tape:
                tape.watch(img)
                score = tf.reduce_sum(tf.gather(logits_fn(img), t, axis=1, batch_dims=1))
            g = tape.gradient(score, img)
            moving = tf.logical_not(done_mask(img))
            shape = [-1] + [1] * (x.shape.rank - 1)
            upd = step_size * g / tf.sqrt(tf.maximum(_TINY, tf.reduce_sum(g * g, axes, keepdims=True)))
            img = tf.clip_by_value(img + tf.reshape(tf.cast(moving, img.dtype), shape) * upd, lo, hi)
            return i + 1, img, steps + tf.cast(moving, tf.int32)

        def cond(i, img, steps):
            return tf.logical_and(i < max_steps, tf.logical_not(tf.reduce_all(done_mask(img))))

        _, img, steps = tf.while_loop(cond, body, (tf.constant(0), x, tf.zeros([n], tf.int32)))
        delta = tf.reshape(img - x, [n, -1])
        return img, steps, done_mask(img), tf.reduce_max(tf.abs(delta), 1), tf.norm(delta, axis=1)

    img, steps, ok, linf, l2 = run(x, tf.convert_to_tensor(target, tf.int32))
    return {"images": img.numpy(), "steps": steps.numpy(), "success": ok.numpy(), "linf": linf.numpy(),
            "l2": l2.numpy()}


def linear_attack(W, x, target, eps, clip_min=None, clip_max=None, b=None):
    """Karpathy's linear attack: ``x + eps * sign(W[:, target] - W[:, predicted])`` for scores ``x @ W + b``.

    ``W`` is ``(D, C)`` as in :mod:`cs231n_tf.classic.linear` (or a ``LinearClassifier``, whose ``W`` is
    used); ``b`` the ``(C,)`` bias (``None``: zero, or folded into ``W`` by the bias trick) that decides the
    predicted class; ``x`` is ``(N, D)`` (or images flattened to D). The target's score margin over the predicted
    class grows by exactly ``eps * ||W[:, t] - W[:, p]||_1`` (without clipping), the closed form that makes
    linear models fragile in high dimension. Returns an array shaped like ``x``.
    """
    W = getattr(W, "W", W)
    W = np.asarray(W, np.float64)
    if W.ndim != 2:
        raise DataError(f"W must be (D, C) weights, got shape {W.shape}")
    eps = validation.positive_number("eps", eps, allow_zero=True)
    x = np.asarray(x)
    flat = x.reshape(len(x), -1).astype(np.float64)
    if flat.shape[1] != W.shape[0]:
        raise DataError(f"x has {flat.shape[1]} features per example but W expects {W.shape[0]}")
    target = np.broadcast_to(np.asarray(target), (len(x),))
    if not np.issubdtype(target.dtype, np.integer) or target.min() < 0 or target.max() >= W.shape[1]:
        raise DataError(f"target must be class indices in 0..{W.shape[1] - 1}, got {target.tolist()[:8]}")
    pred = np.argmax(flat @ W + (0.0 if b is None else np.asarray(b, np.float64)), axis=1)
    adv = flat + eps * np.sign(W[:, target].T - W[:, pred].T)
    if clip_min is not None or clip_max is not None:
        adv = np.clip(adv, clip_min, clip_max)
    return adv.reshape(x.shape).astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)


def linear_weights(model, x, tolerance=1e-4):
    """The affine map ``logits = flatten(x) @ W + b`` of a linear classifier in pixel units: ``(W (D, C), b (C,))``.

    ``model`` is anything :func:`as_logits_fn` accepts (a run's normalisation is folded into ``W`` and ``b``);
    ``x`` a batch fixing the image shape. Read by probing, ``W[d] = f(e_d) - f(0)``, after checking the
    model is affine (``f(a) + f(b) = f(a + b) + f(0)`` on random images, relative to the logits' scale);
    a non-linear model is a :class:`ConfigError`.
    """
    logits_fn = as_logits_fn(model, x=x)
    shape = np.asarray(x).shape[1:]
    d = int(np.prod(shape))
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 0.5, (2,) + shape).astype(np.float32)
    probe = logits_fn(tf.constant(np.stack([a, b, a + b, np.zeros(shape, np.float32)]))).numpy().astype(np.float64)
    gap = np.abs(probe[0] + probe[1] - probe[2] - probe[3]).max()
    if gap > tolerance * max(1.0, np.abs(probe).max()):
        raise ConfigError(f"the linear attack needs a linear classifier (e.g. --model softmax_classifier); this "
                          f"model is not affine in its input (gap {gap:.3g}); use fgsm or pgd")
    bias = probe[3]
    rows = []
    for start in range(0, d, 512):
        eye = np.zeros((min(512, d - start), d), np.float32)
        eye[np.arange(len(eye)), start + np.arange(len(eye))] = 1.0
        rows.append(logits_fn(tf.constant(eye.reshape((-1,) + shape))).numpy().astype(np.float64) - bias)
    return np.concatenate(rows), bias


_METHODS = ("fgsm", "pgd")


def robustness_curve(model, x, y, eps_list, method="fgsm", batch_size=256, **attack_kwargs):
    """Accuracy on adversarial examples at each epsilon: ``[{"eps": e, "accuracy": a}, ...]``.

    ``method`` is ``"fgsm"`` or ``"pgd"`` (``attack_kwargs`` go to the attack, e.g. ``step_size``,
    ``steps``; a PGD ``step_size`` defaults to ``2.5 * eps / steps``, Madry et al.'s choice), or any
    attack ``(x_batch, y_batch, eps, index) -> adversarial x_batch`` (``index``: the batch's positions in
    ``x``). Eps 0 is the clean accuracy. Batches of ``batch_size`` keep memory bounded.
    """
    if not callable(method):
        validation.one_of("method", method, _METHODS)
    batch_size = validation.positive_int("batch_size", batch_size)
    logits_fn = as_logits_fn(model, x=x)
    x = np.asarray(x, np.float32)
    y = np.asarray(y)
    eps_list = [validation.positive_number("eps", e, allow_zero=True) for e in eps_list]
    out = []
    for eps in eps_list:
        correct = 0
        for start in range(0, len(x), batch_size):
            index = np.arange(start, min(start + batch_size, len(x)))
            xb, yb = x[index], y[index]
            if eps == 0:
                adv = xb
            elif callable(method):
                adv = method(xb, yb, eps, index)
            elif method == "fgsm":
                adv = fgsm(logits_fn, xb, yb, eps, **attack_kwargs)
            else:
                kw = dict(attack_kwargs)
                kw.setdefault("steps", 10)
                kw.setdefault("step_size", 2.5 * eps / kw["steps"])
                adv = pgd(logits_fn, xb, yb, eps, **kw)
            pred = np.argmax(logits_fn(tf.convert_to_tensor(adv, tf.float32)).numpy(), axis=1)
            correct += int(np.sum(pred == yb))
        out.append({"eps": float(eps), "accuracy": correct / max(1, len(x))})
    return out
