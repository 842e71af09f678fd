"""GAN training as a task on the package's one engine: two models, two optimizers, one compiled step.

Each step (keras-io's DCGAN ``train_step``, inside the engine's ``tf.function``) first updates the
discriminator on a batch of real images and a batch of generated ones, then the generator on
fresh noise, each through ``ctx.minimize`` (one loss scale per optimizer under mixed precision).
The noise is stateless, drawn from ``(seed, step, replica)``, so a resumed run draws exactly the
noise the uninterrupted run would have. Losses (``loss``): ``gan`` (the course's
``discriminator_loss`` / non-saturating ``generator_loss``), ``lsgan`` (the course's least-squares
losses) and ``wgan_gp`` (Wasserstein critic plus ``gp_weight`` times the gradient penalty; one
critic update per step). Models (``model``): the course's ``fc`` and ``dc`` builders (flattened
28x28x1 images) and ``dcgan`` for any reachable size; the WGAN-GP critic of ``dcgan`` uses layer
norm instead of batch norm (Gulrajani et al.). Every step returns ``d_loss`` and ``g_loss``; the
engine's NaN guard, checkpoints, exact resume, strategies and TensorBoard apply unchanged.

:class:`SampleGridHook` writes a PNG grid of the generator's images for fixed noise every
``sample_every`` steps to ``RUN/samples/step-NNNNNNN.png``.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import Hook, rundir
from cs231n_tf.engine.loop import Engine, EngineConfig, EngineFlags
from cs231n_tf.engine.state import CHECKPOINT_DIR, restore_checkpoint
from cs231n_tf.engine.task import Task
from cs231n_tf.errors import ConfigError, RunDirError
from cs231n_tf.fileio import atomic_write_bytes
from cs231n_tf.generative import gan, losses
from cs231n_tf.generative.data import load_images
from cs231n_tf.train.config import _flag

NAME = "gan"
LOSSES = ("gan", "lsgan", "wgan_gp")
MODELS = ("fc", "dc", "dcgan")
SAMPLES_DIR = "samples"

_DATA, _MODEL, _RUN = "model and data", "model", "run directory and checkpoints"


@dataclasses.dataclass
class GANConfig(EngineFlags):
    """Everything that determines a GAN run (saved in the run's ``config.json``)."""

    epochs: int = _flag(10, "passes over the training images", kind="positive_int")
    batch_size: int = _flag(128, "real images per step (and as many generated)", kind="positive_int", group=_DATA)
    seed: int = _flag(0, "seed of the weights, the data order and the noise", kind="non_negative_int")
    data: str = _flag("digits28", "images: digits28 (embedded digits resized to 28x28), digits (8x8), npz:PATH, "
                      "folder:PATH or a tfds name", group=_DATA)
    model: str = _flag("fc", "fc/dc: the course's 28x28 networks; dcgan: Radford et al. for the data's size",
                       choices=MODELS, group=_MODEL)
    loss: str = _flag("gan", "gan (course), lsgan (course's least squares) or wgan_gp", choices=LOSSES, group=_MODEL)
    noise_dim: int = _flag(96, "noise dimension (uniform in [-1, 1])", kind="integer", group=_MODEL)
    base_filters: int = _flag(32, "dcgan: filters of D's first and G's last hidden layer", kind="positive_int",
                              group=_MODEL)
    lr: float = _flag(1e-3, "Adam learning rate of both players (the course's 1e-3)", kind="positive_float")
    beta1: float = _flag(0.5, "Adam beta1 (the course's 0.5)", kind="unit_float")
    gp_weight: float = _flag(10.0, "wgan_gp: weight of the gradient penalty", kind="non_negative_float")
    sample_every: int = _flag(0, "write a PNG grid of samples every N steps (0: never)", kind="non_negative_int",
                              group=_RUN)
    sample_count: int = _flag(36, "images in each sample grid", kind="positive_int", group=_RUN)
    frechet: bool = _flag(True, "score the run's end with the Frechet distance on a small classifier's features "
                          "(not the Inception FID)", kind="bool", group=_RUN)
    frechet_epochs: int = _flag(3, "training epochs of the Frechet feature classifier", kind="positive_int",
                                group=_RUN)

    def validate(self):
        EngineConfig.validate(self)
        validation.one_of("model", self.model, MODELS)
        validation.one_of("loss", self.loss, LOSSES)
        if isinstance(self.noise_dim, bool) or not isinstance(self.noise_dim, int) or self.noise_dim <= 0:
            raise ConfigError(f"noise_dim must be a positive int, got {self.noise_dim!r}")
        validation.positive_int("base_filters", self.base_filters)
        validation.positive_number("lr", self.lr)
        if not 0.0 <= float(self.beta1) < 1.0:
            raise ConfigError(f"beta1 must be in [0, 1), got {self.beta1!r}")
        validation.positive_number("gp_weight", self.gp_weight, allow_zero=True)
        validation.non_negative_int("sample_every", self.sample_every)
        validation.positive_int("sample_count", self.sample_count)
        validation.positive_int("frechet_epochs", self.frechet_epochs)
        if not isinstance(self.data, str) or not self.data:
            raise ConfigError(f"data must be a data set name, got {self.data!r}")
        return self

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        return rundir.config_from_json(cls, obj, "GAN config")


def build_models(config, image_shape):
    """``(generator, discriminator)`` for ``config`` and images of ``image_shape`` (checked against G)."""
    if config.model == "fc":
        g, d = gan.fc_generator(config.noise_dim), gan.fc_discriminator()
    elif config.model == "dc":
        g, d = gan.dc_generator(config.noise_dim), gan.dc_discriminator()
    else:
        g = gan.dcgan_generator(image_shape, config.noise_dim, config.base_filters)
        d = gan.dcgan_discriminator(image_shape, config.base_filters,
                                    norm="layer" if config.loss == "wgan_gp" else "batch")
    gan.check_generator_output(g, image_shape)
    return g, d


def image_grid(images, columns=None, pad=0):
    """``[n, H, W, C]`` images in [-1, 1] -> one uint8 ``[rows*H, cols*W, C]`` grid (row-major, black padding).

    ``pad``: grey lines of that width between the tiles (digits on black abut otherwise).
    """
    x = np.asarray(images, np.float32)
    n, h, w, c = x.shape
    cols = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * (h + pad) - pad, cols * (w + pad) - pad, c), np.uint8)
    if pad:
        grid[:] = 128
    pixels = np.round((np.clip(x, -1, 1) + 1) * 127.5).astype(np.uint8)
    for i in range(rows * cols):
        r, q = divmod(i, cols)
        top, left = r * (h + pad), q * (w + pad)
        grid[top:top + h, left:left + w] = pixels[i] if i < n else 0
    return grid


