"""Transfer learning (CS231n lecture 7): freeze a trained network, retrain its head, fine-tune the top.

The lecture's recipe, for a network trained on a large source task and a new target task:

- very little, similar target data: keep the network fixed and train a linear classifier on its
  penultimate features (:func:`feature_extractor` + :func:`linear_probe`);
- more target data: replace the head, train it alone, then unfreeze the last few blocks and
  fine-tune them with a lower learning rate (:func:`finetune`), so the new head's large initial
  gradients cannot wreck the pretrained features (Yosinski et al., "How transferable are features
  in deep neural networks?", NeurIPS 2014; Razavian et al., "CNN features off-the-shelf", 2014).

Blocks. The *head* is the last layer with weights (the ``logits`` layer of every registry model).
The layers before it are grouped into blocks: a layer whose name starts with a named unit of a zoo
net (``conv3_block2_...`` of the ResNets, ``block2_...`` of DenseNet/FractalNet, ``fire4_...`` of
SqueezeNet, ``inception4a_...`` of GoogLeNet) belongs to that unit; otherwise each layer with
weights starts a block, and a normalisation layer joins the block of the layer before it
(``conv1_1`` + ``bn1_1`` of ``small_convnet``).

BatchNormalization. In ``tf.keras`` (Keras 2), a ``BatchNormalization`` layer with
``trainable = False`` runs in inference mode even when the model is called with ``training=True``:
it normalises with its moving statistics and does not update them. Freezing a layer therefore also
fixes its statistics, and :func:`unfreeze` keeps the normalisation layers of unfrozen blocks frozen
unless ``train_batchnorm=True`` -- the Keras transfer-learning guide's advice, because re-estimating
batch statistics on a small target set destroys what the source run learned.
"""

import dataclasses
import os
import re

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, InputTypeError, RunDirError, ShapeError
from cs231n_tf.fileio import atomic_write_json
from cs231n_tf.train import config as config_lib
from cs231n_tf.train.evaluate import load_run, predict_logits
from cs231n_tf.train.trainer import Trainer, TrainResult

_NAMED_UNIT = re.compile(r"^((?:conv\d+_)?block\d+[a-z]?|fire\d+|inception\d+[a-z]?|transition\d+|stem|top)_")
_NORMALIZATION = (tf.keras.layers.BatchNormalization, tf.keras.layers.LayerNormalization)


def _check_model(model):
    if not isinstance(model, tf.keras.Model):
        raise InputTypeError(f"expected a tf.keras.Model, got {type(model).__name__}")


def _weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def head_layer(model):
    """The last layer with weights: the classifier that transfer learning replaces."""
    _check_model(model)
    weighted = _weighted_layers(model)
    if not weighted:
        raise ConfigError(f"model {model.name!r} has no layer with weights")
    return weighted[-1]


def blocks(model):
    """The model's blocks below the head, first to last, as ``[(name, [layers...]), ...]``."""
    _check_model(model)
    head = head_layer(model)
    found = []
    for layer in _weighted_layers(model):
        if layer is head:
            continue
        unit = _NAMED_UNIT.match(layer.name)
        if unit is not None:
            if found and found[-1][0] == unit.group(1):
                found[-1][1].append(layer)
            else:
                found.append((unit.group(1), [layer]))
        elif isinstance(layer, _NORMALIZATION) and found:
            found[-1][1].append(layer)
        else:
            found.append((layer.name, [layer]))
    return found


