"""Autoencoder discriminators for the energy-based objectives (EBGAN, BEGAN).

D(x) = Dec(Enc(x)); the "logit" the objective sees is a per-sample energy, the reconstruction error:
EBGAN (Zhao et al. 2017, Sec. 2.3) uses the squared error ||Dec(Enc(x)) - x||^2 (``energy=mse``),
BEGAN (Berthelot et al. 2017, Sec. 3.1) the L1 error |x - D(x)|^eta with eta = 1 (``energy=l1``); both
are means over pixels. ``DOut.features`` is the code Enc(x) (for EBGAN's pulling-away term) and
``DOut.recon`` the reconstruction. Channels come from the DCGAN width table, so any resolution the
DCGAN models support works.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from gankit.models.base import D_INJECTED, DISCRIMINATORS, GENERATORS, DOut, assert_shape, refuse_labels
from gankit.models.dcgan import _image_shape, dcgan_channels


class EnergyAutoencoder(nn.Module):
    """What every autoencoder discriminator shares: logits = the per-sample mean reconstruction energy.
    Subclasses build ``encoder``, ``decoder`` and set ``in_shape`` and ``energy`` ("mse" or "l1")."""

    in_shape: tuple[int, int, int]
    energy: str
    encoder: nn.Sequential
    decoder: nn.Module

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        """(N, C, R, R) -> DOut(logits = energy (N,), features = code (N, code_dim), recon (N, C, R, R))."""
        assert_shape(x, [None, *self.in_shape], "x")
        code = self.encoder(x)
        recon = self.decoder(code)
        err = (recon - x).square() if self.energy == "mse" else (recon - x).abs()
        return DOut(logits=err.flatten(1).mean(1), features=code, recon=recon)


@DISCRIMINATORS.register("autoencoder", injected=D_INJECTED)
class AutoencoderDiscriminator(EnergyAutoencoder):
    """Convolutional autoencoder D: stride-2 convs down to 4x4, a ``code_dim`` bottleneck, transposed
    convs back up; logits = per-sample reconstruction energy (use with ``ebgan`` or ``began``)."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 64,
        max_channels: int = 512,
        code_dim: int = 64,
        energy: Literal["mse", "l1"] = "mse",
        out_activation: Literal["tanh", "none"] = "tanh",
        code_norm: Literal["none", "batch"] = "none",
        levels: int = 0,
    ) -> None:
        """``levels``: how many stride-2 convolutions come before the fully connected code (0: down to
        4x4). One level (32x32 -> 16x16, then the code) is the shallow autoencoder of the BEGAN MNIST
        configuration: its code sees every pixel through one convolution, so a thin-stroke sample
        cannot hide in the deep layers' features.

        ``out_activation``: the decoder's output. ``tanh`` keeps reconstructions in the image range;
        ``none`` (linear) never saturates, so the energy's gradient cannot vanish when the decoder has
        collapsed onto the background (mostly black data such as MNIST at 32x32).

        ``code_norm=batch`` batch-normalises the bottleneck: the code (BatchNorm1d + ReLU) and the
        decoder's first fully connected layer. The statistics are those of the batch D is judging (all
        real or all generated), which is what made BEGAN train on MNIST at small scale (a thin-stroke
        batch of G's has code statistics of its own, so D cannot simply generalise to it)."""
        super().__init__()
        model = "discriminator 'autoencoder'"
        refuse_labels(num_classes, model)
        if energy not in ("mse", "l1"):
            raise ValueError(f"{model}: energy={energy!r}; valid choices: mse (EBGAN), l1 (BEGAN)")
        if out_activation not in ("tanh", "none"):
            raise ValueError(f"{model}: out_activation={out_activation!r}; valid choices: tanh, none")
        if code_dim < 1:
            raise ValueError(f"{model}: code_dim={code_dim} must be positive")
        if code_norm not in ("none", "batch"):
            raise ValueError(f"{model}: code_norm={code_norm!r}; valid choices: none, batch (BatchNorm1d)")
        c, res = _image_shape(in_shape, "in_shape", model)
        self.in_shape, self.num_classes, self.energy = (c, res, res), num_classes, energy
        ch = dcgan_channels(res, width, max_channels)
        if not 0 <= levels <= len(ch):
            raise ValueError(f"{model}: levels={levels}; at {res}x{res} use 1..{len(ch)} (or 0: down to 4x4)")
        ch = {r: ch[r] for r in sorted(ch, reverse=True)[: levels or len(ch)]}
        low = min(ch)  # the resolution the code is taken at
        enc: list[nn.Module] = []
        in_ch = c
        for r in sorted(ch, reverse=True):  # R/2 ... low
            enc += [nn.Conv2d(in_ch, ch[r], 4, 2, 1), nn.LeakyReLU(0.2)]
            in_ch = ch[r]
        batch = code_norm == "batch"
        flat = ch[low] * low * low
        code: list[nn.Module] = [nn.BatchNorm1d(code_dim), nn.ReLU()] if batch else []
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(flat, code_dim), *code)
        dec: list[nn.Module] = [nn.Linear(code_dim, flat)]
        dec += [nn.BatchNorm1d(flat)] if batch else []
        dec += [nn.Unflatten(1, (ch[low], low, low)), nn.ReLU()]
        for r in sorted(ch):  # low ... R/2
            out_ch = ch[2 * r] if 2 * r in ch else c
            dec.append(nn.ConvTranspose2d(ch[r], out_ch, 4, 2, 1))
            if 2 * r in ch:
                dec.append(nn.ReLU())
        self.decoder = nn.Sequential(*dec, nn.Tanh() if out_activation == "tanh" else nn.Identity())


@GENERATORS.register("autoencoder", injected=("in_shape", "out_shape", "num_classes"))
class Autoencoder(AutoencoderDiscriminator):
    """The convolutional autoencoder as a model trained on its own (family ``autoencoder``).

    image -> ``code_dim`` code -> image. ``code_activation``: ``none`` (a linear code, as the EBGAN
    discriminator's), ``relu`` (non-negative, for a sparse code with an L1 penalty) or ``sigmoid``."""

    z_dim = 0

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 32,
        max_channels: int = 256,
        code_dim: int = 32,
        code_activation: Literal["none", "relu", "sigmoid"] = "none",
    ) -> None:
        if tuple(in_shape) != tuple(out_shape):
            raise ValueError(
                f"generator 'autoencoder' reconstructs its input; in_shape {tuple(in_shape)} and "
                f"out_shape {tuple(out_shape)} differ"
            )
        super().__init__(in_shape, num_classes, width, max_channels, code_dim)
        self.out_shape = self.in_shape
        acts = {"none": nn.Identity(), "relu": nn.ReLU(), "sigmoid": nn.Sigmoid()}
        if code_activation not in acts:
            raise ValueError(
                f"generator 'autoencoder': code_activation={code_activation!r}; valid: none, relu, sigmoid"
            )
        self.encoder.append(acts[code_activation])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, *self.in_shape], "input image")
        return self.encoder(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        return self.decoder(self.encode(x))