def write_grid(images, path, columns=None, pad=0):
    """Write :func:`image_grid` of ``images`` as a PNG at ``path`` (atomically); returns the path."""
    atomic_write_bytes(path, tf.io.encode_png(image_grid(images, columns, pad)).numpy())
    return path


class GANTask(Task):
    """A GAN on ``config.data`` (a :class:`GANConfig`); ``images``: a :class:`GANImages` to use instead."""

    name = NAME
    final_splits = ()
    epoch_split = None

    def __init__(self, config, images=None):
        super().__init__(config.validate())
        self._images = images
        self.generator = self.discriminator = None

    def prepare(self):
        if self._images is None:
            self._images = load_images(self.config.data)
        self.images = self._images
        self.image_shape = self.images.image_shape

    def steps_per_epoch(self):
        return len(self.images.x_train) // self.config.batch_size

    def train_dataset(self, epoch, skip_batches=0):
        b = self.config.batch_size
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.images.x_train))
        order = order[skip_batches * b:(self.steps_per_epoch()) * b]
        return tf.data.Dataset.from_tensor_slices(self.images.x_train[order]).batch(b, drop_remainder=True)

    def build(self, ctx):
        config = self.config
        previous = tf.keras.mixed_precision.global_policy()
        if config.mixed_precision:
            tf.keras.mixed_precision.set_global_policy(config.mixed_precision)
        try:
            self.generator, self.discriminator = build_models(config, self.image_shape)
        finally:
            tf.keras.mixed_precision.set_global_policy(previous)
        self.g_optimizer = ctx.optimizer(gan.gan_optimizer(config.lr, config.beta1))
        self.d_optimizer = ctx.optimizer(gan.gan_optimizer(config.lr, config.beta1))
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.d_metric = tf.keras.metrics.Mean("d_loss")
        self.g_metric = tf.keras.metrics.Mean("g_loss")

    def models(self):
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self):
        return {"g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}

    def metrics(self):
        return [self.d_metric, self.g_metric]

    def _seed_value(self, step, stream, replica=0):
        """The stateless seed of one noise draw: ``(config.seed, replica)`` folded with ``(step, stream)``."""
        base = tf.stack([tf.constant(self.config.seed, tf.int64), tf.cast(replica, tf.int64)])
        return tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int64) * 4 + stream)

    def _seed(self, ctx, stream):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return self._seed_value(ctx.step, stream, replica)

    def _discriminate(self, images, training=True):
        shape = self.discriminator.input_shape[1:]
        return tf.cast(self.discriminator(tf.reshape(images, [-1, *shape]), training=training), tf.float32)

    def train_step(self, batch, ctx):
        config = self.config
        real = tf.cast(batch, tf.float32)
        b = tf.shape(real)[0]
        d_vars, g_vars = self.discriminator.trainable_variables, self.generator.trainable_variables
        z = gan.sample_noise(b, config.noise_dim, seed=self._seed(ctx, 0))
        with tf.GradientTape() as tape:
            fake = tf.cast(self.generator(z, training=True), tf.float32)
            s_real, s_fake = self._discriminate(real), self._discriminate(fake)
            if config.loss == "gan":
                d_loss = losses.discriminator_loss(s_real, s_fake)
            elif config.loss == "lsgan":
                d_loss = losses.ls_discriminator_loss(s_real, s_fake)
            else:
                flat_shape = [-1, *self.discriminator.input_shape[1:]]
                d_loss = losses.wasserstein_critic_loss(s_real, s_fake) + config.gp_weight * losses.gradient_penalty(
                    self.discriminator, tf.reshape(real, flat_shape), tf.reshape(fake, flat_shape),
                    self._seed(ctx, 1))
            d_share = ctx.replica_share(d_loss)  # a replica's batch mean / replicas: sums to the global mean
        ctx.minimize(tape, d_share, d_vars, self.d_optimizer)
        z = gan.sample_noise(b, config.noise_dim, seed=self._seed(ctx, 2))
        with tf.GradientTape() as tape:
            s_fake = self._discriminate(tf.cast(self.generator(z, training=True), tf.float32))
            if config.loss == "gan":
                g_loss = losses.generator_loss(s_fake)
            elif config.loss == "lsgan":
                g_loss = losses.ls_generator_loss(s_fake)
            else:
                g_loss = losses.wasserstein_generator_loss(s_fake)
            g_share = ctx.replica_share(g_loss)
        ctx.minimize(tape, g_share, g_vars, self.g_optimizer)
        self.d_metric.update_state(d_loss)
        self.g_metric.update_state(g_loss)
        return {"d_loss": d_share, "g_loss": g_share}

    def describe(self):
        c = self.config
        return (f"training a {c.loss} GAN ({c.model} models) on {self.images.source} "
                f"({len(self.images.x_train)} images {'x'.join(map(str, self.image_shape))})")

    def run_config(self):
        return {"config": self.config.to_json(), "image_shape": list(self.image_shape)}

    def summary(self, metrics):
        """Parameter counts and, with ``config.frechet``, ``frechet_distance`` of the final generator.

        :func:`~cs231n_tf.generative.frechet.generator_frechet_distance`: as many samples as test
        images against the test split, on the features of a classifier trained on the training
        split (seed ``config.seed``); comparable between runs on the same data only.
        """
        out = super().summary(metrics)
        if self.config.frechet:
            from cs231n_tf.generative.frechet import generator_frechet_distance

            def generate(n, seed):
                noise = gan.sample_noise(n, self.config.noise_dim, seed=seed + 7919)
                return self.generate(noise).numpy()

            out["frechet_distance"] = generator_frechet_distance(generate, self.images, seed=self.config.seed,
                                                                 epochs=self.config.frechet_epochs)
        return out

    def generate(self, noise):
        """Images ``[b, H, W, C]`` in [-1, 1] for ``noise [b, noise_dim]`` (inference mode)."""
        return tf.reshape(tf.cast(self.generator(noise, training=False), tf.float32), [-1, *self.image_shape])

    def serving_module(self):
        """``serve(noise [b, noise_dim]) -> {"images": [b, H, W, C]}``."""
        return GeneratorModule(self.generator, self.image_shape, self.config.noise_dim)


