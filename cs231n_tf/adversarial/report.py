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
from cs231n_tf.adversarial.attacks import as_logits_fn, fgsm, pgd, robustness_curve
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


def attack_report(out_dir, *, run_dir=None, model=None, weights="imagenet", method="fgsm", eps_list=(0.1,),
                  dataset=None, limit=512, steps=10, batch_size=128, examples=4):
    """Attack a run (on its test split, or ``dataset``) or a pretrained model (on the shipped photos).

    Returns the curve ``[{"eps", "accuracy"}, ...]`` and writes the report files into ``out_dir``.
    ``method`` "linear" and "transfer" are not available for these sources in this version (ConfigError);
    the linear attack is :func:`cs231n_tf.adversarial.linear_attack` on a ``cs231n_tf.classic`` classifier.
    """
    validation.one_of("method", method, METHODS)
    if method in ("linear", "transfer"):
        raise ConfigError(f"method {method!r} is not implemented for runs/pretrained models in this version; "
                          f"choose fgsm or pgd")
    if (run_dir is None) == (model is None):
        raise ConfigError("give exactly one of run_dir or model")
    eps_list = [validation.positive_number("eps", e, allow_zero=True) for e in eps_list]
    limit = validation.positive_int("limit", limit)
    if run_dir is not None:
        x, y = _run_data(run_dir, dataset, limit)
        fn = as_logits_fn(run_dir)
    else:
        fn = as_logits_fn(model, weights)
        x = _photo_data(model, weights)[:limit]
        y = np.argmax(fn(tf.constant(x)).numpy(), 1)
    kw = {"steps": steps, "random_start": False} if method == "pgd" else {}
    curve = robustness_curve(fn, x, y, eps_list, method=method, batch_size=batch_size, **kw)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_json(os.path.join(out_dir, "robustness.json"), curve)
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
        adv = fgsm(fn, x[:n], y[:n], eps) if method == "fgsm" else pgd(fn, x[:n], y[:n], eps, 2.5 * eps / steps, steps,
                                                                      random_start=False)
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
