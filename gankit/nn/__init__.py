"""Layers shared by the architectures (gankit/models/)."""

from gankit.nn.minibatch import MinibatchDiscrimination, MinibatchStdDev
from gankit.nn.vbn import VirtualBatchNorm, vbn_forward

__all__ = ["MinibatchDiscrimination", "MinibatchStdDev", "VirtualBatchNorm", "vbn_forward"]
