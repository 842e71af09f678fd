"""Training methods of lecture 15: knowledge distillation and dense-sparse-dense (DSD) training.

* :func:`distill` - Hinton, Vinyals & Dean, 2015, "Distilling the knowledge in a neural network":
  the student matches the teacher's soft targets ``softmax(z_t / T)`` at temperature ``T``; the
  soft term is scaled by ``T^2`` so its gradients keep their size as ``T`` changes, and is mixed
  with the ordinary cross-entropy on the hard labels: ``alpha * T^2 * soft + (1 - alpha) * hard``.
* :func:`dsd` - Han et al., 2017, "DSD: Dense-sparse-dense training for deep neural networks":
  train dense; prune each kernel to sparsity ``s`` by magnitude and train with that mask held fixed;
  then drop the mask and train dense again at a lower learning rate.
* :func:`fine_tune` - the plain supervised loop the other compressors use to recover accuracy.

Every loop is a ``tf.function`` train step over a dataset that yields ``(normalised images,
integer labels)`` batches, e.g. ``DataSplits.train_epoch(epoch, seed)``. ``train_ds`` may also be a
callable ``epoch -> dataset`` so that each epoch gets its own shuffle.
"""

import numbers

import numpy as np
import tensorflow as tf

from cs231n_tf.errors import ConfigError, InputTypeError

PRUNABLE = (tf.keras.layers.Dense, tf.keras.layers.Conv2D)


def _epoch_data(train_ds, epoch):
    return train_ds(epoch) if callable(train_ds) else train_ds


def check_positive_int(name, value, allow_zero=False):
    """:class:`ConfigError` unless ``value`` is a positive (or, with ``allow_zero``, non-negative) int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (0 if allow_zero else 1):
        raise ConfigError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} int, got {value!r}")


def check_lr(lr):
    """:class:`ConfigError` unless the learning rate ``lr`` is a positive number."""
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise ConfigError(f"lr must be a positive number, got {lr!r}")


def check_model(model, role="model"):
    """:class:`InputTypeError` unless ``model`` is a Keras model; ``role`` names it in the message."""
    if not isinstance(model, tf.keras.Model):
        raise InputTypeError(f"{role} must be a tf.keras.Model, got {type(model).__name__}")


def hard_loss(logits, labels):
    """Mean cross-entropy of ``logits [batch, classes]`` against integer ``labels [batch]``."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)))


def run_epochs(step, train_ds, epochs, epoch_offset=0):
    """Run ``step(x, y) -> loss`` over ``epochs`` epochs; returns the mean loss of each epoch."""
    history = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for x, y in _epoch_data(train_ds, epoch_offset + epoch):
            total = total + step(x, y)  # stays on the device; read once per epoch
            count += 1
        if count == 0:
            raise ConfigError("train_ds yielded no batches")
        history.append(float(total) / count)
    return history


def _supervised_step(model, optimizer, after_update=None, gradient_masks=None):
    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = hard_loss(model(x, training=True), y)
            total = loss + tf.add_n(model.losses) if model.losses else loss
        grads = tape.gradient(total, model.trainable_variables)
        if gradient_masks is not None:
            grads = [g * gradient_masks[v.ref()] if v.ref() in gradient_masks else g
                     for g, v in zip(grads, model.trainable_variables)]
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        if after_update is not None:
            after_update()
        return loss

    return step


def fine_tune(model, train_ds, epochs, lr, history=None):
    """Train ``model`` in place with Adam on the hard-label cross-entropy; returns ``model``.

    ``history`` (a list) receives each epoch's mean training loss.
    """
    check_model(model)
    check_positive_int("epochs", epochs)
    check_lr(lr)
    losses = run_epochs(_supervised_step(model, tf.keras.optimizers.Adam(lr)), train_ds, epochs)
    if history is not None:
        history.extend(losses)
    return model


def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    """Hinton et al.'s loss for ``[batch, classes]`` logits and integer ``labels [batch]``.

    ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(labels, softmax(s))``, each
    term averaged over the batch. The KL divergence differs from the paper's soft cross-entropy
    only by the teacher's entropy, a constant, so the gradients are the paper's; it is 0 when the
    student matches the teacher.
    """
    t = tf.cast(temperature, tf.float32)
    s = tf.cast(student_logits, tf.float32)
    p_teacher = tf.nn.softmax(tf.cast(teacher_logits, tf.float32) / t)
    log_p_teacher = tf.nn.log_softmax(tf.cast(teacher_logits, tf.float32) / t)
    log_p_student = tf.nn.log_softmax(s / t)
    soft = tf.reduce_mean(tf.reduce_sum(p_teacher * (log_p_teacher - log_p_student), axis=-1))
    return alpha * t * t * soft + (1.0 - alpha) * hard_loss(s, labels)


