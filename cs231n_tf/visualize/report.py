"""The ``viz`` report: one technique on a run or a pretrained model and image files, as PNGs and JSON.

``viz_report(verb, out_dir, images, model="efficientnet_lite0")`` loads the classifier the way
``predict`` does (:mod:`cs231n_tf.train.predict`: a run's resize and normalisation, or a pretrained
model's evaluation crop and ``input_stats``), computes the technique on the prepared images and writes
``OUT/<verb>_<NN>_<stem>.png`` per image plus ``OUT/<verb>.json`` with the numbers (classes, scores,
map statistics, the fooling image's L-inf/L2 change and steps). ``classviz`` writes one image per
target; ``neighbors``, ``pca`` and ``tsne`` take a data set (``--dataset``; default the run's own, or
crops of the shipped photos for a pretrained model) instead of image files.
"""

import io
import os

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError
from cs231n_tf.fileio import atomic_write_bytes, atomic_write_json

VERBS = ("filters", "activations", "saliency", "smoothgrad", "guided", "gradcam", "occlusion", "fool", "classviz",
         "dream", "invert", "neighbors", "pca", "tsne")
SPACE_VERBS = ("neighbors", "pca", "tsne")


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


def _figure(panels, titles, rows=1):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    cols = -(-len(panels) // rows)
    size = 3 if rows == 1 else 1.4
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    for ax, (img, cmap), title in zip(axes.ravel(), panels, titles):
        ax.imshow(img, cmap=cmap)
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    data = _png(fig)
    plt.close(fig)
    return data


def _name(names, k):
    return names[k] if names is not None and k < len(names) else str(k)


def _input_range(prepare, channels, shape):
    # The model-space values of black and white pixels bound what an optimised image may hold.
    black = prepare(np.zeros(shape + (channels,), np.float32))
    white = prepare(np.full(shape + (channels,), 255.0, np.float32))
    return float(np.min(np.minimum(black, white))), float(np.max(np.maximum(black, white)))


def _middle_layer(net, layer):
    from cs231n_tf.visualize.gradcam import spatial_layers

    if layer is not None:
        return layer
    valid = spatial_layers(net)
    if not valid:
        raise ConfigError(f"model {net.name!r} has no layer with feature maps to dream on or invert")
    return valid[len(valid) // 2]


def viz_report(verb, out_dir, images=(), *, run_dir=None, model=None, weights="imagenet", layer=None,
               target=None, samples=16, patch=None, stride=None, max_steps=100, step_size=1.0, channels_shown=16,
               dataset=None, limit=200, k=5, queries=5, octaves=3, seed=0):
    """Run ``verb`` (one of :data:`VERBS`) and write its PNGs and ``<verb>.json`` into ``out_dir``.

    ``target``: the class to explain (or to fool towards, or to visualize); default the predicted class
    (``fool`` and ``classviz``: required). ``layer``: Grad-CAM's, the activation maps', DeepDream's or
    inversion's layer (the last two default to the middle layer with feature maps; ``neighbors``, ``pca``
    and ``tsne``: the input of the last Dense layer). ``max_steps``: fooling, class-visualization,
    DeepDream (per octave) and inversion steps. Returns the JSON's dict.
    """
    import tensorflow as tf

    from cs231n_tf import visualize
    from cs231n_tf.train.predict import read_image_spec
    from cs231n_tf.visualize.saliency import class_scores_fn

    validation.one_of("verb", verb, VERBS)
    net, prepare, channels, names, source = load_classifier(run_dir, model, weights)
    out = {"verb": verb, "source": source, "images": []}
    os.makedirs(out_dir, exist_ok=True)
    if verb in SPACE_VERBS:
        from cs231n_tf.engine import rundir
        from cs231n_tf.visualize.space import PHOTO_CROPS, space_report

        if dataset is None:
            dataset = rundir.read_config(run_dir)["data"]["name"] if run_dir is not None else PHOTO_CROPS
        return space_report(verb, out_dir, net, prepare, channels, names, source, dataset=dataset, limit=limit,
                            k=k, queries=queries, layer=layer, seed=seed)
    if verb == "classviz":
        return _classviz(out_dir, net, prepare, channels, names, source, target, max_steps, seed)
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
    elif verb in ("dream", "invert"):
        layer = _middle_layer(net, layer)
        clip = _input_range(prepare, channels, x.shape[1:3])
        if verb == "dream":
            made = [visualize.deep_dream(net, x[i:i + 1], layer, steps=max_steps, octaves=octaves, clip=clip,
                                         seed=seed) for i in range(len(x))]
        else:
            made = [visualize.invert_features(net, x[i:i + 1], layer, steps=max_steps, clip=clip, seed=seed)
                    for i in range(len(x))]
        out["layer"] = layer
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
        elif verb == "dream":
            img, objective = made[i]
            data = _figure([(_display(x[i]), None), (_display(img[0]), None)],
                           [row["predicted_name"], f"dream: {layer}"])
            row.update(objective=[float(v) for v in objective],
                       dreamed_prediction=_name(names, int(class_scores_fn(net)(tf.constant(img)).numpy().argmax())))
        elif verb == "invert":
            rec = made[i].image[0]
            data = _figure([(_display(x[i]), None), (_display(rec), None)], ["original", f"inverted from {layer}"])
            row.update(feature_loss_start=float(made[i].loss[0]), feature_loss_end=float(made[i].loss[-1]),
                       pixel_rmse=float(np.sqrt(np.mean((rec - x[i]) ** 2))))
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


def _classviz(out_dir, net, prepare, channels, names, source, target, steps, seed):
    from cs231n_tf import visualize
    from cs231n_tf.visualize.saliency import class_scores_fn

    if target is None:
        raise ConfigError("classviz needs a target class")
    num_classes = int(net.output_shape[-1])
    target = validation.int_in("target class", target, 0, num_classes - 1)
    shape = tuple(net.input_shape[1:3])
    lo, hi = _input_range(prepare, channels, shape)
    # The course's learning rate 25 and jitter 16 are for 224x224x3 pixels in a range of about 4.4:
    # keep the per-pixel step and the jitter the same fraction of the range and of the side at any size.
    rate = 0.016 * (hi - lo) * np.sqrt(np.prod(net.input_shape[1:]))
    img, scores = visualize.create_class_visualization(target, net, learning_rate=rate, num_iterations=steps,
                                                       max_jitter=max(1, min(16, shape[0] // 14)), clip_min=lo,
                                                       clip_max=hi, seed=seed)
    probs = class_scores_fn(net)(img).numpy()[0]
    path = os.path.join(out_dir, f"classviz_{target}.png")
    atomic_write_bytes(path, _figure([(_display(img[0]), None)], [f"class {_name(names, target)}"]))
    out = {"verb": "classviz", "source": source, "target": target, "target_name": _name(names, target),
           "score_start": float(scores[0]), "score_end": float(scores[-1]), "steps": len(scores),
           "predicted": int(probs.argmax()), "predicted_name": _name(names, int(probs.argmax())),
           "png": os.path.basename(path)}
    atomic_write_json(os.path.join(out_dir, "classviz.json"), out)
    return out
