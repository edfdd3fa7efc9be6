"""Generator and discriminator architectures.

Contract every model follows (the contract tests check it for each registered recipe):
- a generator has `latent_dim`, `output_range` (the interval its images live in; the data pipeline
  scales real images to it, so users never rescale by hand) and `forward(z, labels=None)`
  mapping (B, latent_dim) -> (B, C, H, W);
- a discriminator has `forward(images, labels=None)` mapping (B, C, H, W) -> logits (B,).
Translation models (cyclegan.py, pix2pix.py: recipes of a translation task) map images to images instead:
G is `forward(images, direction)`, D `forward(images, domain)` -> patch logits (B, 1, h, w); their
contract tests are in tests/test_cyclegan.py.
"""

from .dcgan import DCGANDiscriminator, DCGANGenerator

__all__ = ["DCGANDiscriminator", "DCGANGenerator"]
