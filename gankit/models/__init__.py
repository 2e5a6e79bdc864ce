"""Architectures, registered by name: ``GENERATORS``, ``DISCRIMINATORS`` and ``ENCODERS``."""

from gankit.models.base import D_INJECTED, DISCRIMINATORS, DOut, ENCODERS, G_INJECTED, GENERATORS, assert_shape
from gankit.models import autoencoder, began, biggan, cyclegan, dcgan, encoder, maxout, mlp, patchgan, progan, resnet, srgan, stylegan, unet  # noqa: F401  (registers the architectures)

__all__ = ["GENERATORS", "DISCRIMINATORS", "ENCODERS", "DOut", "G_INJECTED", "D_INJECTED", "assert_shape"]
