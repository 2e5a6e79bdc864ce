"""The plain GAN game: x ~ data, z ~ N(0, I); D tells x from G(z), G learns to fool D.

Goodfellow et al. 2014, Algorithm 1: k discriminator steps (``n_critic``) per generator step.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from gankit.data.base import to_uint8
from gankit.families.base import FAMILIES
from gankit.training.phases import Phase

Batch = tuple[torch.Tensor, torch.Tensor | None]


def separation(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's accuracy at the midpoint of its mean real and mean fake scores: 0.5 when it cannot tell
    them apart, 1 when it separates them completely. A threshold of the scores themselves, so it means
    the same for logits, critic values and (negated) energies; the health monitor reads it."""
    t = (real.mean() + fake.mean()) / 2
    return ((real > t).float().mean() + (fake < t).float().mean()) / 2


@FAMILIES.register("unconditional")
class Unconditional:
    """Unconditional GAN: samples from noise alone; labels, if the data has them, are ignored."""

    conditional = False
    needs_encoder = False
    family_name = "unconditional"

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        objective: Any,
        penalties: list[tuple[str, Any]],
        next_batch: Callable[[], Batch],
        device: torch.device,
        tricks: list[tuple[str, Any]] = (),  # type: ignore[assignment]
        encoder: nn.Module | None = None,
    ) -> None:
        if encoder is not None and not self.needs_encoder:
            raise ValueError(f"family {self.family_name!r} has no encoder; remove `encoder` from the recipe "
                             "(the bidirectional families bigan and veegan use one)")
        self.G, self.D, self.objective = G, D, objective
        self.tricks = list(tricks)
        self.step = 0  # the generator step, set by the trainer (annealed tricks read it)
        self.d_penalties = [(n, p) for n, p in penalties if p.target == "D"]
        self.g_penalties = [(n, p) for n, p in penalties if p.target == "G"]
        self.next_batch = next_batch
        self.device = device
        self.batch_size = 0  # set from the first real batch; G batches match it
        self.first_batch: torch.Tensor | None = None  # a few real images, for grids without held-out data
        self.opt_d: torch.optim.Optimizer | None = None
        self.sharding: Any = None  # under DDP: latents and labels sliced from one global draw (set by the trainer)
        self.logging = True  # False on steps whose terms are not logged: diagnostics-only terms are skipped

    @classmethod
    def d_in_shape(cls, shape: tuple[int, ...], z_dim: int, in_shape: tuple[int, ...] | None = None
                   ) -> tuple[int, ...]:
        """What D judges: the data itself here; (x, z) pairs in the bidirectional families; (input,
        output) pairs in pix2pix (``in_shape``: what G reads, for the image-to-image families)."""
        return shape

    # What a family refuses, checked before anything is built (``check``): the objectives it works
    # with (empty: any) and the tricks it cannot compose with, each with the reason.
    objectives: tuple[str, ...] = ()
    objectives_reason = ""
    unsupported_tricks: tuple[str, ...] = ()
    tricks_reason = ""

    @classmethod
    def check(cls, objective: str, tricks: list[str]) -> None:
        """Refuse objectives or tricks that make no sense in this family, with the reason."""
        if cls.objectives and objective not in cls.objectives:
            why = f": {cls.objectives_reason}" if cls.objectives_reason else ""
            raise ValueError(f"family {cls.family_name!r} works with objectives {', '.join(cls.objectives)}; "
                             f"got {objective!r}{why}")
        bad = [t for t in tricks if t in cls.unsupported_tricks]
        if bad:
            raise ValueError(f"family {cls.family_name!r} does not compose with trick(s) {', '.join(bad)}: "
                             f"{cls.tricks_reason}")

    @staticmethod
    def realness(out: Any) -> torch.Tensor:
        """The logit the objective judges in D's output (the semi-supervised family derives it)."""
        return out.logits

    def noise(self, n: int) -> torch.Tensor:
        if self.sharding is not None:
            return self.sharding.randn(n, self.G.z_dim, self.device)
        return torch.randn(n, self.G.z_dim, device=self.device)

    def _real(self) -> torch.Tensor:
        x, _ = self.next_batch()
        self.batch_size = x.shape[0]
        if self.first_batch is None:
            self.first_batch = x[:16].clone()
        return x.to(self.device, non_blocking=True)

    def grid_images(self) -> torch.Tensor:
        """uint8 images of the first real batch, for sample grids when no images are held out. Drawn
        from the stream only if training has not begun (a run resumed at its last step)."""
        return to_uint8(self.first_batch if self.first_batch is not None else self.next_batch()[0][:16])

    def _d_inputs(self, real: torch.Tensor | None, fake: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        for _, t in self.tricks:
            real, fake = t.d_inputs(real, fake, self.step)
        return real, fake

    def _extra(self, net_name: str, net: nn.Module, terms: dict[str, torch.Tensor], loss: torch.Tensor) -> torch.Tensor:
        for name, t in self.tricks:
            term = t.extra_loss(net_name, net)
            if term is not None:
                terms[f"trick/{name}"] = term
                loss = loss + term
        return loss

    def adversarial_d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The objective's D loss, or the one a trick puts in its place (label smoothing)."""
        for _, t in self.tricks:
            loss = t.d_loss(self.objective, real_logits, fake_logits)
            if loss is not None:
                return loss
        return self.objective.d_loss(real_logits, fake_logits)

    def d_terms(self) -> dict[str, torch.Tensor]:
        real = self._real()
        with torch.no_grad():
            fake = self.G(self.noise(real.shape[0]))
        return self.d_loss_terms(real, fake)

    def d_loss_terms(self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None = None
                     ) -> dict[str, torch.Tensor]:
        """D's loss on what it judges (samples here, (x, z) pairs in the bidirectional families;
        ``y`` the labels of both halves in the conditional family): tricks' input transforms, the
        adversarial loss, D penalties and extra terms."""
        real, fake = self._d_inputs(real, fake)
        D = self.D if y is None else (lambda x: self.D(x, y))
        # Separate passes for real and fake: with batch norm in D, mixing them would leak statistics.
        r, f = self.realness(D(real)), self.realness(D(fake))
        loss = self.adversarial_d_loss(r, f)
        terms = {"adv": loss, "real": r.mean(), "fake": f.mean()}
        if self.logging:  # read by the health monitor at logging steps only
            terms["acc"] = separation(r.detach(), f.detach())
        return self.finish_d_terms(real, fake, y, r, f, terms, loss)

    def finish_d_terms(self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None,
                       r: torch.Tensor, f: torch.Tensor, terms: dict[str, torch.Tensor],
                       loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """Add D's penalties (on what D judged) and extra terms; update stateful objectives."""
        for name, pen in self.d_penalties:
            if pen.adds_loss and self.step % pen.every == 0:
                term = pen(self.D, real, fake, y) * pen.every
                terms[f"pen/{name}"] = term
                loss = loss + term
        self.objective.update(r.detach(), f.detach())
        terms["loss"] = self._extra("D", self.D, terms, loss)
        return terms

    def g_terms(self) -> dict[str, torch.Tensor]:
        n = self.batch_size or 64
        fake = self.G(self.noise(n))
        real = self._real() if any(t.needs_real_in_g_step for _, t in self.tricks) else None
        real_in, fake_in = self._d_inputs(real, fake)
        critic: Callable[[torch.Tensor], Any] = self.D
        for _, t in self.tricks:  # unrolled GAN: G plays against D after k look-ahead updates
            critic = t.g_critic(self, fake) or critic
        out = critic(fake_in)
        loss = self.objective.g_loss(self.realness(out))
        terms = {"adv": loss}
        for name, t in self.tricks:
            replaced = t.g_loss(out, critic(real_in) if real_in is not None else None, loss)
            if replaced is not None:
                terms[f"trick/{name}"] = replaced
                loss = replaced
        return self.finish_g_terms(fake, None, terms, loss)

    def finish_g_terms(self, fake: torch.Tensor, y: torch.Tensor | None, terms: dict[str, torch.Tensor],
                       loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """Add G's penalties and tricks' extra terms to ``loss``; ``terms["loss"]`` is the total."""
        for name, pen in self.g_penalties:
            if pen.adds_loss and self.step % pen.every == 0:
                term = pen(self.G, None, fake, y) * pen.every
                terms[f"pen/{name}"] = term
                loss = loss + term
        terms["loss"] = self._extra("G", self.G, terms, loss)
        return terms

    def phases(self, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, n_critic: int) -> list[Phase]:
        self.opt_d = opt_d  # the unrolled GAN continues D's optimiser state in its look-ahead
        d_hooks = tuple(_bind(p.post_step, self.D) for _, p in self.d_penalties)
        g_hooks = tuple(_bind(p.post_step, self.G) for _, p in self.g_penalties)
        return [
            Phase("D", self.D, opt_d, self.d_terms, frozen=(self.G,), repeats=n_critic, post_step=d_hooks),
            Phase("G", self.G, opt_g, self.g_terms, frozen=(self.D,), post_step=g_hooks),
        ]


def _bind(fn: Callable[[nn.Module], None], net: nn.Module) -> Callable[[], None]:
    return lambda: fn(net)