def freeze(model, up_to=None):
    """Freeze the layers up to and including ``up_to``; the layers after it become trainable.

    ``up_to``: ``None`` (everything but the head), a layer name, or an index into ``model.layers``
    (negative counts from the end). Frozen BatchNormalization layers run in inference mode (see the
    module docstring). Returns the names of the frozen layers that hold weights.
    """
    _check_model(model)
    if up_to is None:
        last = model.layers.index(head_layer(model)) - 1
    elif isinstance(up_to, str):
        names = [layer.name for layer in model.layers]
        if up_to not in names:
            raise ConfigError(f"model {model.name!r} has no layer {up_to!r}; its layers are {', '.join(names)}")
        last = names.index(up_to)
    elif isinstance(up_to, (int, np.integer)) and not isinstance(up_to, bool):
        n = len(model.layers)
        if not -n <= up_to < n:
            raise ConfigError(f"up_to={up_to} is out of range for {n} layers (accepted: {-n}..{n - 1})")
        last = int(up_to) % n
    else:
        raise InputTypeError(f"up_to must be None, a layer name or an index, got {type(up_to).__name__}")
    model.trainable = True
    frozen = []
    for i, layer in enumerate(model.layers):
        layer.trainable = i > last
        if i <= last and layer.weights:
            frozen.append(layer.name)
    return frozen


def unfreeze(model, last_n_blocks=None, train_batchnorm=False):
    """Make the head and the last ``last_n_blocks`` blocks trainable; freeze everything before.

    ``last_n_blocks``: ``0`` trains the head only, ``None`` every block. Normalisation layers in the
    unfrozen blocks stay frozen (inference mode, source statistics) unless ``train_batchnorm``.
    Returns the names of the unfrozen blocks.
    """
    _check_model(model)
    found = blocks(model)
    if last_n_blocks is None:
        last_n_blocks = len(found)
    last_n_blocks = validation.int_in("last_n_blocks", last_n_blocks, 0, len(found))
    freeze(model, up_to=None)
    head_layer(model).trainable = True
    chosen = found[len(found) - int(last_n_blocks):]
    for _, layers in chosen:
        for layer in layers:
            layer.trainable = train_batchnorm or not isinstance(layer, _NORMALIZATION)
    return [name for name, _ in chosen]


def feature_extractor(model):
    """A model from the same inputs to the head's input: the penultimate features ``(N, D)``.

    It shares the layers (and weights) of ``model``; call it with ``training=False``.
    """
    head = head_layer(model)
    return tf.keras.Model(model.inputs, head.input, name=f"{model.name}_features")


def extract_features(model, dataset):
    """Penultimate features ``(N, D)`` (float32) and labels ``(N,)`` of a batched ``(x, y)`` dataset."""
    features, labels = predict_logits(feature_extractor(model), dataset)
    return features.reshape(len(features), -1), labels


