"""GAN training step speed: the engine's compiled two-player step vs a keras-io style ``train_step`` override.

Both train the course's fully connected GAN (:func:`cs231n_tf.generative.fc_generator` /
:func:`~cs231n_tf.generative.fc_discriminator`, noise 96, the course's Adam 1e-3 / beta1 0.5 for
each player) on the embedded digits resized to 28x28, batch 128, one discriminator then one
generator update per step:

- engine: :class:`cs231n_tf.generative.task.GANTask` in an in-memory :class:`~cs231n_tf.engine.Engine`
  (``steps_per_execution`` 1, the defaults), advanced ``--steps`` steps per timed call;
- keras-io: a ``tf.keras.Model`` subclass whose ``train_step`` does the same two updates (the
  keras-io DCGAN example's structure), run with ``model.fit(steps_per_epoch=--steps)``.

The calls are interleaved (``experiments/_timing.py``'s ``round_robin``) after a warm-up that
compiles both; steps per second (median over rounds, wall and process CPU) and the ratio are printed.

    python experiments/bench_gan_step.py [--steps 40] [--rounds 3]
"""

import argparse
import os
import sys

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import RESULTS, command, machine, write_section  # noqa: E402
from _timing import round_robin  # noqa: E402

from cs231n_tf.engine import Engine  # noqa: E402
from cs231n_tf.generative import gan, losses  # noqa: E402
from cs231n_tf.generative.data import load_images  # noqa: E402
from cs231n_tf.generative.task import GANConfig, GANTask  # noqa: E402


class KerasIOGAN(tf.keras.Model):
    """keras-io's GAN pattern: ``compile`` with two optimizers, ``train_step`` with D then G updates."""

    def __init__(self, generator, discriminator, noise_dim):
        super().__init__()
        self.generator, self.discriminator, self.noise_dim = generator, discriminator, noise_dim

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def train_step(self, real):
        b = tf.shape(real)[0]
        real = tf.reshape(real, [b, -1])
        z = tf.random.uniform([b, self.noise_dim], -1.0, 1.0)
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            d_loss = losses.discriminator_loss(self.discriminator(real, training=True),
                                               self.discriminator(fake, training=True))
        d_vars = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        z = tf.random.uniform([b, self.noise_dim], -1.0, 1.0)
        with tf.GradientTape() as tape:
            g_loss = losses.generator_loss(self.discriminator(self.generator(z, training=True), training=True))
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        return {"d_loss": d_loss, "g_loss": g_loss}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="training steps per timed call")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed calls of each")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = parser.parse_args()
    images = load_images("digits28")
    b, steps = args.batch_size, args.steps

    config = GANConfig(batch_size=b, epochs=10 ** 6, max_steps=1, log_every=10 ** 9, model="fc", loss="gan")
    engine = Engine(GANTask(config, images=images), None, log=None, progress=False)

    def engine_steps():
        engine.settings.max_steps = int(engine.state.step.numpy()) + steps
        engine.run()

    model = KerasIOGAN(gan.fc_generator(96), gan.fc_discriminator(), 96)
    model.compile(gan.gan_optimizer(), gan.gan_optimizer())
    data = tf.data.Dataset.from_tensor_slices(images.x_train).shuffle(len(images.x_train), seed=0).repeat() \
        .batch(b, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def fit_steps():
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)

    times = round_robin({"engine": engine_steps, "keras_fit": fit_steps}, args.rounds)
    wall = {k: steps / float(np.median([t[0] for t in v])) for k, v in times.items()}
    cpu = {k: steps / float(np.median([t[1] for t in v])) for k, v in times.items()}
    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             f"The course's fully connected GAN (G 1,952,528 + D 267,009 parameters), digits resized to 28x28, "
             f"batch {b}, one D then one G Adam update per step; {steps} steps per call, median of "
             f"{args.rounds} interleaved calls after a compiling warm-up.", "",
             "| trainer | steps/s (wall) | steps/s (process CPU) |", "|---|---:|---:|",
             f"| engine (`GANTask`, `generate train`) | {wall['engine']:.2f} | {cpu['engine']:.2f} |",
             f"| keras-io `train_step` override + `model.fit` | {wall['keras_fit']:.2f} | {cpu['keras_fit']:.2f} |",
             "", f"engine / model.fit: {wall['engine'] / wall['keras_fit']:.2f}x (wall), "
                 f"{cpu['engine'] / cpu['keras_fit']:.2f}x (CPU)."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(RESULTS, "bench-gan-step", body, heading="GAN training step: engine vs keras-io model.fit")


if __name__ == "__main__":
    main()