class GeneratorModule(tf.Module):
    """A generator behind one signature: ``serve(noise float32 [b, noise_dim]) -> {"images": [b, H, W, C]}``."""

    def __init__(self, generator, image_shape, noise_dim):
        super().__init__(name="gan_generator")
        self.generator = generator
        self.image_shape = tuple(int(d) for d in image_shape)
        spec = tf.TensorSpec([None, int(noise_dim)], tf.float32, name="noise")
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, noise):
        images = tf.cast(self.generator(noise, training=False), tf.float32)
        return {"images": tf.reshape(images, [-1, *self.image_shape])}


class SampleGridHook(Hook):
    """Every ``every`` steps, a PNG grid of the generator's images for fixed noise in ``RUN/samples/``."""

    def __init__(self, every, count, seed=0):
        self.every, self.count, self.seed = int(every), int(count), int(seed)
        self.written = []

    def after_execution(self, engine, logs):
        if engine.run_dir is None or not self.every:
            return
        step = int(engine.state.step.numpy())
        if step % self.every:
            return
        task = engine.task
        noise = gan.sample_noise(self.count, task.config.noise_dim, seed=self.seed)
        path = os.path.join(engine.run_dir, SAMPLES_DIR, f"step-{step:07d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.written.append(write_grid(task.generate(noise).numpy(), path))


# ---- run directories ------------------------------------------------------------------------------


def load_run_config(run_dir):
    """``(GANConfig, image_shape)`` of a GAN run; a run of another task raises :class:`RunDirError`."""
    obj = rundir.read_config(run_dir)
    rundir.require_task(run_dir, NAME)
    try:
        return GANConfig.from_json(obj["config"]), tuple(obj["image_shape"])
    except (KeyError, TypeError) as exc:
        raise RunDirError(f"{run_dir!r} has an incomplete GAN config ({type(exc).__name__}: {exc})") from None


def load_generator(run_dir, checkpoint=None):
    """A :class:`GeneratorModule` with the run's generator at ``checkpoint`` (default: the latest)."""
    config, image_shape = load_run_config(run_dir)
    if checkpoint is None:
        checkpoint = tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR))
        if checkpoint is None:
            raise RunDirError(f"{run_dir!r} has no checkpoint in {CHECKPOINT_DIR}/")
    generator, _ = build_models(config, image_shape)
    restore_checkpoint(tf.train.Checkpoint(generator=generator), checkpoint, partial=True)
    return GeneratorModule(generator, image_shape, config.noise_dim)


