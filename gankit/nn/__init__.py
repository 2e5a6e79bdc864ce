"""Layers shared by the architectures (gankit/models/)."""

from gankit.nn.minibatch import MinibatchDiscrimination, MinibatchStdDev

__all__ = ["MinibatchDiscrimination", "MinibatchStdDev"]
