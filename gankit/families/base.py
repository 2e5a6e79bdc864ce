"""The family registry and what families share beyond the unconditional game."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from gankit.data.base import to_float
from gankit.registry import Registry

# The built pieces and data the trainer hands every family; a family's own keyword arguments beyond
# these are its recipe options (``family: {name: pix2pix, l1_weight: 100}``).
FAMILY_INJECTED = ("G", "D", "objective", "penalties", "next_batch", "device", "tricks", "encoder",
                   "labelled", "heldout", "probe_train")
FAMILIES = Registry("family", injected=FAMILY_INJECTED)


@torch.no_grad()
def eval_batches(net: nn.Module, images: torch.Tensor, device: torch.device, fn: Callable[[Any], torch.Tensor],
                 batch: int = 500) -> torch.Tensor:
    """``fn(net(x))`` over uint8 ``images`` in batches, with ``net`` in eval mode (its mode is restored
    after); the results concatenated on the CPU. For scores of the networks themselves (test error,
    linear probe)."""
    was = net.training
    net.eval()
    try:
        return torch.cat([fn(net(to_float(xb).to(device))).cpu() for xb in images.split(batch)])
    finally:
        net.train(was)
