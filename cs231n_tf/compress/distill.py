"""Training methods of lecture 15: knowledge distillation and dense-sparse-dense (DSD) training.

* :func:`distill` - Hinton, Vinyals & Dean, 2015, "Distilling the knowledge in a neural network":
  the student matches the teacher's soft targets ``softmax(z_t / T)`` at temperature ``T``; the
  soft term is scaled by ``T^2`` so its gradients keep their size as ``T`` changes, and is mixed
  with the ordinary cross-entropy on the hard labels: ``alpha * T^2 * soft + (1 - alpha) * hard``.
* :func:`dsd` - Han et al., 2017, "DSD: Dense-sparse-dense training for deep neural networks":
  train dense; prune each kernel to sparsity ``s`` by magnitude and train with that mask held fixed;
  then drop the mask and train dense again at a lower learning rate.
* :func:`fine_tune` - plain supervised fine-tuning, which the other compressors use to recover accuracy.

All of them train on the engine (:func:`cs231n_tf.tasks.classification.train_model`), so they run
under any strategy and precision the engine offers. Data is a dataset that yields ``(normalised
images, integer labels)`` batches, e.g. ``DataSplits.train_epoch(epoch, seed)``, or a callable
``epoch -> dataset`` so that each epoch gets its own shuffle.
"""

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine.hooks import Hook
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.tasks.classification import epoch_losses, train_model

PRUNABLE = (tf.keras.layers.Dense, tf.keras.layers.Conv2D)


def check_model(model, role="model"):
    """:class:`InputTypeError` unless ``model`` is a Keras model; ``role`` names it in the message."""
    if not isinstance(model, tf.keras.Model):
        raise InputTypeError(f"{role} must be a tf.keras.Model, got {type(model).__name__}")


def _shifted(train_ds, offset):
    """``train_ds`` with its epochs numbered from ``offset`` (a later phase of one schedule)."""
    if callable(train_ds) and offset:
        return lambda epoch: train_ds(epoch + offset)
    return train_ds


def hard_loss(logits, labels):
    """Mean cross-entropy of ``logits [batch, classes]`` against integer ``labels [batch]``."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)))


def fine_tune(model, train_ds, epochs, lr, history=None, **settings):
    """Train ``model`` in place with Adam on the hard-label cross-entropy (on the engine); returns ``model``.

    ``history`` (a list) receives each epoch's mean training loss; ``settings`` are engine settings
    (``strategy``, ``mixed_precision``, ``steps_per_execution``...).
    """
    check_model(model)
    validation.positive_int("epochs", epochs)
    validation.positive_number("lr", lr)
    result = train_model(model, train_ds, epochs, tf.keras.optimizers.Adam(lr), **settings)
    if history is not None:
        history.extend(epoch_losses(result))
    return model


def distillation_losses(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    """Hinton et al.'s loss per example (``[batch]``), see :func:`distillation_loss`."""
    t = tf.cast(temperature, tf.float32)
    s = tf.cast(student_logits, tf.float32)
    p_teacher = tf.nn.softmax(tf.cast(teacher_logits, tf.float32) / t)
    log_p_teacher = tf.nn.log_softmax(tf.cast(teacher_logits, tf.float32) / t)
    log_p_student = tf.nn.log_softmax(s / t)
    soft = tf.reduce_sum(p_teacher * (log_p_teacher - log_p_student), axis=-1)
    hard = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=s)
    return alpha * t * t * soft + (1.0 - alpha) * hard


def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    """Hinton et al.'s loss for ``[batch, classes]`` logits and integer ``labels [batch]``.

    ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(labels, softmax(s))``, each
    term averaged over the batch. The KL divergence differs from the paper's soft cross-entropy
    only by the teacher's entropy, a constant, so the gradients are the paper's; it is 0 when the
    student matches the teacher.
    """
    return tf.reduce_mean(distillation_losses(student_logits, teacher_logits, labels, temperature, alpha))


def distill(teacher, student, train_ds, epochs, temperature=4.0, alpha=0.9, lr=1e-3, history=None, **settings):
    """Train ``student`` (in place, Adam at ``lr``) on :func:`distillation_loss` against ``teacher``.

    The teacher runs in inference mode and is never updated. Both take the same normalised
    images and produce ``[batch, classes]`` logits. ``history`` (a list) receives each epoch's
    mean loss. Returns ``student``.
    """
    check_model(teacher, "teacher")
    check_model(student, "student")
    validation.positive_int("epochs", epochs)
    validation.positive_number("lr", lr)
    validation.positive_number("temperature", temperature)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha!r}")
    if teacher.output_shape[-1] != student.output_shape[-1]:
        raise ConfigError(f"teacher has {teacher.output_shape[-1]} classes but student has "
                          f"{student.output_shape[-1]}")

    def loss_fn(student_logits, labels, x):
        return distillation_losses(student_logits, teacher(x, training=False), labels, temperature, alpha)

    result = train_model(student, train_ds, epochs, tf.keras.optimizers.Adam(lr), loss_fn=loss_fn, **settings)
    if history is not None:
        history.extend(epoch_losses(result))
    return student