def distill(teacher, student, train_ds, epochs, temperature=4.0, alpha=0.9, lr=1e-3, history=None):
    """Train ``student`` (in place, Adam at ``lr``) on :func:`distillation_loss` against ``teacher``.

    The teacher runs in inference mode and is never updated. Both take the same normalised
    images and produce ``[batch, classes]`` logits. ``history`` (a list) receives each epoch's
    mean loss. Returns ``student``.
    """
    check_model(teacher, "teacher")
    check_model(student, "student")
    check_positive_int("epochs", epochs)
    check_lr(lr)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ConfigError(f"temperature must be a positive number, got {temperature!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha!r}")
    if teacher.output_shape[-1] != student.output_shape[-1]:
        raise ConfigError(f"teacher has {teacher.output_shape[-1]} classes but student has "
                          f"{student.output_shape[-1]}")
    optimizer = tf.keras.optimizers.Adam(lr)

    @tf.function
    def step(x, y):
        teacher_logits = teacher(x, training=False)
        with tf.GradientTape() as tape:
            loss = distillation_loss(student(x, training=True), teacher_logits, y, temperature, alpha)
            total = loss + tf.add_n(student.losses) if student.losses else loss
        grads = tape.gradient(total, student.trainable_variables)
        optimizer.apply_gradients(zip(grads, student.trainable_variables))
        return loss

    losses = run_epochs(step, train_ds, epochs)
    if history is not None:
        history.extend(losses)
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


def sparse_train(model, train_ds, masks, epochs, lr, history=None, epoch_offset=0):
    """Train with the ``masks`` of :func:`magnitude_masks` held fixed (DSD's sparse phase).

    The masked weights are zeroed before the first step, their gradients are masked (so Adam's
    moments stay zero there), and the weights are re-masked after every update, so they stay
    exactly zero. Returns ``model``.
    """
    check_positive_int("epochs", epochs)
    check_lr(lr)
    variables = {v.ref(): v for v in model.trainable_variables}
    missing = [ref for ref in masks if ref not in variables]
    if missing:
        raise ConfigError(f"{len(missing)} mask(s) do not belong to a trainable variable of {model.name!r}")
    for ref, mask in masks.items():
        variables[ref].assign(variables[ref] * mask)

    def reapply():
        for ref, mask in masks.items():
            variables[ref].assign(variables[ref] * mask)

    step = _supervised_step(model, tf.keras.optimizers.Adam(lr), after_update=reapply, gradient_masks=masks)
    losses = run_epochs(step, train_ds, epochs, epoch_offset)
    if history is not None:
        history.extend(losses)
    return model


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
    check_positive_int("dense_epochs", dense_epochs, allow_zero=True)
    check_positive_int("sparse_epochs", sparse_epochs)
    check_positive_int("redense_epochs", redense_epochs)
    check_lr(lr)
    if not isinstance(redense_lr_factor, (int, float)) or not redense_lr_factor > 0:
        raise ConfigError(f"redense_lr_factor must be a positive number, got {redense_lr_factor!r}")
    report = {"sparsity": float(sparsity), "dense_loss": [], "sparse_loss": [], "redense_loss": []}
    masks = magnitude_masks(model, sparsity)  # validates sparsity before any training
    if dense_epochs:
        report["dense_loss"] = run_epochs(_supervised_step(model, tf.keras.optimizers.Adam(lr)), train_ds,
                                           dense_epochs)
        masks = magnitude_masks(model, sparsity)
    sparse_train(model, train_ds, masks, sparse_epochs, lr, report["sparse_loss"], epoch_offset=dense_epochs)
    report["sparse_zero_fraction"] = {k.name: float(np.mean(k.numpy() == 0.0)) for k in prunable_kernels(model)}
    report["redense_loss"] = run_epochs(
        _supervised_step(model, tf.keras.optimizers.Adam(lr * redense_lr_factor)), train_ds, redense_epochs,
        epoch_offset=dense_epochs + sparse_epochs)
    return model, report