def sample(run_dir, num, out, seed=0, checkpoint=None, neighbours=0):
    """Generate ``num`` images from a GAN run and write their grid to ``out/samples.png``; returns the path.

    ``neighbours=k``: also ``out/neighbours.png``, each sample beside its ``k`` nearest training images.
    """
    num = validation.positive_int("num", num)
    module = load_generator(run_dir, checkpoint)
    noise = gan.sample_noise(num, int(module.serve.input_signature[0].shape[-1]), seed=seed)
    images = module.serve(noise)["images"].numpy()
    os.makedirs(out, exist_ok=True)
    if neighbours:
        from cs231n_tf.generative.neighbours import write_neighbour_grid

        train_images = load_images(load_run_config(run_dir)[0].data).x_train
        write_neighbour_grid(images, train_images, os.path.join(os.path.abspath(out), "neighbours.png"), neighbours)
    return write_grid(images, os.path.join(os.path.abspath(out), "samples.png"))


def train(config, run_dir=None, resume=False, images=None, log=print, hooks=(), progress=None):
    """Train a GAN on the engine; returns its :class:`~cs231n_tf.engine.EngineResult`."""
    if resume and run_dir is not None:
        load_run_config(run_dir)  # a run of another task is refused before anything loads
    task = GANTask(config, images=images)
    extra = [SampleGridHook(config.sample_every, config.sample_count, config.seed)] if config.sample_every else []
    return Engine(task, run_dir, resume=resume, log=log, hooks=[*extra, *hooks], progress=progress).run()
