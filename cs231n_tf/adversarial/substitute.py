"""Black-box transfer attack: Papernot et al., "Practical Black-Box Attacks against Machine Learning" (2017).

The attacker sees only the target's labels. Starting from a small seed set ``S_0`` it repeats, for
rounds ``rho = 0 .. R-1``: label the new points of ``S_rho`` with the oracle, train the substitute on
``S_rho`` (on the engine, :func:`cs231n_tf.tasks.classification.train_model`), then grow the set by
Jacobian-based dataset augmentation

    S_{rho+1} = S_rho  U  { clip(x + lambda_rho * sign(d F_{O(x)}(x) / dx)) : x in S_rho },

where ``F`` are the substitute's logits and ``O(x)`` the oracle's label; ``lambda_rho = -lambda`` for
the first ``tau`` rounds and ``+lambda`` after (cleverhans's tutorial schedule, the paper's periodic
step). Each point is queried once, so round ``rho`` has used exactly ``n0 * 2**rho`` oracle queries.
Adversarial examples are FGSM on the substitute (at its own predicted labels: no extra queries); the
transfer rate is the fraction of the target's correct predictions on an evaluation set that they flip.

Ensemble of substitutes (Liu et al., "Delving into Transferable Adversarial Examples", 2016): several
substitute architectures trained on the same queried set; augmentation and FGSM use their mean logits.
"""

import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.adversarial.attacks import as_logits_fn, fgsm
from cs231n_tf.errors import ConfigError, DataError, InputTypeError


class Oracle:
    """The target as a labels-only black box that counts its queries (one per example labelled).

    ``target``: a Keras classifier or a callable ``images -> logits/probabilities/labels``, a run directory,
    a SavedModel directory (its ``serving_default`` signature, input ``images`` in [0, 1], output
    ``logits``), or a pretrained model name. Images are in pixel units of [0, 1].
    """

    def __init__(self, target, batch_size=256):
        self.batch_size = validation.positive_int("batch_size", batch_size)
        self.queries = 0
        if isinstance(target, (str, os.PathLike, tf.keras.Model)):
            self._scores = as_logits_fn(target)
        elif callable(target):
            self._scores = target
        else:
            raise InputTypeError(f"target must be a Keras model, a callable, a run or SavedModel directory or a "
                                 f"pretrained model name, got {type(target).__name__}")

    def labels(self, x, count=True):
        """Integer labels ``(N,)`` of images ``x``; ``count=False`` for measurements, not the attack's queries."""
        x = np.asarray(x, np.float32)
        out = []
        for start in range(0, len(x), self.batch_size):
            s = np.asarray(self._scores(tf.constant(x[start:start + self.batch_size])))
            out.append(s.astype(np.int64) if s.ndim == 1 else np.argmax(s, axis=1))
        if count:
            self.queries += len(x)
        return np.concatenate(out) if out else np.zeros(0, np.int64)


def mean_logits(models):
    """``images -> mean of the models' logits``: one model, or an ensemble (Liu et al.)."""
    models = list(models)
    return lambda x: tf.add_n([tf.cast(m(x, training=False), tf.float32) for m in models]) / len(models)


def jacobian_augmentation(logits_fn, x, labels, lam, clip_min=0.0, clip_max=1.0):
    """Papernot et al.'s new points ``clip(x + lam * sign(d logits[labels] / dx))``, shape of ``x``.

    ``labels`` are the oracle's labels of ``x``; the row of the substitute's Jacobian they select gives
    the direction in which the substitute's decision for that class changes fastest.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(tf.gather(logits_fn(x), tf.convert_to_tensor(labels, tf.int32), axis=1, batch_dims=1))
    grad = tape.gradient(score, x)
    return tf.clip_by_value(x + lam * tf.sign(grad), clip_min, clip_max).numpy()


def transfer_rate(oracle, x, y, x_adv):
    """Fraction of the target's correct predictions on ``x`` that are wrong on ``x_adv`` (not counted as queries)."""
    correct = oracle.labels(x, count=False) == y
    if not correct.any():
        return 0.0
    return float(np.mean(oracle.labels(x_adv[correct], count=False) != y[correct]))