def linear_probe(features, labels, C=1.0, max_iter=2000):
    """Multinomial logistic regression (a softmax classifier) on frozen features.

    ``features`` ``(N, D)``, ``labels`` ``(N,)``. Features are standardised first (the scaler is part
    of the returned scikit-learn pipeline); ``C`` is the inverse L2 strength.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim != 2 or labels.ndim != 1 or len(features) != len(labels):
        raise ShapeError(f"linear_probe needs features (N, D) and labels (N,), got {features.shape} and {labels.shape}")
    if len(np.unique(labels)) < 2:
        raise ConfigError("linear_probe needs at least two classes in labels")
    validation.positive_number("C", C)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    return probe.fit(features, labels)


def copy_body_weights(source, target):
    """Copy every layer's weights except the head's from ``source`` to ``target`` (same builder).

    Layers are matched by position; a different layer type or weight shape raises ShapeError.
    Returns the number of layers copied.
    """
    src, dst = _weighted_layers(source), _weighted_layers(target)
    if len(src) != len(dst):
        raise ShapeError(f"models {source.name!r} and {target.name!r} differ: {len(src)} vs {len(dst)} "
                         "layers with weights")
    for a, b in zip(src[:-1], dst[:-1]):
        shapes_a = [tuple(w.shape) for w in a.weights]
        shapes_b = [tuple(w.shape) for w in b.weights]
        if type(a) is not type(b) or shapes_a != shapes_b:
            raise ShapeError(f"layer {a.name!r} ({type(a).__name__} {shapes_a}) does not fit layer {b.name!r} "
                             f"({type(b).__name__} {shapes_b})")
        b.set_weights(a.get_weights())
    return len(src) - 1


def _set_learning_rate(optimizer, lr):
    # A resumed Trainer restores the optimizer's learning-rate variable from the checkpoint (the
    # head phase's rate); the fine-tuning phase needs its own, lower one.
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    variable = getattr(inner, "_learning_rate", None)
    if isinstance(variable, tf.Variable):
        variable.assign(lr)


def _count(variables):
    return int(sum(np.prod(v.shape) for v in variables))


def _pretrained_config(model, weights, model_options, dataset, image_size, lr, head_epochs, batch_size, seed,
                       validation_fraction):
    from cs231n_tf.models.registry import pretrained_spec

    spec = pretrained_spec(model, weights)
    options = dict(model_options or {})
    if "weights" in options:
        raise ConfigError("give the weights with weights=..., not in model_options")
    options["weights"] = weights
    defaults = config_lib.TrainConfig()
    return config_lib.TrainConfig(
        model=model, model_options=options, dataset=dataset,
        preprocessing="model" if spec.input_stats is not None else "channel",
        image_size=None if image_size is None else list(image_size), lr=lr, epochs=max(head_epochs, 1),
        batch_size=batch_size or 32, seed=defaults.seed if seed is None else seed,
        validation_fraction=defaults.validation_fraction if validation_fraction is None else validation_fraction)


def finetune(source_run_dir, dataset, out_dir, head_epochs=5, unfreeze_blocks=1, finetune_epochs=5,
             lr=1e-3, finetune_lr=1e-4, *, model=None, weights="imagenet", model_options=None, image_size=None,
             batch_size=None, seed=None, train_batchnorm=False, validation_fraction=None, log=print, **overrides):
    """Transfer a trained run, or a pretrained zoo model, to ``dataset``: new head, head-only
    training, then fine-tuning.

    1. Build the source run's registry model (same name and options) for ``dataset``'s class count,
       copy every layer's weights but the head's from the source run's latest checkpoint. Or, with
       ``source_run_dir=None`` and ``model`` a registry name with pretrained weights
       (``efficientnet_lite0``), build it with ``weights`` (``"imagenet"``) and a fresh head; the
       data is then normalised the way the weights were trained (``preprocessing="model"``) and
       ``image_size`` resizes ``folder:`` images.
    2. Freeze everything but the head; train ``head_epochs`` epochs at ``lr``.
    3. Unfreeze the last ``unfreeze_blocks`` blocks (``None``: all); train ``finetune_epochs`` more
       epochs at ``finetune_lr``, continuing the same run (optimizer state and step counter).

    Either phase may have 0 epochs, not both. The result is an ordinary run directory in ``out_dir``
    (``config.json``, ``checkpoints/``, ``metrics.json``, TensorBoard logs) that ``load_run``,
    ``cs231n-tf evaluate`` and ``cs231n-tf export`` open; its ``config.json`` records the last
    phase's settings (``lr=finetune_lr``, the total epochs) and ``metrics.json`` adds a ``finetune``
    entry with the source run, both phases and the trainable parameter counts, and a ``history``
    covering both phases. The optimizer, weight decay, mixed precision, batch size and seed are the
    source run's unless given; ``overrides`` set other :class:`TrainConfig` fields.

    Returns :class:`TrainResult`.
    """
    if (source_run_dir is None) == (model is None):
        raise ConfigError("give exactly one source: a run directory or a pretrained model name")
    head_epochs = validation.non_negative_int("head_epochs", head_epochs)
    finetune_epochs = validation.non_negative_int("finetune_epochs", finetune_epochs)
    if head_epochs + finetune_epochs == 0:
        raise ConfigError("head_epochs and finetune_epochs are both 0: nothing to train")
    validation.positive_number("lr", lr)
    validation.positive_number("finetune_lr", finetune_lr)
    if model is None:
        source = load_run(source_run_dir)
        src = source.config
        config = config_lib.TrainConfig(
            model=src.model, model_options=dict(src.model_options), dataset=dataset, data_dir=src.data_dir,
            validation_fraction=src.validation_fraction if validation_fraction is None else validation_fraction,
            split_seed=src.split_seed, batch_size=batch_size or src.batch_size, optimizer=src.optimizer,
            weight_decay=src.weight_decay, seed=src.seed if seed is None else seed,
            mixed_precision=src.mixed_precision, lr=lr, epochs=max(head_epochs, 1), image_size=image_size)
        available = len(blocks(source.model))
        source_record = {"source_run": source.run_dir, "source_dataset": src.dataset,
                         "source_checkpoint": source.checkpoint}
    else:
        source, config = None, _pretrained_config(model, weights, model_options, dataset, image_size, lr,
                                                   head_epochs, batch_size, seed, validation_fraction)
        available = None
        source_record = {"source_model": model, "source_weights": weights}
    if unfreeze_blocks is not None and available is not None:
        validation.int_in("unfreeze_blocks", unfreeze_blocks, 0, available)
    try:
        config = dataclasses.replace(config, **overrides).validate()
    except TypeError as exc:
        raise ConfigError(f"unknown TrainConfig field in overrides: {exc}") from None
    data = config_lib.load_data(config)
    if source is not None:
        source_shape = tuple(source.run_config["model"]["input_shape"])
        if tuple(data.info.image_shape) != source_shape:
            raise ShapeError(f"data set {dataset!r} has images of shape {tuple(data.info.image_shape)} but the "
                             f"source run {source_run_dir!r} was trained on {source_shape}; transfer needs the same "
                             "input shape (resize folder: images with image_size)")
    out_dir = os.path.abspath(out_dir)
    if tf.train.latest_checkpoint(os.path.join(out_dir, "checkpoints")):
        raise RunDirError(f"{out_dir} already holds a run; choose another output directory")

    phases = []
    if head_epochs:
        phases.append(("head", head_epochs, lr, 0))
    if finetune_epochs:
        phases.append(("finetune", head_epochs + finetune_epochs, finetune_lr, unfreeze_blocks))
    history, record = [], {}
    result, wall = None, 0.0
    for i, (phase, total_epochs, phase_lr, n_blocks) in enumerate(phases):
        phase_config = dataclasses.replace(config, epochs=total_epochs, lr=phase_lr)
        trainer = Trainer(phase_config, out_dir, resume=i > 0, data=data, log=log)
        if i == 0 and source is not None:
            copied = copy_body_weights(source.model, trainer.model)
            log(f"copied {copied} layers from {source.run_dir} ({source.config.dataset}); new head "
                f"{head_layer(trainer.model).name!r} for {data.info.num_classes} classes")
        elif i == 0:
            # The pretrained model's blocks are known once it is built: check before any training.
            if unfreeze_blocks is not None:
                validation.int_in("unfreeze_blocks", unfreeze_blocks, 0, len(blocks(trainer.model)))
            log(f"{model} with {weights} weights; new head {head_layer(trainer.model).name!r} for "
                f"{data.info.num_classes} classes")
        else:
            _set_learning_rate(trainer.optimizer, phase_lr)
        unfrozen = unfreeze(trainer.model, n_blocks, train_batchnorm=train_batchnorm)
        record[phase] = {"epochs": total_epochs - (head_epochs if phase == "finetune" else 0), "lr": phase_lr,
                         "unfrozen_blocks": unfrozen,
                         "trainable_params": _count(trainer.model.trainable_variables)}
        log(f"{phase} phase: {record[phase]['trainable_params']} trainable parameters, unfrozen blocks: "
            f"{', '.join(unfrozen) or 'none (head only)'}, lr {phase_lr:g}")
        result = trainer.run()
        history += [dict(r, phase=phase) for r in result.metrics["history"]]
        wall += result.metrics["wall_seconds"]
    metrics = dict(result.metrics, history=history, wall_seconds=wall, finetune={
        **source_record, "train_batchnorm": bool(train_batchnorm), **record})
    atomic_write_json(os.path.join(out_dir, config_lib.METRICS_FILE), metrics)
    return TrainResult(result.run_dir, metrics, result.model)
