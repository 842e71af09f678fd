"""Autoencoder and VAE training as one task on the engine (task ``"autoencoder"``), and their uses.

``model="ae"``: a conv autoencoder trained on the Bernoulli cross-entropy of its reconstruction;
its codes feed a linear probe (lecture 13's semi-supervised use, :func:`linear_probe`). It has
no prior, so it cannot be sampled. ``model="vae"``: the VAE of :mod:`cs231n_tf.generative.vae`
(Bernoulli likelihood on [0, 1] pixels, see there), trained on the single-sample negative ELBO.
The training noise ``eps`` is stateless, drawn from ``(seed, step, replica)``, so a resumed run
draws what the uninterrupted one would have; the test split is scored with ``eps`` fixed by the
seed, so ``metrics.json`` is reproducible: ``test_reconstruction_nats``, and for the VAE
``test_kl_nats``, ``test_neg_elbo_nats`` (per image) and ``test_bits_per_dim`` (the negative-ELBO
bound divided by ``H W C ln 2``; a bound on the data's bits/dim with ``binarize`` only).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.engine.context import precision
from cs231n_tf.engine.loop import Engine
from cs231n_tf.engine.state import restore_checkpoint
from cs231n_tf.engine.task import Task
from cs231n_tf.errors import ConfigError
from cs231n_tf.generative import vae
from cs231n_tf.generative.common import DATA, MODEL, LikelihoodRunConfig, SampleGridHook, bits_per_dim
from cs231n_tf.generative.data import load_images, quantize, to_unit
from cs231n_tf.generative.neighbours import write_neighbour_grid
from cs231n_tf.generative.task import write_grid
from cs231n_tf.train.config import _flag

NAME = "autoencoder"
MODELS = ("ae", "vae")


@dataclasses.dataclass
class AutoencoderConfig(LikelihoodRunConfig):
    """Everything that determines an autoencoder/VAE run (saved in the run's ``config.json``)."""

    model: str = _flag("vae", "ae (deterministic codes) or vae (Gaussian codes, ELBO)", choices=MODELS, group=MODEL)
    latent_dim: int = _flag(16, "code size (2: the VAE's manifold grid)", kind="integer", group=MODEL)
    filters: int = _flag(32, "filters of the first conv (the second has twice as many)", kind="positive_int",
                         group=MODEL)
    hidden: int = _flag(128, "units of the dense layer before/after the code", kind="positive_int", group=MODEL)
    binarize: bool = _flag(False, "binarise the pixels at 1/2 (the Bernoulli likelihood is then exact)",
                           kind="bool", group=DATA)

    def validate(self):
        LikelihoodRunConfig.validate(self)
        validation.one_of("model", self.model, MODELS)
        if isinstance(self.latent_dim, bool) or not isinstance(self.latent_dim, int) or self.latent_dim <= 0:
            raise ConfigError(f"latent_dim must be a positive int, got {self.latent_dim!r}")
        validation.positive_int("filters", self.filters)
        validation.positive_int("hidden", self.hidden)
        return self


def build_models(config, image_shape):
    """``(encoder, decoder)`` for ``config``; the VAE's encoder outputs ``[mean, log_var]``."""
    outputs = config.latent_dim * (2 if config.model == "vae" else 1)
    encoder = vae.conv_encoder(image_shape, outputs, config.filters, config.hidden)
    decoder = vae.conv_decoder(image_shape, config.latent_dim, config.filters, config.hidden)
    return encoder, decoder


def targets(images, binarize):
    """Images in [-1, 1] -> the Bernoulli targets in [0, 1] (0/1 with ``binarize``)."""
    return quantize(images, 2).astype(np.float32) if binarize else to_unit(images)


class AutoencoderTask(Task):
    """An autoencoder or VAE on ``config.data``; ``images``: a :class:`GANImages` to use instead."""

    name = NAME
    final_splits = (("test", "test_"),)
    epoch_split = None

    def __init__(self, config, images=None):
        super().__init__(config.validate())
        self._images = images
        self.encoder = self.decoder = None

    def prepare(self):
        if self._images is None:
            self._images = load_images(self.config.data)
        self.images = self._images
        self.image_shape = vae.check_image_shape(self.images.image_shape)
        self.x_train = targets(self.images.x_train, self.config.binarize)
        self.x_test = targets(self.images.x_test, self.config.binarize)

    def steps_per_epoch(self):
        return len(self.x_train) // self.config.batch_size

    def train_dataset(self, epoch, skip_batches=0):
        b = self.config.batch_size
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.x_train))
        order = order[skip_batches * b:self.steps_per_epoch() * b]
        return tf.data.Dataset.from_tensor_slices(self.x_train[order]).batch(b, drop_remainder=True)

    def eval_dataset(self, split):
        if split != "test":
            return None
        # Fixed eps per test image: the single-sample ELBO estimate is the same at every evaluation.
        eps = np.random.default_rng([self.config.seed, 1]).standard_normal(
            (len(self.x_test), self.config.latent_dim)).astype(np.float32)
        return tf.data.Dataset.from_tensor_slices((self.x_test, eps)).batch(self.config.batch_size)

    def build(self, ctx):
        with precision(self.config.mixed_precision):
            self.encoder, self.decoder = build_models(self.config, self.image_shape)
        self.optimizer = ctx.optimizer(tf.keras.optimizers.Adam(self.config.lr))
        self.optimizer.build(self.encoder.trainable_variables + self.decoder.trainable_variables)
        self.loss_metric = tf.keras.metrics.Mean("loss")
        self.rec_metric = tf.keras.metrics.Mean("reconstruction")
        self.kl_metric = tf.keras.metrics.Mean("kl")

    def models(self):
        return {"encoder": self.encoder, "decoder": self.decoder}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def metrics(self):
        return [self.loss_metric, self.rec_metric] + ([self.kl_metric] if self.config.model == "vae" else [])

    def _seed_value(self, step, replica=0):
        base = tf.stack([tf.constant(self.config.seed, tf.int64), tf.cast(replica, tf.int64)])
        return tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int64))

    def terms(self, x, eps, training):
        """``(reconstruction, kl)`` per image in nats (``kl`` is zero for the plain autoencoder)."""
        encoded = tf.cast(self.encoder(x, training=training), tf.float32)
        if self.config.model == "ae":
            logits = self.decoder(encoded, training=training)
            return vae.bernoulli_nll(logits, x), tf.zeros([tf.shape(x)[0]])
        mean, log_var = vae.split_moments(encoded)
        logits = self.decoder(vae.reparameterize(mean, log_var, eps), training=training)
        return vae.negative_elbo(logits, x, mean, log_var)

    def train_step(self, batch, ctx):
        x = tf.cast(batch, tf.float32)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        eps = tf.random.stateless_normal([tf.shape(x)[0], self.config.latent_dim],
                                         seed=self._seed_value(ctx.step, replica))
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        with tf.GradientTape() as tape:
            rec, kl = self.terms(x, eps, training=True)
            loss = ctx.mean(rec + kl)
        ctx.minimize(tape, loss, variables, self.optimizer)
        self.loss_metric.update_state(rec + kl)
        self.rec_metric.update_state(rec)
        if self.config.model == "vae":
            self.kl_metric.update_state(kl)
        return {"loss": loss}

    def eval_step(self, batch, ctx):
        x, eps = batch
        rec, kl = self.terms(tf.cast(x, tf.float32), eps, training=False)
        return {"reconstruction": rec, "kl": kl}

    def evaluate_end(self, outputs, split):
        rec = float(np.mean(outputs["reconstruction"]))
        out = {"reconstruction_nats": rec}
        if self.config.model == "vae":
            nats = rec + float(np.mean(outputs["kl"]))
            out.update(kl_nats=float(np.mean(outputs["kl"])), neg_elbo_nats=nats,
                       bits_per_dim=bits_per_dim(nats, np.prod(self.image_shape)))
        return out

    def describe(self):
        c = self.config
        return (f"training a conv {c.model} (latent {c.latent_dim}) on {self.images.source}"
                f"{', binarised' if c.binarize else ''} ({len(self.x_train)} images "
                f"{'x'.join(map(str, self.image_shape))})")

    def run_config(self):
        return {"config": self.config.to_json(), "image_shape": list(self.image_shape)}

    # ---- using the trained models -------------------------------------------------------------

    def encode(self, images):
        """Codes ``[n, latent_dim]`` of images in [-1, 1] (the VAE's posterior means)."""
        return encode(self.encoder, self.config, images)

    def decode(self, codes):
        """Bernoulli means ``[n, H, W, C]`` in [0, 1] of ``codes``."""
        return tf.sigmoid(tf.cast(self.decoder(codes, training=False), tf.float32)).numpy()

    def sample_images(self, count, seed=0):
        """``count`` VAE samples in [-1, 1]: the decoder's Bernoulli means for ``z ~ N(0, I)``."""
        return sample_images(self.decoder, self.config, count, seed)

    def serving_module(self):
        """``serve(latent [b, latent_dim]) -> {"images": [b, H, W, C] Bernoulli means}``."""
        return DecoderModule(self.decoder, self.config.latent_dim)


