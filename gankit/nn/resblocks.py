"""Residual up/down blocks of the ResNet GANs (Gulrajani et al. 2017, App. F; Miyato et al. 2018, App. B).

G block: BN -> ReLU -> up x2 -> conv3x3 -> BN -> ReLU -> conv3x3, plus an up-sampled 1x1-conv shortcut.
D block: ReLU -> conv3x3 -> ReLU -> conv3x3 -> avgpool, plus a 1x1-conv -> avgpool shortcut; the first D
block ("optimized block") skips the leading ReLU so raw pixels are not rectified. The normalisation
layer of G blocks is pluggable so conditional batch norm (issue: conditional GANs) can take its place.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

NormFactory = Callable[[int], nn.Module]


class GBlock(nn.Module):
    """Residual generator block that doubles the resolution (nearest-neighbour up-sampling); with
    ``num_classes`` its batch norms are class-conditional (projection cGAN's generator: ``y`` holds class
    ids); with ``cond_dim`` they are linear in a conditioning vector (BigGAN: ``y`` is that vector)."""

    bn1: nn.Module  # plain, class-conditional or linear-conditional batch norms
    bn2: nn.Module

    def __init__(
        self, in_ch: int, out_ch: int, norm: NormFactory = nn.BatchNorm2d, num_classes: int = 0, cond_dim: int = 0
    ) -> None:
        super().__init__()
        from gankit.nn.conditional import ConditionalBatchNorm2d, LinearConditionalBatchNorm2d

        if num_classes and cond_dim:
            raise ValueError("GBlock: give num_classes (class-id CBN) or cond_dim (BigGAN CBN), not both")
        if num_classes:
            self.bn1, self.bn2 = ConditionalBatchNorm2d(in_ch, num_classes), ConditionalBatchNorm2d(out_ch, num_classes)
        elif cond_dim:
            self.bn1, self.bn2 = (
                LinearConditionalBatchNorm2d(in_ch, cond_dim),
                LinearConditionalBatchNorm2d(out_ch, cond_dim),
            )
        else:
            self.bn1, self.bn2 = norm(in_ch), norm(out_ch)
        self.conditional = bool(num_classes or cond_dim)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        bn1, bn2 = (lambda t: self.bn1(t, y), lambda t: self.bn2(t, y)) if self.conditional else (self.bn1, self.bn2)
        h = F.interpolate(F.relu(bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """Residual discriminator block; ``down`` halves the resolution; ``first`` is the optimized block."""

    def __init__(self, in_ch: int, out_ch: int, down: bool = True, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if (in_ch != out_ch or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:  # pool first, then project: the optimized block's shortcut order
            s = F.avg_pool2d(s, 2) if self.down else s
            s = self.shortcut(s) if self.shortcut is not None else s
        else:
            s = self.shortcut(s) if self.shortcut is not None else s
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s
