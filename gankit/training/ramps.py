"""A recipe's ramps (``gankit.config.Ramp``) bound to the built pieces: one setter per ramp, called with
the generator step before every training step.

Each value is a function of the step alone, so a resumed run sets exactly what an uninterrupted run
would have set, with nothing to checkpoint. Targets are checked when the run is assembled, with the
valid ones named.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from gankit.config import ConfigError, Ramp, Recipe

Setter = Callable[[float], None]


def _optim_setter(opt: torch.optim.Optimizer | None, key: str, target: str) -> Setter:
    if opt is None:
        raise ConfigError(f"ramps: {target}: this recipe trains no such network")
    if key == "lr":

        def set_lr(v: float) -> None:
            for group in opt.param_groups:
                group["lr"] = v

        return set_lr
    if "betas" not in opt.param_groups[0]:
        raise ConfigError(f"ramps: {target}: the optimiser has no beta2 (use optim type adam or adamw)")

    def set_beta2(v: float) -> None:
        for group in opt.param_groups:
            group["betas"] = (group["betas"][0], v)

    return set_beta2


def _attribute_setter(pieces: list[tuple[str, Any]], kind: str, name: str, attr: str, target: str) -> Setter:
    found = [p for n, p in pieces if n == name]
    if not found:
        have = ", ".join(n for n, _ in pieces) or "none"
        raise ConfigError(f"ramps: {target}: the recipe has no {kind} {name!r} (its {kind}s: {have})")
    piece = found[0]
    current = getattr(piece, attr, None)
    if isinstance(current, torch.Tensor) and current.ndim == 0:

        def fill(v: float) -> None:  # a state tensor (ADA's p) keeps its device and identity
            current.fill_(v)

        return fill
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        raise ConfigError(f"ramps: {target}: {kind} {name!r} has no numeric option {attr!r}")
    return lambda v: setattr(piece, attr, float(v))


def _half_life(set_decay: Setter, batch: int) -> Setter:
    """An EMA half-life in images (R3GAN's and StyleGAN2's way to give it) as the per-step decay
    0.5^(batch / half_life); a half-life of 0 copies G."""
    return lambda images: set_decay(0.5 ** (batch / images) if images > 0 else 0.0)


def bind(
    recipe: Recipe,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer | None,
    penalties: list[tuple[str, Any]],
    tricks: list[tuple[str, Any]],
    set_ema_decay: Setter | None,
) -> list[tuple[Ramp, Setter]]:
    """Each ramp of ``recipe`` with the setter of its target; a bad target is a ConfigError."""
    bound = []
    for ramp in recipe.ramps:
        parts = ramp.target.split(".")
        if parts[:1] == ["optim"] and len(parts) == 3 and parts[1] in ("g", "d") and parts[2] in ("lr", "beta2"):
            if parts[2] == "lr" and recipe.schedule.decay_start:
                raise ConfigError(f"ramps: {ramp.target} and schedule.decay_start both set the learning rate; keep one")
            setter = _optim_setter(opt_g if parts[1] == "g" else opt_d, parts[2], ramp.target)
        elif ramp.target == "ema.half_life":
            if set_ema_decay is None:
                raise ConfigError("ramps: ema.half_life needs ema.enabled=true")
            if min(ramp.start, ramp.end) < 0:
                raise ConfigError(f"ramps: ema.half_life is a number of images >= 0, got {ramp.start} -> {ramp.end}")
            setter = _half_life(set_ema_decay, recipe.schedule.batch_size)
        elif ramp.target == "ema.decay":
            if set_ema_decay is None:
                raise ConfigError("ramps: ema.decay needs ema.enabled=true")
            if not (0.0 < min(ramp.start, ramp.end) and max(ramp.start, ramp.end) < 1.0):
                raise ConfigError(f"ramps: ema.decay must stay in (0, 1), got {ramp.start} -> {ramp.end}")
            setter = set_ema_decay
        elif parts[:1] == ["penalty"] and len(parts) == 3:
            setter = _attribute_setter(penalties, "penalty", parts[1], parts[2], ramp.target)
        elif parts[:1] == ["trick"] and len(parts) == 3:
            setter = _attribute_setter(tricks, "trick", parts[1], parts[2], ramp.target)
        else:
            raise ConfigError(
                f"ramps: unknown target {ramp.target!r}; valid: optim.g.lr, optim.d.lr, optim.g.beta2, "
                "optim.d.beta2, ema.decay, ema.half_life, penalty.<name>.<option>, trick.<name>.<option>"
            )
        bound.append((ramp, setter))
    return bound


TensorList = tuple[torch.Tensor, ...] | list[torch.Tensor]


def scheduled_ema(decay: Callable[[], float]) -> Callable[[TensorList, TensorList, torch.Tensor | int], None]:
    """The EMA update of ``torch.optim.swa_utils.get_ema_multi_avg_fn`` with the decay read at every
    update (``ema.decay`` ramped)."""

    @torch.no_grad()
    def update(ema: TensorList, current: TensorList, _: torch.Tensor | int) -> None:
        d = decay()
        if torch.is_floating_point(ema[0]) or torch.is_complex(ema[0]):
            torch._foreach_lerp_(ema, current, 1 - d)
        else:
            for e, c in zip(ema, current):
                e.copy_(e * d + c * (1 - d))

    return update