def encode(encoder, config, images):
    codes = tf.cast(encoder(targets(images, config.binarize), training=False), tf.float32)
    return (vae.split_moments(codes)[0] if config.model == "vae" else codes).numpy()


def sample_images(decoder, config, count, seed=0):
    if config.model != "vae":
        raise ConfigError("an 'ae' autoencoder has no prior to sample from; train --model vae")
    z = tf.random.stateless_normal([validation.positive_int("num", count), config.latent_dim], seed=[seed, 0])
    return tf.sigmoid(tf.cast(decoder(z, training=False), tf.float32)).numpy() * 2.0 - 1.0


class DecoderModule(tf.Module):
    """A decoder behind one signature: ``serve(latent float32 [b, k]) -> {"images": [b, H, W, C]}`` in [0, 1]."""

    def __init__(self, decoder, latent_dim):
        super().__init__(name="vae_decoder")
        self.decoder = decoder
        spec = tf.TensorSpec([None, int(latent_dim)], tf.float32, name="latent")
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, latent):
        return {"images": tf.sigmoid(tf.cast(self.decoder(latent, training=False), tf.float32))}


def linear_probe(train_features, train_labels, test_features, test_labels, c=1.0):
    """Test accuracy of a multinomial logistic regression (scikit-learn) fitted on standardised features.

    The linear probe of representation learning: how linearly separable the classes are in a
    feature space, here with few labels (codes of an autoencoder trained without labels vs pixels).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train = np.asarray(train_features, np.float64).reshape(len(train_features), -1)
    x_test = np.asarray(test_features, np.float64).reshape(len(test_features), -1)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
    probe.fit(x_train, np.asarray(train_labels))
    return float(np.mean(probe.predict(x_test) == np.asarray(test_labels)))


# ---- run directories ------------------------------------------------------------------------------


def load_run_config(run_dir):
    """``(AutoencoderConfig, image_shape)`` of a run; a run of another task raises :class:`RunDirError`."""
    return rundir.read_task_config(
        run_dir, NAME, lambda obj: (AutoencoderConfig.from_json(obj["config"]), tuple(obj["image_shape"])))


def load_models(run_dir, checkpoint=None):
    """``(config, encoder, decoder)`` of a run at ``checkpoint`` (default: the latest)."""
    config, image_shape = load_run_config(run_dir)
    encoder, decoder = build_models(config, image_shape)
    restore_checkpoint(tf.train.Checkpoint(encoder=encoder, decoder=decoder),
                       rundir.latest_checkpoint(run_dir, checkpoint), partial=True)
    return config, encoder, decoder


def sample(run_dir, num, out, seed=0, checkpoint=None, neighbours=0):
    """VAE samples (``samples.png``), test-image interpolations (``interpolation.png``) and, for a 2-D
    latent, the manifold grid (``manifold.png``) in ``out``; returns the path of ``samples.png``.

    ``neighbours=k``: also ``neighbours.png``, each sample beside its ``k`` nearest training images.
    """
    config, encoder, decoder = load_models(run_dir, checkpoint)
    images = sample_images(decoder, config, num, seed)
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    data = load_images(config.data)
    test = data.x_test
    if neighbours:
        train_images = targets(data.x_train, config.binarize) * 2.0 - 1.0
        write_neighbour_grid(images, train_images, os.path.join(out, "neighbours.png"), neighbours)
    write_interpolation(encoder, decoder, config, test[:5], test[5:10], 8, os.path.join(out, "interpolation.png"))
    if config.latent_dim == 2:
        write_manifold(decoder, 10, os.path.join(out, "manifold.png"))
    return write_grid(images, os.path.join(out, "samples.png"))


def write_unit_grid(images, path, columns=None, pad=0):
    """A PNG grid of images in [0, 1] at ``path`` (atomically); returns the path."""
    return write_grid(np.asarray(images, np.float32) * 2.0 - 1.0, path, columns, pad)


def write_interpolation(encoder, decoder, config, starts, ends, steps, path, pad=0):
    """A PNG with one row per pair: the decoded straight line between the codes of ``starts[i]`` and ``ends[i]``."""
    a, b = encode(encoder, config, starts), encode(encoder, config, ends)
    codes = np.concatenate([vae.interpolate(a[i], b[i], steps) for i in range(len(a))])
    return write_unit_grid(tf.sigmoid(tf.cast(decoder(codes, training=False), tf.float32)).numpy(), path, steps, pad)


def write_manifold(decoder, n, path, pad=0):
    """The ``n x n`` grid of a 2-D latent space decoded at normal quantiles (:func:`vae.manifold_codes`) as a PNG."""
    if int(decoder.input_shape[-1]) != 2:
        raise ConfigError(f"the manifold grid needs a 2-D latent space, this decoder's is {decoder.input_shape[-1]}-D")
    decoded = tf.sigmoid(tf.cast(decoder(vae.manifold_codes(n), training=False), tf.float32)).numpy()
    return write_unit_grid(decoded, path, n, pad)


def train(config, run_dir=None, resume=False, images=None, log=print, hooks=(), progress=None):
    """Train an autoencoder or VAE on the engine; returns its :class:`~cs231n_tf.engine.EngineResult`."""
    if resume and run_dir is not None:
        load_run_config(run_dir)  # a run of another task is refused before anything loads
    task = AutoencoderTask(config, images=images)
    extra = [SampleGridHook(config.sample_every, config.sample_count, config.seed)] \
        if config.sample_every and config.model == "vae" else []
    return Engine(task, run_dir, resume=resume, log=log, hooks=[*extra, *hooks], progress=progress).run()
