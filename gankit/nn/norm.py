"""Normalisation by name, for the image-to-image networks (pix2pix uses batch norm, CycleGAN
instance norm: Ulyanov et al. 2016, which at batch size 1 is what pix2pix's batch norm computes)."""

from __future__ import annotations

from typing import Literal

from torch import nn

Norm = Literal["batch", "instance", "none"]
NORMS = ("batch", "instance", "none")


def check_norm(norm: str, model: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"{model}: norm={norm!r}; valid choices: {', '.join(NORMS)}")


def norm2d(norm: str, channels: int) -> nn.Module:
    """BatchNorm2d, InstanceNorm2d (affine, no running statistics, as in CycleGAN) or Identity."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()
