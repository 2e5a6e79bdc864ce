"""Layers shared by the architectures (gankit/models/)."""

from gankit.nn.minibatch import MinibatchDiscrimination, MinibatchStdDev
from gankit.nn.mode import eval_mode
from gankit.nn.vbn import VirtualBatchNorm, vbn_forward

__all__ = ["MinibatchDiscrimination", "MinibatchStdDev", "VirtualBatchNorm", "eval_mode", "vbn_forward"]
