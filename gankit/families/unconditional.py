"""The plain GAN game: x ~ data, z ~ N(0, I); D tells x from G(z), G learns to fool D.

Goodfellow et al. 2014, Algorithm 1: k discriminator steps (``n_critic``) per generator step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from gankit.families.base import FAMILIES, Family
from gankit.families.step import Batch, BatchRule, Phase, StepContext
from gankit.latent import z_dim_of


def separation(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's accuracy at the midpoint of its mean real and mean fake scores: 0.5 when it cannot tell
    them apart, 1 when it separates them completely. A threshold of the scores themselves, so it means
    the same for logits, critic values and (negated) energies; the health monitor reads it."""
    t = (real.mean() + fake.mean()) / 2
    return ((real > t).float().mean() + (fake < t).float().mean()) / 2


@FAMILIES.register("unconditional")
class Unconditional(Family):
    """Unconditional GAN: samples from noise alone; labels, if the data has them, are ignored."""

    family_name = "unconditional"

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module | None,  # None for the standalone autoencoder (``adversarial = False``)
        objective: Any,
        penalties: list[tuple[str, Any]],
        device: torch.device,
        tricks: Sequence[tuple[str, Any]] = (),
        encoder: nn.Module | None = None,
    ) -> None:
        if encoder is not None and not self.needs_encoder:
            raise ValueError(
                f"family {self.family_name!r} has no encoder; remove `encoder` from the recipe "
                "(the bidirectional families bigan and veegan use one)"
            )
        self.G, self.D, self.objective = G, D, objective
        self.tricks = list(tricks)
        self.d_penalties = [(n, p) for n, p in penalties if p.target == "D"]
        self.g_penalties = [(n, p) for n, p in penalties if p.target == "G"]
        self.device = device
        self.opt_d: torch.optim.Optimizer | None = None  # the unrolled GAN continues D's optimiser state

    @staticmethod
    def realness(out: Any) -> torch.Tensor:
        """The logit the objective judges in D's output (the semi-supervised family derives it)."""
        return out.logits

    # -- what tricks and objectives see -----------------------------------------------------------
    def d_inputs(
        self, real: torch.Tensor | None, fake: torch.Tensor, step: int
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """What D is shown: the tricks' input transforms in turn (instance noise, DiffAugment, PacGAN)."""
        for _, t in self.tricks:
            real, fake = t.d_inputs(real, fake, step)
        return real, fake

    def adversarial_d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The objective's D loss, or the one a trick puts in its place (label smoothing)."""
        for _, t in self.tricks:
            loss = t.d_loss(self.objective, real_logits, fake_logits)
            if loss is not None:
                return loss
        return self.objective.d_loss(real_logits, fake_logits)

    def adversarial_g_loss(
        self, fake_logits: torch.Tensor, real_logits: Callable[[], torch.Tensor] | None
    ) -> torch.Tensor:
        """The objective's G loss; D's outputs on real data (``real_logits``, computed only when the
        objective reads them: relativistic losses) go with every call."""
        real = real_logits() if real_logits is not None and self.objective.g_uses_real else None
        return self.objective.g_loss(fake_logits, real)

    def g_reads_real(self) -> bool:
        """Whether the G loss reads D's outputs on real data: a relativistic objective, feature matching."""
        return bool(self.objective.g_uses_real) or any(t.needs_real_in_g_step for _, t in self.tricks)

    def g_batch(self) -> BatchRule:
        """The real batch the G phase gets (``Phase.batch``): one when the loss reads D's real outputs
        or a trick needs real data (the unrolled look-ahead)."""
        needs = self.g_reads_real() or any(t.needs_batch_in_g_step for _, t in self.tricks)
        return "fresh" if needs else "none"

    def _extra(self, net_name: str, net: nn.Module, terms: dict[str, torch.Tensor], loss: torch.Tensor) -> torch.Tensor:
        for name, t in self.tricks:
            term = t.extra_loss(net_name, net)
            if term is not None:
                terms[f"trick/{name}"] = term
                loss = loss + term
        return loss

    # -- the game ---------------------------------------------------------------------------------
    def d_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        assert batch is not None
        real = batch.x
        with torch.no_grad():
            fake = self.G(ctx.noise(real.shape[0], z_dim_of(self.G)))
        return self.d_loss_terms(real, fake, ctx)

    def d_loss_terms(
        self, real: torch.Tensor, fake: torch.Tensor, ctx: StepContext, y: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """D's loss on what it judges (samples here, (x, z) pairs in the bidirectional families;
        ``y`` the labels of both halves in the conditional family): tricks' input transforms, the
        adversarial loss, D penalties and extra terms."""
        real_in, fake_in = self.d_inputs(real, fake, ctx.step)
        assert real_in is not None
        net = self.D
        assert net is not None
        D = net if y is None else (lambda x: net(x, y))
        # Separate passes for real and fake: with batch norm in D, mixing them would leak statistics.
        r, f = self.realness(D(real_in)), self.realness(D(fake_in))
        loss = self.adversarial_d_loss(r, f)
        terms = {"adv": loss, "real": r.mean(), "fake": f.mean()}
        if ctx.logging:  # read by the health monitor at logging steps only
            terms["acc"] = separation(r.detach(), f.detach())
        return self.finish_d_terms(real_in, fake_in, y, r, f, terms, loss, ctx)

    def finish_d_terms(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        y: torch.Tensor | None,
        r: torch.Tensor,
        f: torch.Tensor,
        terms: dict[str, torch.Tensor],
        loss: torch.Tensor,
        ctx: StepContext,
    ) -> dict[str, torch.Tensor]:
        """Add D's penalties (on what D judged) and extra terms; update stateful objectives."""
        assert self.D is not None
        loss = _add_penalties(self.d_penalties, self.D, real, fake, y, ctx.step, terms, loss)
        self.objective.update(r.detach(), f.detach())
        for _, t in self.tricks:  # ADA steers its augmentation probability by D's real outputs
            t.observe(r.detach(), f.detach())
        terms["loss"] = self._extra("D", self.D, terms, loss)
        return terms

    def g_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        fake = self.G(ctx.noise(ctx.batch_size, z_dim_of(self.G)))
        x = batch.x if batch is not None else None
        real_in, fake_in = self.d_inputs(x if self.g_reads_real() else None, fake, ctx.step)
        assert self.D is not None
        critic: Callable[[torch.Tensor], Any] = self.D
        for _, t in self.tricks:  # unrolled GAN: G plays against D after k look-ahead updates
            critic = t.g_critic(self, fake, x, ctx) or critic
        out = critic(fake_in)
        real_out = critic(real_in) if real_in is not None else None
        real_logits = (lambda: self.realness(real_out)) if real_out is not None else None
        loss = self.adversarial_g_loss(self.realness(out), real_logits)
        terms = {"adv": loss}
        for name, t in self.tricks:
            replaced = t.g_loss(out, real_out, loss)
            if replaced is not None:
                terms[f"trick/{name}"] = replaced
                loss = replaced
        return self.finish_g_terms(fake, None, terms, loss, ctx)

    def finish_g_terms(
        self,
        fake: torch.Tensor,
        y: torch.Tensor | None,
        terms: dict[str, torch.Tensor],
        loss: torch.Tensor,
        ctx: StepContext,
    ) -> dict[str, torch.Tensor]:
        """Add G's penalties and tricks' extra terms to ``loss``; ``terms["loss"]`` is the total."""
        loss = _add_penalties(self.g_penalties, self.G, None, fake, y, ctx.step, terms, loss)
        terms["loss"] = self._extra("G", self.G, terms, loss)
        return terms

    def phases(self, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer | None, n_critic: int) -> list[Phase]:
        assert self.D is not None and opt_d is not None
        self.opt_d = opt_d
        d_hooks = tuple(_bind(p.post_step, self.D) for _, p in self.d_penalties)
        g_hooks = tuple(_bind(p.post_step, self.G) for _, p in self.g_penalties)
        return [
            Phase("D", self.D, opt_d, self.d_terms, frozen=(self.G,), repeats=n_critic, post_step=d_hooks),
            Phase("G", self.G, opt_g, self.g_terms, frozen=(self.D,), post_step=g_hooks, batch=self.g_batch()),
        ]


def _add_penalties(
    penalties: list[tuple[str, Any]],
    net: nn.Module,
    real: torch.Tensor | None,
    fake: torch.Tensor,
    y: torch.Tensor | None,
    step: int,
    terms: dict[str, torch.Tensor],
    loss: torch.Tensor,
) -> torch.Tensor:
    """``loss`` plus the penalties due at ``step`` (lazy ones every ``pen.every`` steps, scaled by it),
    each also logged as ``pen/<name>``."""
    for name, pen in penalties:
        if pen.adds_loss and step % pen.every == 0:
            term = pen(net, real, fake, y) * pen.every
            terms[f"pen/{name}"] = term
            loss = loss + term
    return loss


def _bind(fn: Callable[[nn.Module], None], net: nn.Module) -> Callable[[], None]:
    return lambda: fn(net)
