"""The ``attack`` report: robust accuracy at a list of epsilons for a run or a pretrained model.

Writes ``robustness.json`` (``[{"eps", "accuracy"}, ...]``), ``robustness.md`` (a Markdown table),
``robustness.png`` (the curve) and ``examples_eps<E>.png`` (clean / perturbation / adversarial triplets).
"""

import dataclasses
import io
import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.adversarial.attacks import as_logits_fn, fgsm, linear_attack, linear_weights, pgd, robustness_curve
from cs231n_tf.errors import ConfigError
from cs231n_tf.fileio import atomic_write_bytes, atomic_write_json

METHODS = ("fgsm", "pgd", "linear", "transfer")


def _run_data(run_dir, dataset, limit):
    from cs231n_tf.train import config as config_lib
    from cs231n_tf.train.evaluate import load_run

    run = load_run(run_dir, None, float32=True)
    config = run.config if dataset is None else dataclasses.replace(run.config, dataset=dataset)
    data = config_lib.load_data(config)
    x, y = data.arrays["x_test"][:limit], data.arrays["y_test"][:limit]
    return data.to_unit(x).numpy(), np.asarray(y)


def _photo_data(name, weights):
    # Pretrained ImageNet models: the photos shipped in installed packages, labelled with the model's own
    # clean prediction, so the curve measures how often the attack changes that prediction.
    from cs231n_tf.data import photos
    from cs231n_tf.models import imagenet
    from cs231n_tf.models.registry import pretrained_spec

    size = pretrained_spec(name, weights).canonical_input_shape[0]
    x = np.stack([imagenet.center_crop_resize(photos.load_photo(p), size).numpy() / 255.0
                  for p in photos.photo_names()]).astype(np.float32)
    return x


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def _linear(fn, x, y, target):
    """``(x, eps) -> adversarial x`` of the linear attack towards ``target`` (default: each example's runner-up class)."""
    W, b = linear_weights(fn, x)
    scores = x.reshape(len(x), -1).astype(np.float64) @ W + b
    if target is None:
        scores[np.arange(len(x)), y] = -np.inf
        target = np.argmax(scores, 1)
    elif not 0 <= target < W.shape[1]:
        raise ConfigError(f"target must be a class index in 0..{W.shape[1] - 1}, got {target}")
    return lambda xb, eps, idx: linear_attack(W, xb, np.broadcast_to(target, (len(x),))[idx], eps, 0.0, 1.0, b=b)


def _transfer(run_dir, fn, x_seed, x, y, substitutes, rounds, eps_list, log):
    """Papernot et al.'s attack on the run (labels only): returns ``(make_adv, record)``."""
    from cs231n_tf.adversarial.substitute import mean_logits, substitute_attack

    result = substitute_attack(run_dir, x_seed, x, y, substitutes=substitutes, num_classes=fn(x[:1]).shape[1],
                               rounds=rounds, eps=max(eps_list), log=log)
    ensemble = mean_logits(result["substitutes"])
    own = np.argmax(ensemble(tf.constant(x)).numpy(), 1)  # the substitute's labels: no oracle queries
    record = {"substitutes": list(substitutes), "queries": result["queries"], "rounds": result["rounds"]}
    return (lambda xb, eps, idx: fgsm(ensemble, xb, own[idx], eps)), record


