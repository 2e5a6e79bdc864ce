"""The contracts every architecture follows (DESIGN.md, Conventions)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankit.registry import Registry

GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
ENCODERS = Registry("encoder")

# What the framework passes to every model factory; recipes never set these.
G_INJECTED = ("out_shape", "num_classes")
D_INJECTED = ("in_shape", "num_classes")


@dataclass
class DOut:
    """What a discriminator returns.

    logits:       (N,) realness scores (or patch logits (N, ...)); raw logits, never probabilities.
                  Autoencoder discriminators put their per-sample reconstruction energy here.
    class_logits: (N, num_classes) for auxiliary-classifier discriminators.
    features:     (N, F) penultimate activations, for feature matching.
    recon:        the reconstruction, for autoencoder discriminators.
    """

    logits: torch.Tensor
    class_logits: torch.Tensor | None = None
    features: torch.Tensor | None = None
    recon: torch.Tensor | None = None


def assert_shape(x: torch.Tensor, shape: list[int | None], what: str = "tensor") -> None:
    """Raise if ``x`` does not match ``shape`` (None matches any size)."""
    if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
        raise ValueError(f"{what} has shape {tuple(x.shape)}, expected {shape}")


def refuse_labels(num_classes: int, model: str) -> None:
    """Unconditional architectures refuse labels rather than silently ignore a conditional recipe's."""
    if num_classes > 0:
        raise ValueError(
            f"{model} is unconditional, got num_classes={num_classes}; use num_classes=0 "
            "(for family=conditional use the mlp, dcgan, resnet or biggan networks)"
        )


def normal_init_(net: nn.Module, std: float) -> None:
    """Draw every linear and convolution weight of ``net`` from N(0, std) and zero its bias: the isotropic
    Gaussian initialisation of much early GAN code (PacGAN's 2-D experiments and CycleGAN use std 0.02
    and constant-0 biases; Lin et al. 2018, code fjxmlzn/PacGAN). ``std = 0`` keeps PyTorch's default
    (Kaiming-uniform), which on the 2-D grid left PacGAN4's G diffuse long after N(0, 0.02) had
    resolved every mode (gankit/bench/toy.py)."""
    if std < 0:
        raise ValueError(f"init_std={std} must be >= 0 (0 keeps PyTorch's default initialisation)")
    if std == 0:
        return
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def set_step(step: int, *nets: nn.Module | None) -> None:
    """Tell networks that change with training progress (ProGAN's growth and fade-in) the generator
    step. A network opts in by defining ``set_step(step)``; its state must be a function of the step
    alone, so that resuming and loading a checkpoint for sampling restore it exactly."""
    for net in nets:
        fn = getattr(net, "set_step", None) if net is not None else None
        if callable(fn):
            fn(int(step))
