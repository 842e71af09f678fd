"""Adversarial training (lecture 16): attack the model inside its own compiled train step.

- FGSM training: Goodfellow, Shlens & Szegedy (2015), the objective
  ``(1 - r) * CE(f(x), y) + r * CE(f(x_adv), y)`` (the paper's alpha is ``1 - r``, 0.5 there).
- PGD training: Madry et al. (2018), ``x_adv`` from L-inf PGD with a random start (``r = 1`` is their
  pure min-max objective).

The training pipeline feeds standardised inputs ``z = (u - mean) / std`` of unit-scale pixels ``u``
in [0, 1]. The attack runs in pixel units, with the normalisation inside the attacked function (as
:mod:`cs231n_tf.adversarial.attacks` defines), so ``eps`` means the same as for ``cs231n-tf attack``.
The examples are made with the model in inference mode (no batch-norm statistic updates, no dropout)
and are constants for the weight update (``tf.stop_gradient``).

PGD's random starts are stateless, drawn from ``(seed, step)`` over the *global* batch and sliced per
replica, so a resumed run and a run under ``MirroredStrategy`` draw exactly what an uninterrupted
one-device run draws.
"""

import dataclasses

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.adversarial.attacks import fgsm_graph, pgd_graph, random_ball
from cs231n_tf.errors import ConfigError

METHODS = ("fgsm", "pgd")


@dataclasses.dataclass(frozen=True)
class AdversarialTraining:
    """How a train step makes its adversarial examples.

    ``method``: ``fgsm`` or ``pgd``; ``eps``: L-inf radius in pixel units of [0, 1]; ``ratio``: weight
    ``r`` of the adversarial loss in (0, 1]; ``steps`` / ``step_size``: PGD iterations and step
    (``None``: ``2.5 * eps / steps``, Madry et al.'s choice).
    """

    method: str
    eps: float
    ratio: float = 0.5
    steps: int = 7
    step_size: float = None

    def __post_init__(self):
        validation.one_of("adversarial", self.method, METHODS)
        eps = validation.positive_number("adv_eps", self.eps)
        if eps > 1.0:
            raise ConfigError(f"adv_eps must be in (0, 1] (pixel units), got {self.eps!r}")
        ratio = validation.positive_number("adv_ratio", self.ratio)
        if ratio > 1.0:
            raise ConfigError(f"adv_ratio must be in (0, 1], got {self.ratio!r}")
        validation.positive_int("adv_steps", self.steps)
        if self.step_size is not None:
            validation.positive_number("adv_step_size", self.step_size)

    @classmethod
    def from_config(cls, config):
        """From a :class:`~cs231n_tf.train.config.TrainConfig`'s ``adv_*`` fields; ``None`` when off."""
        if config.adversarial is None:
            return None
        return cls(config.adversarial, config.adv_eps, config.adv_ratio, config.adv_steps, config.adv_step_size)

    @property
    def pgd_step_size(self):
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps

    def examples(self, model, z, y, mean, std, seed, num_replicas=1):
        """Adversarial versions of the standardised batch ``z`` (this replica's part), standardised too.

        ``mean`` / ``std``: the pipeline's normalisation of unit-scale pixels; ``seed``: an int64 scalar
        (the run's seed and step) for PGD's random start.
        """
        y = tf.cast(y, tf.int32)
        unit = tf.clip_by_value(z * std + mean, 0.0, 1.0)

        def logits_fn(u):
            return tf.cast(model((u - mean) / std, training=False), tf.float32)

        if self.method == "fgsm":
            adv = fgsm_graph(logits_fn, unit, y, self.eps)
        else:
            adv = pgd_graph(logits_fn, unit, y, self.eps, self.pgd_step_size, self.steps,
                            start=_replica_start(unit, self.eps, seed, num_replicas))
        return tf.stop_gradient((adv - mean) / std)


def _replica_start(x, eps, seed, num_replicas):
    # Draw over the global batch and keep this replica's rows (replicas get consecutive slices of it).
    local = tf.shape(x)[0]
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    start = random_ball([local * num_replicas] + x.shape.as_list()[1:], eps, "inf", seed)
    offset = tf.cast(replica, tf.int32) * local
    return start[offset:offset + local]


def mixed_loss(per_example_clean, per_example_adv, ratio):
    """``(1 - r) * clean + r * adversarial`` per example (``per_example_clean`` unused when ``r == 1``)."""
    if ratio == 1.0:
        return per_example_adv
    return (1.0 - ratio) * per_example_clean + ratio * per_example_adv
