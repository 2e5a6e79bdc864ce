"""Cadence as data: a schedule is a list of phases, and one function owns backward.

After StyleGAN2-ADA's ``training_loop`` phases: n_critic, lazy regularisation and G/D alternation
are numbers here (``repeats``, ``interval``), never branches in the loop.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from gankit.training.precision import Precision, scaling

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
    scaler: torch.amp.GradScaler | None = None  # fp16 loss scaling; set by the trainer

    def __post_init__(self) -> None:
        # Parameter lists walked once: module.parameters() recurses through every submodule, and at
        # the toy benchmark's 12 ms steps those walks were most of what gankit added to a plain loop.
        self.params = [p for p in self.module.parameters()]
        self.frozen_params = [p for m in self.frozen for p in m.parameters()]


def grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    """The global L2 norm of the gradients of ``params`` (a phase's cached parameter list)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=params[0].device)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def run_phase(phase: Phase, precision: Precision = Precision(), accumulate: int = 1) -> dict[str, torch.Tensor]:
    """One optimiser step of ``phase``: everything around backward lives here and only here.

    ``precision`` runs the loss under autocast (and fp16 loss scaling with ``phase.scaler``);
    ``accumulate`` > 1 sums the gradients of that many calls of the loss (each drawing its own
    micro-batch) before the step, the terms averaged. Returns the phase's loss terms and the gradient
    norm, detached and still on the device (no host sync); the norm is what tells a non-finite
    gradient from a non-finite loss.
    """
    # The other network computes no weight gradients here; each flag is restored afterwards as it was,
    # so parameters a model keeps frozen on purpose stay frozen.
    saved = [p.requires_grad for p in phase.frozen_params]
    for p in phase.frozen_params:
        p.requires_grad_(False)
    scaler = phase.scaler
    try:
        phase.optimizer.zero_grad(set_to_none=True)
        out: dict[str, torch.Tensor] = {}
        for i in range(accumulate):
            with contextlib.ExitStack() as ctx:
                # DDP: a frozen network must not expect a gradient reduction (it gets no gradients), and
                # accumulated micro-batches reduce once, on the last backward.
                for other in phase.frozen:
                    if hasattr(other, "no_sync"):
                        ctx.enter_context(other.no_sync())
                if i < accumulate - 1 and hasattr(phase.module, "no_sync"):
                    ctx.enter_context(phase.module.no_sync())
                out = _accumulate_once(phase, precision, accumulate, out)
        if scaler is not None:
            scaler.unscale_(phase.optimizer)  # true gradients for the norm (inf on a step fp16 skips)
        out["grad_norm"] = grad_norm(phase.params)
        if scaler is not None:
            before = scaler.scale(torch.ones((), device=out["grad_norm"].device))
            scaler.step(phase.optimizer)
            scaler.update()
            # The scale only falls when the gradients overflowed and the step was skipped (no host sync).
            out["skipped"] = (scaler.scale(torch.ones_like(before)) < before).float()
        else:
            phase.optimizer.step()
        for hook in phase.post_step:
            hook()
    finally:
        for p, flag in zip(phase.frozen_params, saved):
            p.requires_grad_(flag)
    return out


def _accumulate_once(phase: Phase, precision: Precision, accumulate: int,
                     out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One loss call and its backward; returns the running (averaged) terms."""
    scaler = phase.scaler
    with precision.autocast(), scaling(scaler, phase.params[0].device):
        terms = phase.loss_fn()
    loss = terms["loss"] if accumulate == 1 else terms["loss"] / accumulate
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if accumulate == 1:
        return {k: v.detach() for k, v in terms.items()}
    for k, v in terms.items():
        out[k] = out.get(k, 0) + v.detach().float() / accumulate
    return out

