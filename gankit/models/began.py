"""BEGAN's generator and autoencoder discriminator (Berthelot, Schumm & Metz 2017, "BEGAN: Boundary
Equilibrium Generative Adversarial Networks", Sec. 3.5 and Fig. 1).

The paper's networks differ from DCGAN's in ways that matter for energy-based training:
  * 3x3 convolutions with **ELU** everywhere, no batch norm, and no output nonlinearity -- a linear
    output cannot saturate, so the reconstruction energy always has a gradient;
  * the decoder (and G, which has the decoder's architecture and its own weights) starts from an
    8x8 map and doubles it by **nearest-neighbour upsampling**, which avoids the checkerboard of
    transposed convolutions that an autoencoder then fails to reconstruct;
  * the encoder subsamples with stride-2 convolutions while its channels grow linearly (n, 2n, 3n, ...)
    and ends in a linear embedding h (Nh = 64 in the paper) with no nonlinearity.
The ``width`` n is the paper's 'n' (64 or 128 there). Use the D with ``began`` (L1 energy) or ``ebgan``
(squared error) objectives; ``DOut.features`` is the embedding h, for EBGAN's pulling-away term.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from gankit.models.autoencoder import EnergyAutoencoder
from gankit.models.base import D_INJECTED, DISCRIMINATORS, G_INJECTED, GENERATORS, assert_shape, refuse_labels

START = 8  # the decoder's first map is 8x8 (Fig. 1)


def _resolution(shape: tuple[int, ...], model: str) -> tuple[int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[0] < 1 or shape[1] < START or shape[1] & (shape[1] - 1):
        raise ValueError(f"{model}: shape {shape} is not supported; use (C, R, R) with R a power of two >= {START}")
    return shape[0], shape[1]


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, 1)


class Decoder(nn.Module):
    """h -> Linear -> 8x8xn -> [conv3x3, ELU, conv3x3, ELU, upsample x2] ... -> conv3x3 -> C channels."""

    def __init__(self, in_dim: int, channels: int, resolution: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.linear = nn.Linear(in_dim, START * START * width)
        layers: list[nn.Module] = []
        r = START
        while True:
            layers += [_conv(width, width), nn.ELU(), _conv(width, width), nn.ELU()]
            if r == resolution:
                break
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            r *= 2
        layers.append(_conv(width, channels))  # linear output (Fig. 1)
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(self.linear(h).view(h.shape[0], self.width, START, START))


@GENERATORS.register("began", injected=G_INJECTED)
class BEGANGenerator(nn.Module):
    """BEGAN generator: the decoder architecture with its own weights, z (N_z = 64) -> (N, C, R, R).

    The output is linear, not tanh (Fig. 1): images leave roughly in [-1, 1] because D reconstructs
    data in that range; sample writers and metrics clamp to the image range."""

    def __init__(self, out_shape: tuple[int, ...], num_classes: int = 0, z_dim: int = 64, width: int = 64) -> None:
        super().__init__()
        model = "generator 'began'"
        refuse_labels(num_classes, model)
        c, res = _resolution(out_shape, model)
        if z_dim < 1 or width < 1:
            raise ValueError(f"{model}: z_dim={z_dim} and width={width} must be positive")
        self.out_shape, self.num_classes, self.z_dim = (c, res, res), num_classes, z_dim
        self.decoder = Decoder(z_dim, c, res, width)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(N, z_dim) -> (N, C, R, R)."""
        assert_shape(z, [None, self.z_dim], "z")
        return self.decoder(z)


@DISCRIMINATORS.register("began", injected=D_INJECTED)
class BEGANDiscriminator(EnergyAutoencoder):
    """BEGAN autoencoder D: conv3x3 -> [conv3x3, ELU, conv3x3, ELU, stride-2 conv3x3 with (k+1)n
    channels] ... -> Linear h -> decoder. logits = per-sample reconstruction energy (mean over pixels):
    |x - D(x)| for ``energy=l1`` (BEGAN, eta = 1), (x - D(x))^2 for ``mse`` (EBGAN)."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 64,
        code_dim: int = 64,
        energy: Literal["l1", "mse"] = "l1",
    ) -> None:
        super().__init__()
        model = "discriminator 'began'"
        refuse_labels(num_classes, model)
        if energy not in ("l1", "mse"):
            raise ValueError(f"{model}: energy={energy!r}; valid choices: l1 (BEGAN), mse (EBGAN)")
        c, res = _resolution(in_shape, model)
        if code_dim < 1 or width < 1:
            raise ValueError(f"{model}: code_dim={code_dim} and width={width} must be positive")
        self.in_shape, self.num_classes, self.energy = (c, res, res), num_classes, energy
        layers: list[nn.Module] = [_conv(c, width), nn.ELU()]
        r, ch, k = res, width, 1
        while True:
            layers += [_conv(ch, ch), nn.ELU(), _conv(ch, ch), nn.ELU()]
            if r == START:
                break
            k += 1
            layers += [_conv(ch, k * width, stride=2), nn.ELU()]  # subsample; channels grow linearly
            ch, r = k * width, r // 2
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(ch * START * START, code_dim))
        self.decoder = Decoder(code_dim, c, res, width)
