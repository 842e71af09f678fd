"""Adversarial examples (lecture 16): white-box attacks, the linear-model attack, robustness curves.

All attacks work in the input's pixel units (images in ``[clip_min, clip_max]``, by default [0, 1]);
a trained run's or a pretrained model's normalisation is part of the attacked function
(:func:`as_logits_fn`), so ``eps`` means the same for every model.
"""

from cs231n_tf.adversarial.attacks import (as_logits_fn, fgsm, fool, linear_attack, linear_weights,
                                           momentum_iterative_fgsm, pgd, robustness_curve)
from cs231n_tf.adversarial.substitute import Oracle, jacobian_augmentation, substitute_attack, transfer_rate
from cs231n_tf.adversarial.training import AdversarialTraining

__all__ = ["as_logits_fn", "fgsm", "pgd", "momentum_iterative_fgsm", "fool", "linear_attack", "linear_weights", "robustness_curve",
           "Oracle", "jacobian_augmentation", "substitute_attack", "transfer_rate", "AdversarialTraining"]