def prunable_kernels(model):
    """The kernels of every Dense and Conv2D layer in ``model`` (nested models included)."""
    return [layer.kernel for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, PRUNABLE) and getattr(layer, "kernel", None) is not None]


def magnitude_masks(model, sparsity):
    """Per-kernel 0/1 masks keeping the ``1 - sparsity`` largest-magnitude weights of each kernel.

    Returns ``{variable.ref(): float mask of the kernel's shape}``. Exactly
    ``floor(sparsity * size)`` weights of each kernel are masked (ties broken by position).
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise ConfigError(f"sparsity must be in [0, 1), got {sparsity!r}")
    masks = {}
    for kernel in prunable_kernels(model):
        w = np.abs(kernel.numpy()).ravel()
        pruned = int(np.floor(sparsity * w.size))
        mask = np.ones(w.size, np.float32)
        mask[np.argsort(w, kind="stable")[:pruned]] = 0.0
        masks[kernel.ref()] = tf.constant(mask.reshape(kernel.shape), kernel.dtype)
    return masks


def sparse_train(model, train_ds, masks, epochs, lr, history=None, epoch_offset=0, **settings):
    """Train with the ``masks`` of :func:`magnitude_masks` held fixed (DSD's sparse phase).

    The masked weights are zeroed before the first step, their gradients are masked (so Adam's
    moments stay zero there), and the weights are re-masked after every update, so they stay
    exactly zero. Returns ``model``.
    """
    validation.positive_int("epochs", epochs)
    validation.positive_number("lr", lr)
    variables = {v.ref(): v for v in model.trainable_variables}
    missing = [ref for ref in masks if ref not in variables]
    if missing:
        raise ConfigError(f"{len(missing)} mask(s) do not belong to a trainable variable of {model.name!r}")
    for ref, mask in masks.items():
        variables[ref].assign(variables[ref] * mask)
    hook = _Remask([(variables[ref], mask) for ref, mask in masks.items()])
    result = train_model(model, _shifted(train_ds, epoch_offset), epochs, tf.keras.optimizers.Adam(lr),
                         gradient_masks=masks, hooks=[hook], **settings)
    if history is not None:
        history.extend(epoch_losses(result))
    return model


class _Remask(Hook):
    """Re-apply fixed masks after every update, in the compiled step."""

    def __init__(self, masks):
        self.masks = masks

    def after_step(self, engine):
        for variable, mask in self.masks:
            variable.assign(variable * mask)


def dsd(model, train_ds, sparsity=0.5, dense_epochs=2, sparse_epochs=2, redense_epochs=2, lr=1e-3,
        redense_lr_factor=0.1):
    """Dense -> sparse -> dense training of ``model`` in place (Han et al., 2017).

    1. dense: ``dense_epochs`` of ordinary training at ``lr`` (0 when ``model`` is already trained);
    2. sparse: prune each Dense/Conv2D kernel to ``sparsity`` by magnitude and train
       ``sparse_epochs`` with the mask held fixed (:func:`sparse_train`);
    3. re-dense: remove the mask (pruned weights restart from zero) and train ``redense_epochs`` at
       ``lr * redense_lr_factor``.

    Returns ``(model, report)``; ``report`` holds each phase's epoch losses and the fraction of
    zero weights per kernel at the end of the sparse phase.
    """
    check_model(model)
    validation.non_negative_int("dense_epochs", dense_epochs)
    validation.positive_int("sparse_epochs", sparse_epochs)
    validation.positive_int("redense_epochs", redense_epochs)
    validation.positive_number("lr", lr)
    validation.positive_number("redense_lr_factor", redense_lr_factor)
    report = {"sparsity": float(sparsity), "dense_loss": [], "sparse_loss": [], "redense_loss": []}
    masks = magnitude_masks(model, sparsity)  # validates sparsity before any training
    if dense_epochs:
        fine_tune(model, train_ds, dense_epochs, lr, report["dense_loss"])
        masks = magnitude_masks(model, sparsity)
    sparse_train(model, train_ds, masks, sparse_epochs, lr, report["sparse_loss"], epoch_offset=dense_epochs)
    report["sparse_zero_fraction"] = {k.name: float(np.mean(k.numpy() == 0.0)) for k in prunable_kernels(model)}
    fine_tune(model, _shifted(train_ds, dense_epochs + sparse_epochs), redense_epochs, lr * redense_lr_factor,
              report["redense_loss"])
    return model, report
