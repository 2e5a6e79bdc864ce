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
        raise ValueError(f"{model} is unconditional, got num_classes={num_classes}; use num_classes=0 "
                         "(for family=conditional use the mlp, dcgan, resnet or biggan networks)")


def set_step(step: int, *nets: nn.Module | None) -> None:
    """Tell networks that change with training progress (ProGAN's growth and fade-in) the generator
    step. A network opts in by defining ``set_step(step)``; its state must be a function of the step
    alone, so that resuming and loading a checkpoint for sampling restore it exactly."""
    for net in nets:
        fn = getattr(net, "set_step", None) if net is not None else None
        if callable(fn):
            fn(int(step))
