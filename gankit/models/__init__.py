"""Architectures, registered by name: ``GENERATORS``, ``DISCRIMINATORS`` and ``ENCODERS``."""

from gankit.models import (  # noqa: F401  (registers the architectures)
    autoencoder,
    began,
    biggan,
    cyclegan,
    dcgan,
    encoder,
    maxout,
    mlp,
    patchgan,
    progan,
    r3gan,
    resnet,
    srgan,
    stylegan,
    unet,
)
from gankit.models.base import D_INJECTED, DISCRIMINATORS, ENCODERS, G_INJECTED, GENERATORS, DOut, assert_shape

__all__ = ["GENERATORS", "DISCRIMINATORS", "ENCODERS", "DOut", "G_INJECTED", "D_INJECTED", "assert_shape"]
