"""Generative models (lecture 13): the course's GANs, LSGAN, WGAN-GP and DCGAN, trained on the engine.

- ``gan.py``: :func:`sample_noise`, the course's builders (:func:`fc_discriminator`,
  :func:`fc_generator`, :func:`dc_discriminator`, :func:`dc_generator`, flattened 28x28 images),
  :func:`gan_optimizer` (Adam 1e-3, beta1 0.5) and DCGAN for any reachable image size
  (:func:`dcgan_generator`, :func:`dcgan_discriminator`, conditional with ``num_classes``).
- ``losses.py`` (tier 1): the course's ``discriminator_loss``, ``generator_loss``,
  ``ls_discriminator_loss``, ``ls_generator_loss``, and WGAN-GP's losses and gradient penalty.
- ``task.py``: :class:`~cs231n_tf.generative.task.GANTask` (task ``"gan"``) and its
  :class:`~cs231n_tf.generative.task.GANConfig`: both players updated in one compiled engine step;
  ``train``, ``sample``, ``load_generator`` (a serving module for export), sample-grid PNGs.
- ``data.py``: the embedded digits (8x8 and a 28x28 view) and the package's other sources in [-1, 1].
- ``frechet.py``: the Fréchet distance, on a small classifier's features (not the Inception FID).
- ``vae.py``: conv encoder/decoder builders, the reparameterisation, the Bernoulli likelihood, the
  closed-form Gaussian KL, latent interpolation and the 2-D manifold codes (Kingma & Welling 2014).
- ``autoencoder.py``: :class:`~cs231n_tf.generative.autoencoder.AutoencoderTask` (task
  ``"autoencoder"``, ``model`` ``ae`` or ``vae``; ``test_neg_elbo_nats`` and ``test_bits_per_dim``),
  sampling, interpolation and manifold PNGs, and :func:`~cs231n_tf.generative.autoencoder.linear_probe`.
- ``pixelcnn.py``: masked convolutions (type A/B, colour order), the PixelCNN, its exact bits/dim,
  the compiled sequential sampler, the independent-pixel baseline and
  :class:`~cs231n_tf.generative.pixelcnn.PixelCNNTask` (task ``"pixelcnn"``).
- ``common.py``: the run settings and sample-grid hook the likelihood tasks share.
- ``neighbours.py``: nearest-training-neighbour grids (samples are not copies).
- ``export.py``: a run's generator, decoder or PixelCNN conditionals as a verified SavedModel/TFLite.
"""

from cs231n_tf.generative.gan import (
    dc_discriminator, dc_generator, dcgan_discriminator, dcgan_generator, dcgan_layout, fc_discriminator,
    fc_generator, gan_optimizer, sample_noise,
)
from cs231n_tf.generative.losses import (
    discriminator_loss, generator_loss, gradient_penalty, ls_discriminator_loss, ls_generator_loss,
    minimax_generator_loss, wasserstein_critic_loss, wasserstein_generator_loss,
)
from cs231n_tf.generative.vae import (
    bernoulli_nll, conv_decoder, conv_encoder, gaussian_kl, interpolate, manifold_codes, negative_elbo, reparameterize,
)

__all__ = ["bernoulli_nll", "conv_decoder", "conv_encoder", "gaussian_kl", "interpolate", "manifold_codes",
           "negative_elbo", "reparameterize",
           "dc_discriminator", "dc_generator", "dcgan_discriminator", "dcgan_generator", "dcgan_layout",
           "discriminator_loss", "fc_discriminator", "fc_generator", "gan_optimizer", "generator_loss",
           "gradient_penalty", "ls_discriminator_loss", "ls_generator_loss", "minimax_generator_loss",
           "sample_noise", "wasserstein_critic_loss", "wasserstein_generator_loss"]
