"""One function owns backward: ``run_phase`` runs one optimiser step of a family's phase.

The phases themselves (cadence as data: ``repeats``, ``interval``, the batch rule) are the families'
(``gankit.families.step``); everything around backward lives here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch

from gankit.amp import scaling
from gankit.families.step import Batch, Phase, StepContext
from gankit.training.precision import Precision

FP32 = Precision()  # no autocast, no loss scaling


def grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """The global L2 norm of the gradients of ``params`` (a phase's cached parameter list)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=params[0].device)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def run_phase(
    phase: Phase, ctx: StepContext, draw: Callable[[], Batch], precision: Precision = FP32, accumulate: int = 1
) -> dict[str, torch.Tensor]:
    """One optimiser step of ``phase``: everything around backward lives here and only here.

    Each call of the phase's loss gets the real batch its rule says (``Phase.batch``: ``draw()``,
    the batch an earlier phase drew this step, or none) and ``ctx``. ``precision`` runs the loss
    under autocast (and fp16 loss scaling with ``phase.scaler``); ``accumulate`` > 1 sums the
    gradients of that many calls of the loss (each with its own micro-batch) before the step, the
    terms averaged. Returns the phase's loss terms and the gradient
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
            with contextlib.ExitStack() as syncs:
                # DDP: a frozen network must not expect a gradient reduction (it gets no gradients), and
                # accumulated micro-batches reduce once, on the last backward. (The type ignores: torch types
                # a module's attributes as Tensor | Module; ``no_sync`` is DDP's method, checked by hasattr.)
                for other in phase.frozen:
                    if hasattr(other, "no_sync"):
                        syncs.enter_context(other.no_sync())  # type: ignore[operator]
                if i < accumulate - 1 and hasattr(phase.module, "no_sync"):
                    syncs.enter_context(phase.module.no_sync())  # type: ignore[operator]
                out = _accumulate_once(phase, _batch(phase, ctx, draw, i), ctx, precision, accumulate, out)
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


def _batch(phase: Phase, ctx: StepContext, draw: Callable[[], Batch], call: int) -> Batch | None:
    """The real batch for a phase's ``call``-th loss call this step, by the phase's rule."""
    if phase.batch == "none":
        return None
    if phase.batch == "reuse" and call == 0 and ctx.last_batch is not None:
        return ctx.last_batch
    ctx.last_batch = draw()
    return ctx.last_batch


def _accumulate_once(
    phase: Phase,
    batch: Batch | None,
    ctx: StepContext,
    precision: Precision,
    accumulate: int,
    out: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """One loss call and its backward; returns the running (averaged) terms."""
    scaler = phase.scaler
    with precision.autocast(), scaling(scaler, phase.params[0].device):
        terms = phase.loss_fn(batch, ctx)
    loss = terms["loss"] if accumulate == 1 else terms["loss"] / accumulate
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if accumulate == 1:
        return {k: v.detach() for k, v in terms.items()}
    for k, v in terms.items():
        out[k] = out.get(k, 0) + v.detach().float() / accumulate
    return out
