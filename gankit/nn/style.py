"""Style-based generator layers: StyleGAN (Karras et al. 2019, "A Style-Based Generator Architecture for
Generative Adversarial Networks") and StyleGAN2's weight demodulation (Karras et al. 2020, "Analyzing and
Improving the Image Quality of StyleGAN").

- ``MappingNetwork``  f: Z -> W (StyleGAN Sec. 2, Fig. 1b): z normalised (PixelNorm), then an MLP of
  equalised-lr linear layers with LeakyReLU(0.2); lr_mul = 0.01 slows the mapping (App. C).
- ``AdaIN``           StyleGAN Eq. 1: AdaIN(x_i, y) = y_{s,i} (x_i - mu(x_i)) / sigma(x_i) + y_{b,i},
  with y = (y_s, y_b) a learned affine map "A" of w; y_s is bias-initialised to 1 (official code).
- ``ModulatedConv2d`` StyleGAN2 Sec. 2.2, Eqs. 1-3: w'_ijk = s_i w_ijk, then
  w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps), run as one grouped convolution.
- ``NoiseInjection``  StyleGAN Sec. 2 / Fig. 1b "B": one single-channel noise image per sample, added to
  every channel scaled by a learned per-channel factor (zero-initialised, as in the official code).

Equalised learning rate (ProGAN Sec. 4.1) everywhere: weights stored N(0, 1), scaled at run time.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.nn.equalized import EqualizedLinear, PixelNorm

NoiseMode = Literal["auto", "random", "const", "none"]


class MappingNetwork(nn.Module):
    """StyleGAN's mapping network f (Sec. 2): PixelNorm(z) -> ``num_layers`` x [EqualizedLinear, LReLU(0.2)].

    The paper uses 8 layers of 512 units and lr_mul = 0.01 (App. C); every hidden layer has ``w_dim`` units.
    """

    def __init__(self, z_dim: int, w_dim: int, num_layers: int = 8, lr_mul: float = 0.01) -> None:
        super().__init__()
        if z_dim < 1 or w_dim < 1 or num_layers < 1:
            raise ValueError(f"MappingNetwork: z_dim={z_dim}, w_dim={w_dim} and num_layers={num_layers} must be >= 1")
        layers: list[nn.Module] = [PixelNorm()]
        for i in range(num_layers):
            layers += [EqualizedLinear(z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mul), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.z_dim, self.w_dim = z_dim, w_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, z_dim) -> w (N, w_dim)."""
        return self.net(z)


def style_affine(w_dim: int, channels: int, bias_init: float = 0.0) -> EqualizedLinear:
    """The learned affine transform "A" of StyleGAN Fig. 1b (w -> one style value per channel): an
    equalised-lr linear with gain 1, as in the official code; ``bias_init`` = 1 for the scales."""
    return EqualizedLinear(w_dim, channels, gain=1.0, bias_init=bias_init)


class AdaIN(nn.Module):
    """Adaptive instance normalisation, StyleGAN Eq. 1: y_s * (x - mu(x)) / sigma(x) + y_b per channel.

    mu and sigma are the per-sample, per-channel spatial mean and (biased) standard deviation,
    sigma = sqrt(var + eps); (y_s, y_b) = (A_s(w), A_b(w)) with A_s's bias initialised to 1 so that
    y_s starts near 1 (the official code's ``style[:, 0] + 1``).
    """

    def __init__(self, channels: int, w_dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.scale = style_affine(w_dim, channels, bias_init=1.0)
        self.shift = style_affine(w_dim, channels)
        self.eps = eps

    def styles(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_s, y_b), each (N, channels)."""
        return self.scale(w), self.shift(w)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y_s, y_b = self.styles(w)
        x_hat = F.instance_norm(x, eps=self.eps)  # (x - mu) / sqrt(var + eps), biased var per (n, c)
        return y_s[:, :, None, None] * x_hat + y_b[:, :, None, None]


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution (Karras et al. 2020, Sec. 2.2, Eqs. 1-3), stride 1, 'same' padding.

    s = A(w) (bias-initialised to 1); Eq. 1: w'_ijk = s_i w_ijk (i input channel, j output, k tap);
    Eq. 3, with ``demodulate``: w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps). The stored weight is
    N(0, 1) times the equalised-lr constant 1 / sqrt(in * k * k). For unit-variance i.i.d. inputs,
    demodulation gives every output channel unit variance (Eq. 2).

    ``fused`` = True (default) is the paper's implementation: one grouped convolution (groups = N) with
    the per-sample weights. ``fused`` = False computes the same thing as scale-input, shared conv,
    scale-output (the official code's ``fused_modconv=False`` path), much faster on CPU.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        w_dim: int,
        demodulate: bool = True,
        fused: bool = True,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"ModulatedConv2d({in_channels}, {out_channels}, {kernel_size}): sizes must be "
                "positive and the kernel odd"
            )
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine = style_affine(w_dim, in_channels, bias_init=1.0)
        self.demodulate, self.fused, self.eps = demodulate, fused, eps
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, wd = x.shape
        s = self.affine(w)  # (N, in)
        weight = self.weight * self.scale  # (out, in, k, k)
        if not self.fused:
            # conv(x * s) with shared weights, then the per-output-channel factor: same as Eqs. 1-3.
            out = F.conv2d(x * s[:, :, None, None], weight, padding=self.padding)
            if self.demodulate:
                d = torch.rsqrt((s[:, None, :].pow(2) * weight.pow(2).sum(dim=(2, 3))[None]).sum(2) + self.eps)
                out = out * d[:, :, None, None]
            return out
        wm = weight[None] * s[:, None, :, None, None]  # Eq. 1: (N, out, in, k, k)
        if self.demodulate:
            wm = wm * torch.rsqrt(wm.pow(2).sum(dim=(2, 3, 4), keepdim=True) + self.eps)  # Eq. 3
        out = F.conv2d(x.reshape(1, n * c, h, wd), wm.reshape(-1, c, *wm.shape[3:]), padding=self.padding, groups=n)
        return out.reshape(n, -1, h, wd)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, kernel_size={k}, demodulate={self.demodulate}, fused={self.fused}"


class NoiseInjection(nn.Module):
    """StyleGAN's per-pixel noise (Sec. 2, Fig. 1b "B"): x + b * noise, b a learned per-channel factor
    (zero-initialised), noise one (N, 1, H, W) image of N(0, 1) values broadcast over the channels.

    ``mode``: ``random`` draws fresh noise from torch's global RNG; ``const`` uses the fixed noise image
    stored in the ``fixed`` buffer (drawn once at construction, saved with the weights); ``none`` adds
    nothing; ``auto`` is random in training mode and const in eval mode, so an eval-mode G is a
    deterministic function of its input (the official code's ``noise_mode='const'``). An explicit
    ``noise`` tensor overrides the mode.
    """

    fixed: torch.Tensor  # buffer: the constant noise image

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))
        self.register_buffer("fixed", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None, mode: NoiseMode = "auto") -> torch.Tensor:
        if noise is None:
            if mode == "auto":
                mode = "random" if self.training else "const"
            if mode == "none":
                return x
            if mode == "random":
                noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
            elif mode == "const":
                noise = self.fixed
            else:
                raise ValueError(f"noise mode {mode!r}; valid choices: auto, random, const, none")
        return x + self.weight.view(1, -1, 1, 1) * noise
