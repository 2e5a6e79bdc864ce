"""Gaussian noise layers (Salimans et al. 2016, the semi-supervised MNIST discriminator: noise of
standard deviation 0.3 on the input and 0.5 after every hidden layer), active in training only."""

from __future__ import annotations

import torch
from torch import nn


class GaussianNoise(nn.Module):
    """x + N(0, std^2) in training mode; the identity in eval mode (and for std = 0)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        if std < 0:
            raise ValueError(f"noise std must be >= 0, got {std}")
        self.std = float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.std > 0:
            return x + self.std * torch.randn_like(x)
        return x

    def extra_repr(self) -> str:
        return f"std={self.std}"