def _build(substitute, input_shape, num_classes):
    if isinstance(substitute, str):
        from cs231n_tf.models import build

        return build(substitute, input_shape, num_classes)
    if callable(substitute) and not isinstance(substitute, tf.keras.Model):
        return substitute()
    raise InputTypeError(f"a substitute must be a registry model name or a callable () -> tf.keras.Model, "
                         f"got {type(substitute).__name__}")


def substitute_attack(target, seed_x, eval_x, eval_y, substitutes=("two_layer_net",), num_classes=None, rounds=4,
                      lam=0.1, tau=3, eps=0.3, epochs=10, batch_size=32, lr=1e-3, seed=0, log=None):
    """Papernot et al.'s attack; returns ``{"rounds": [...], "queries": n, "substitutes": [models]}``.

    ``seed_x``: the attacker's seed images ``(n0, H, W, C)`` in [0, 1] (labels unknown: the oracle gives
    them); ``eval_x``/``eval_y``: held-out images and true labels the transfer is measured on;
    ``substitutes``: registry model names or factories ``() -> tf.keras.Model`` (logits); more than one
    is Liu et al.'s ensemble. Each round records ``round``, ``queries`` (total so far, ``n0 * 2**round``),
    ``training_points``, ``substitute_agreement`` (substitute vs target labels on ``eval_x``),
    ``transfer_rate`` (of FGSM at ``eps`` on the substitute or ensemble) and, for an ensemble,
    ``member_transfer_rates``.
    """
    from cs231n_tf.tasks.classification import train_model

    rounds = validation.positive_int("rounds", rounds)
    tau = validation.positive_int("tau", tau)
    lam = validation.positive_number("lam", lam)
    epochs = validation.positive_int("epochs", epochs)
    seed_x = np.asarray(seed_x, np.float32)
    eval_x, eval_y = np.asarray(eval_x, np.float32), np.asarray(eval_y)
    if seed_x.ndim < 2 or len(seed_x) == 0 or seed_x.shape[1:] != eval_x.shape[1:]:
        raise DataError(f"seed_x must be a non-empty batch of images shaped like eval_x {eval_x.shape[1:]}, "
                        f"got {seed_x.shape}")
    if not substitutes:
        raise ConfigError("give at least one substitute architecture")
    oracle = target if isinstance(target, Oracle) else Oracle(target)
    x_set, y_set = seed_x, oracle.labels(seed_x)
    num_classes = int(num_classes or max(int(y_set.max()), int(eval_y.max())) + 1)
    tf.keras.utils.set_random_seed(seed)
    models = [_build(s, seed_x.shape[1:], num_classes) for s in substitutes]
    ensemble = mean_logits(models)
    history = []
    for rho in range(rounds):
        for i, model in enumerate(models):
            def batches(epoch, x=x_set, y=y_set, i=i):
                order = np.random.default_rng([seed, rho, i, epoch]).permutation(len(x))
                return tf.data.Dataset.from_tensor_slices((x[order], y[order].astype(np.int32))).batch(batch_size)

            train_model(model, batches, epochs, lambda _steps: tf.keras.optimizers.Adam(lr), seed=seed + i,
                        log=lambda _message: None)
        adv = fgsm(ensemble, eval_x, np.argmax(ensemble(tf.constant(eval_x)).numpy(), 1), eps)
        target_labels = oracle.labels(eval_x, count=False)
        record = {"round": rho, "queries": oracle.queries, "training_points": len(x_set),
                  "substitute_agreement": float(np.mean(np.argmax(ensemble(tf.constant(eval_x)).numpy(), 1)
                                                        == target_labels)),
                  "transfer_rate": transfer_rate(oracle, eval_x, eval_y, adv)}
        if len(models) > 1:
            record["member_transfer_rates"] = [
                transfer_rate(oracle, eval_x, eval_y,
                              fgsm(m, eval_x, np.argmax(m(tf.constant(eval_x), training=False).numpy(), 1), eps))
                for m in models]
        history.append(record)
        if log:
            log(f"round {rho}: {record['queries']} queries, transfer rate {record['transfer_rate']:.3f}")
        if rho < rounds - 1:
            step = -lam if rho < tau else lam
            new_x = jacobian_augmentation(ensemble, x_set, y_set, step)
            x_set, y_set = np.concatenate([x_set, new_x]), np.concatenate([y_set, oracle.labels(new_x)])
    return {"rounds": history, "queries": oracle.queries, "substitutes": models}
