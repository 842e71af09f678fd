"""The ``viz`` report: one technique on a run or a pretrained model and image files, as PNGs and JSON.

``viz_report(verb, out_dir, images, model="efficientnet_lite0")`` loads the classifier the way
``predict`` does (:mod:`cs231n_tf.train.predict`: a run's resize and normalisation, or a pretrained
model's evaluation crop and ``input_stats``), computes the technique on the prepared images and writes
``OUT/<verb>_<NN>_<stem>.png`` per image plus ``OUT/<verb>.json`` with the numbers (classes, scores,
map statistics, the fooling image's L-inf/L2 change and steps).
"""

import io
import os

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError
from cs231n_tf.fileio import atomic_write_bytes, atomic_write_json

VERBS = ("filters", "activations", "saliency", "smoothgrad", "guided", "gradcam", "occlusion", "fool")


def load_classifier(run_dir=None, model=None, weights="imagenet"):
    """``(keras_model, prepare, channels, class_names, source)`` as ``predict_images`` loads them."""
    from cs231n_tf.train import predict

    if (run_dir is None) == (model is None):
        raise ConfigError("give exactly one of run_dir (a trained run) and model (a pretrained model name)")
    if run_dir is not None:
        return predict._from_run(run_dir, None)
    return predict._pretrained(model, weights, None)


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def _display(img):
    # The prepared image is normalised; min-max scaling shows it faithfully whatever the statistics.
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
    return img[..., 0] if img.shape[-1] == 1 else img


def _stem(spec):
    return os.path.splitext(os.path.basename(spec.split(":", 1)[-1]))[0] or "image"


def _figure(panels, titles):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3), squeeze=False)
    for ax, (img, cmap), title in zip(axes[0], panels, titles):
        ax.imshow(img, cmap=cmap)
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    data = _png(fig)
    plt.close(fig)
    return data


def _name(names, k):
    return names[k] if names is not None and k < len(names) else str(k)


def viz_report(verb, out_dir, images=(), *, run_dir=None, model=None, weights="imagenet", layer=None,
               target=None, samples=16, patch=None, stride=None, max_steps=100, step_size=1.0, channels_shown=16):
    """Run ``verb`` (one of :data:`VERBS`) and write its PNGs and ``<verb>.json`` into ``out_dir``.

    ``target``: the class to explain (or to fool towards); default the predicted class (for ``fool``:
    required). ``layer``: Grad-CAM's or the activation maps' layer. Returns the JSON's dict.
    """
    import tensorflow as tf

    from cs231n_tf import visualize
    from cs231n_tf.train.predict import read_image_spec
    from cs231n_tf.visualize.saliency import class_scores_fn

    validation.one_of("verb", verb, VERBS)
    net, prepare, channels, names, source = load_classifier(run_dir, model, weights)
    out = {"verb": verb, "source": source, "images": []}
    os.makedirs(out_dir, exist_ok=True)
    if verb == "filters":
        grid = visualize.filter_grid(net, layer)
        atomic_write_bytes(os.path.join(out_dir, "filters.png"), _figure([(_display(grid), "gray")], ["filters"]))
        out["grid_shape"] = list(grid.shape)
        atomic_write_json(os.path.join(out_dir, "filters.json"), out)
        return out
    if isinstance(images, str) or not images:
        raise ConfigError("images must be a non-empty list of paths or photo:NAME")
    x = np.stack([prepare(read_image_spec(s, channels)) for s in images]).astype(np.float32)
    scores = class_scores_fn(net)(tf.constant(x)).numpy()
    pred = scores.argmax(1)
    if verb == "fool" and target is None:
        raise ConfigError("fool needs a target class")
    if target is not None:
        target = validation.int_in("target class", target, 0, scores.shape[1] - 1)
    y = pred if target is None else np.full(len(x), target)
    if verb == "activations":
        valid = visualize.spatial_layers(net)
        layer = layer or (valid or [None])[0]
        if layer not in valid:
            raise ConfigError(f"layer {layer!r} has no feature maps; layers with feature maps: "
                              f"{', '.join(valid) or 'none'}")
        acts = visualize.activations(net, x, layer)
        out["layer"] = layer
    elif verb == "fool":
        fooled = visualize.make_fooling_image(x, y, net, learning_rate=step_size, max_steps=max_steps)
    else:
        fns = {"saliency": lambda: visualize.saliency(net, x, y),
               "smoothgrad": lambda: visualize.smoothgrad(net, x, y, samples=samples),
               "guided": lambda: np.abs(visualize.guided_backprop(net, x, y)).max(-1),
               "gradcam": lambda: visualize.gradcam(net, x, y, layer),
               "occlusion": lambda: visualize.occlusion(net, x, y, patch=patch or max(4, x.shape[1] // 8),
                                                        stride=stride or max(2, x.shape[1] // 16))}
        maps = fns[verb]()
    for i, spec in enumerate(images):
        row = {"image": spec, "predicted": int(pred[i]), "predicted_name": _name(names, int(pred[i])),
               "class": int(y[i]), "class_name": _name(names, int(y[i])), "score": float(scores[i, y[i]])}
        path = os.path.join(out_dir, f"{verb}_{i:02d}_{_stem(spec)}.png")
        if verb == "activations":
            k = min(channels_shown, acts.shape[-1])
            panels = [(_display(x[i]), None)] + [(acts[i, ..., c], "viridis") for c in range(k)]
            data = _figure(panels, ["image"] + [f"{layer}[{c}]" for c in range(k)])
            row["mean_activation"] = acts[i].mean(axis=(0, 1)).tolist()
        elif verb == "fool":
            adv = fooled["images"][i]
            new = int(class_scores_fn(net)(tf.constant(adv[None])).numpy().argmax())
            delta = adv - x[i]
            data = _figure([(_display(x[i]), None), (_display(delta), None), (_display(adv), None)],
                           [f"original: {row['predicted_name']}", "difference (scaled)",
                            f"fooled: {_name(names, new)}"])
            row.update(fooled_prediction=new, success=bool(fooled["success"][i]), steps=int(fooled["steps"][i]),
                       linf=float(fooled["linf"][i]), l2=float(fooled["l2"][i]))
        else:
            m = maps[i]
            data = _figure([(_display(x[i]), None), (m, "hot")], [f"{row['class_name']}", verb])
            row.update(map_max=float(m.max()), map_mean=float(m.mean()))
        atomic_write_bytes(path, data)
        row["png"] = os.path.basename(path)
        out["images"].append(row)
    if verb == "gradcam":
        out["layer"] = layer or visualize.spatial_layers(net)[-1]
    atomic_write_json(os.path.join(out_dir, f"{verb}.json"), out)
    return out
