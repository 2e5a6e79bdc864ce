"""Equalised learning rate and pixelwise feature normalisation (Karras et al. 2018, ProGAN, Sec. 4.1-4.2),
also the building blocks of StyleGAN's mapping and synthesis networks (Karras et al. 2019).

Equalised learning rate: weights are stored as w ~ N(0, 1) and scaled at run time by He's constant
c = gain / sqrt(fan_in), i.e. w_hat = c * w. With Adam (scale-invariant updates) every layer then learns
at the same speed whatever its fan-in. ``lr_mul`` (StyleGAN's mapping network uses 0.01) divides the
stored weights' init scale and multiplies the run-time scale, slowing that layer by lr_mul.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PixelNorm(nn.Module):
    """b_{x,y} = a_{x,y} / sqrt(mean_j (a^j_{x,y})^2 + eps) over the feature (channel) dimension, Eq. in
    ProGAN Sec. 4.2; for (N, C) vectors it normalises each row (StyleGAN's z normalisation)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class EqualizedLinear(nn.Module):
    """Linear layer with the equalised learning rate: y = x (c w)^T + b * lr_mul, c = gain * lr_mul / sqrt(in)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        gain: float = math.sqrt(2),
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1 or lr_mul <= 0:
            raise ValueError(
                f"EqualizedLinear({in_features}, {out_features}, lr_mul={lr_mul}): sizes and lr_mul must be positive"
            )
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul)) if bias else None
        self.scale = gain * lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.weight * self.scale, b)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, scale={self.scale:.4g}, lr_mul={self.lr_mul}"


class EqualizedConv2d(nn.Module):
    """2-D convolution with the equalised learning rate: c = gain / sqrt(in_channels * k * k)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        bias: bool = True,
        gain: float = math.sqrt(2),
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or kernel_size < 1:
            raise ValueError(f"EqualizedConv2d({in_channels}, {out_channels}, {kernel_size}): sizes must be positive")
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, kernel_size={k}, padding={self.padding}, scale={self.scale:.4g}"