def attack_report(out_dir, *, run_dir=None, model=None, weights="imagenet", method="fgsm", eps_list=(0.1,),
                  dataset=None, limit=512, steps=10, batch_size=128, examples=4, target=None,
                  substitutes=("two_layer_net",), rounds=4, seed_size=150, log=None):
    """Attack a run (on its test split, or ``dataset``) or a pretrained model (on the shipped photos).

    Returns the curve ``[{"eps", "accuracy"}, ...]`` and writes the report files into ``out_dir``.

    - ``fgsm`` / ``pgd`` (``steps`` iterations of ``2.5 * eps / steps``, no random start): white box.
    - ``linear``: Karpathy's attack on a linear classifier (its weights read from the model, see
      :func:`linear_weights`), towards ``target`` or each example's runner-up class.
    - ``transfer`` (runs only): Papernot et al.'s black-box attack. The first ``seed_size`` test images are
      the attacker's seed set, the next ``limit`` are attacked; ``substitutes`` (registry names; several =
      an ensemble) are trained over ``rounds`` of Jacobian augmentation on the run's labels, and FGSM on
      them is scored on the run. ``transfer.json`` holds the queries and the per-round transfer rates.
    """
    validation.one_of("method", method, METHODS)
    if (run_dir is None) == (model is None):
        raise ConfigError("give exactly one of run_dir or model")
    if method == "transfer" and run_dir is None:
        raise ConfigError("the transfer attack needs a run (--run): its data set gives the attacker's seed images")
    eps_list = [validation.positive_number("eps", e, allow_zero=True) for e in eps_list]
    limit = validation.positive_int("limit", limit)
    seed_size = validation.positive_int("seed_size", seed_size) if method == "transfer" else 0
    if run_dir is not None:
        x, y = _run_data(run_dir, dataset, limit + seed_size)
        fn = as_logits_fn(run_dir)
        if len(x) <= seed_size:
            raise ConfigError(f"the test split has {len(x)} images: not enough for a seed set of {seed_size} "
                              f"and images to attack; lower --seed-size")
        x_seed, x, y = x[:seed_size], x[seed_size:], y[seed_size:]
    else:
        fn = as_logits_fn(model, weights)
        x = _photo_data(model, weights)[:limit]
        y = np.argmax(fn(tf.constant(x)).numpy(), 1)
    record = None
    if method == "linear":
        make_adv = _linear(fn, x, y, target)
    elif method == "transfer":
        make_adv, record = _transfer(run_dir, fn, x_seed, x, y, substitutes, rounds, [e for e in eps_list if e > 0]
                                     or [0.1], log)
    elif method == "fgsm":
        make_adv = lambda xb, eps, idx: fgsm(fn, xb, y[idx], eps)  # noqa: E731
    else:
        make_adv = lambda xb, eps, idx: pgd(fn, xb, y[idx], eps, 2.5 * eps / steps, steps,  # noqa: E731
                                           random_start=False)
    curve = robustness_curve(fn, x, y, eps_list, lambda xb, _yb, eps, idx: make_adv(xb, eps, idx), batch_size)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_json(os.path.join(out_dir, "robustness.json"), curve)
    if record is not None:
        atomic_write_json(os.path.join(out_dir, "transfer.json"), record)
    table = "| eps | accuracy |\n|---|---|\n" + "".join(f"| {c['eps']:g} | {c['accuracy']:.4f} |\n" for c in curve)
    atomic_write_bytes(os.path.join(out_dir, "robustness.md"), table.encode())

    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([c["eps"] for c in curve], [c["accuracy"] for c in curve], "o-")
    ax.set_xlabel("eps (pixels in [0, 1])")
    ax.set_ylabel(f"accuracy under {method}")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    atomic_write_bytes(os.path.join(out_dir, "robustness.png"), _png(fig))
    plt.close(fig)
    n = min(examples, len(x))
    for eps in [e for e in eps_list if e > 0]:
        adv = make_adv(x[:n], eps, np.arange(n))
        fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
        for i in range(n):
            delta = adv[i] - x[i]
            for j, (img, title) in enumerate([(x[i], "clean"), (0.5 + delta / (2 * eps), "perturbation"),
                                              (adv[i], "adversarial")]):
                axes[i, j].imshow(np.clip(img.squeeze(-1) if img.shape[-1] == 1 else img, 0, 1), cmap="gray")
                axes[i, j].set_axis_off()
                if i == 0:
                    axes[i, j].set_title(title)
        fig.tight_layout()
        atomic_write_bytes(os.path.join(out_dir, f"examples_eps{eps:g}.png"), _png(fig))
        plt.close(fig)
    return curve
