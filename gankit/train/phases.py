"""Cadence as data: a schedule is a list of phases, and one function owns backward.

After StyleGAN2-ADA's ``training_loop`` phases: n_critic, lazy regularisation and G/D alternation
are numbers here (``repeats``, ``interval``), never branches in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

LossFn = Callable[[], dict[str, torch.Tensor]]


@dataclass
class Phase:
    name: str  # "D" or "G": also the prefix of its logged terms
    module: nn.Module  # the network this phase trains
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn  # returns {"loss": total, other named terms ...}
    frozen: tuple[nn.Module, ...] = ()  # networks that must not accumulate gradients here
    repeats: int = 1  # e.g. n_critic discriminator updates per generator update
    interval: int = 1  # run on generator steps where step % interval == 0
    start: int = 0  # and step >= start (SRGAN's D waits while G pre-trains on the content loss)
    post_step: tuple[Callable[[], None], ...] = field(default_factory=tuple)  # e.g. weight clipping


def grad_norm(module: nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), device=next(module.parameters()).device)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def run_phase(phase: Phase) -> dict[str, torch.Tensor]:
    """One optimiser step of ``phase``: everything around backward lives here and only here.

    Returns the phase's loss terms and the gradient norm, detached and still on the device (no host
    sync); the norm is what tells a non-finite gradient from a non-finite loss.
    """
    for other in phase.frozen:
        other.requires_grad_(False)  # saves the other network's weight gradients entirely
    phase.module.requires_grad_(True)
    try:
        phase.optimizer.zero_grad(set_to_none=True)
        terms = phase.loss_fn()
        terms["loss"].backward()
        out = {k: v.detach() for k, v in terms.items()}
        out["grad_norm"] = grad_norm(phase.module)
        phase.optimizer.step()
        for hook in phase.post_step:
            hook()
    finally:
        for other in phase.frozen:
            other.requires_grad_(True)
    return out
