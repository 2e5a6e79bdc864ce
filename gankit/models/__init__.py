"""Architectures, registered by name: ``GENERATORS`` and ``DISCRIMINATORS``."""

from gankit.models.base import D_INJECTED, DISCRIMINATORS, DOut, G_INJECTED, GENERATORS, assert_shape
from gankit.models import dcgan, mlp  # noqa: F401  (registers the architectures)

__all__ = ["GENERATORS", "DISCRIMINATORS", "DOut", "G_INJECTED", "D_INJECTED", "assert_shape"]
