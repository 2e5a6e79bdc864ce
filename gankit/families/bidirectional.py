"""Families with an encoder x -> z whose discriminator judges (x, z) pairs: BiGAN / ALI and VEEGAN.

The discriminator sees the pair as one vector [flatten(x), z] (``pair``), so any vector
discriminator (mlp, maxout) serves; G and the encoder are trained together in the G phase.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from gankit.families.base import FAMILIES, eval_batches
from gankit.families.step import Batch, BatchRule, Phase, StepContext
from gankit.families.unconditional import Unconditional
from gankit.latent import z_dim_of
from gankit.metrics.probe import linear_probe
from gankit.objectives import Minimax
from gankit.tricks import LOGISTIC


def pair(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(x, z) -> the joint vector [flatten(x), z] the discriminator judges."""
    return torch.cat([x.flatten(1), z], dim=1)


class _Paired(Unconditional):
    """Shared plumbing: the encoder, the joint D input shape, and which tricks make sense."""

    needs_encoder = True
    # Tricks that act on D's inputs or losses compose; those that replace G's critic or G's loss
    # assume G alone plays against D(x), which is not this game.
    unsupported_tricks = ("feature-matching", "unrolled")
    tricks_reason = "they assume G alone plays against D(x); use them with family=unconditional"

    distributed = False

    def __init__(
        self, *args: Any, encoder: nn.Module | None = None, heldout: Any = None, probe_train: Any = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        if encoder is None:
            raise ValueError(f"family {self.family_name!r} needs an encoder: add encoder={{name: mlp-encoder}}")
        self.E = encoder
        self.heldout, self.probe_train = heldout, probe_train

    @classmethod
    def extra_inputs(cls, recipe: Any, source: Any) -> dict[str, Any]:
        """With labelled ``data.holdout``, the held-out images and the labelled training set for a linear
        probe of E's features at every evaluation."""
        super().extra_inputs(recipe, source)
        heldout = getattr(source, "heldout", None)
        if heldout is not None and heldout.labels is not None:
            return {"heldout": heldout, "probe_train": source}
        return {}

    def encode(self, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        """E's features of uint8 images (eval mode), on the CPU."""
        return eval_batches(self.E, images, self.device, lambda z: z.float(), batch)

    def scores(self, G: nn.Module | None = None, max_train: int = 10_000) -> tuple[dict[str, float], dict[str, Any]]:
        """``probe_accuracy``: a linear probe (gankit.metrics.probe) fitted on E(x) of up to ``max_train``
        labelled training images, scored on the held-out images (``data.holdout``)."""
        if self.heldout is None or self.probe_train is None:
            return {}, {}
        train = self.probe_train
        n = min(len(train), max_train)
        acc = linear_probe(
            self.encode(train.images[:n]), train.labels[:n], self.encode(self.heldout.images), self.heldout.labels
        )
        return {"probe_accuracy": acc}, {
            "metric": "linear-probe",
            "scores": ["probe_accuracy"],
            "num_train": n,
            "num_test": len(self.heldout),
        }

    @classmethod
    def d_in_shape(cls, shape: tuple[int, ...], z_dim: int, in_shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
        return (math.prod(shape) + z_dim,)

    def d_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        assert batch is not None
        with torch.no_grad():
            x = batch.x
            ex = self.E(x)
            z = ctx.noise(x.shape[0], z_dim_of(self.G))
            gz = self.G(z)
        return self.d_loss_terms(pair(x, ex), pair(gz, z), ctx)

    def phases(self, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer | None, n_critic: int) -> list[Phase]:
        d_phase, g_phase = super().phases(opt_g, opt_d, n_critic)
        d_phase.frozen = (self.G, self.E)
        g_phase.module = nn.ModuleList([self.G, self.E])  # one optimiser steps G and E together
        return [d_phase, g_phase]


@FAMILIES.register("bigan")
class BiGAN(_Paired):
    """BiGAN (Donahue et al. 2017) = ALI (Dumoulin et al. 2017) with a deterministic encoder.

    D tells real pairs (x, E(x)) from generated pairs (G(z), z):
    V(D, E, G) = E_x[log D(x, E(x))] + E_z[log(1 - D(G(z), z))]  (Donahue et al., Eq. 3).
    G and E minimise the D loss with the pair labels swapped (both papers' non-saturating form; for
    ``minimax`` they maximise D's loss, for ``wasserstein`` the two coincide). At the optimum
    E = G^-1, so ``gankit encode`` maps data to meaningful latents.
    """

    family_name = "bigan"
    objectives = ("non-saturating", "minimax", "least-squares", "wasserstein", "hinge")

    def g_batch(self) -> BatchRule:
        return "fresh"  # G and E train on real pairs (x, E(x)) too

    def g_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        assert batch is not None
        x = batch.x
        ex = self.E(x)
        z = ctx.noise(x.shape[0], z_dim_of(self.G))
        gz = self.G(z)
        real_in, fake_in = self.d_inputs(pair(x, ex), pair(gz, z), ctx.step)
        assert real_in is not None and self.D is not None
        r, f = self.D(real_in).logits, self.D(fake_in).logits

        if isinstance(self.objective, Minimax):
            loss = -self.adversarial_d_loss(r, f)
        else:
            loss = self.adversarial_d_loss(f, r)  # swapped: G(z) pairs "real", E(x) pairs "fake"
        return self.finish_g_terms(gz, None, {"adv": loss}, loss, ctx)


@FAMILIES.register("veegan")
class VEEGAN(_Paired):
    """VEEGAN (Srivastava et al. 2017, Algorithm 1): a reconstructor F (the encoder) maps x back to z.

    D_w(z, x) is a logistic classifier of generated pairs (z, G(z)) against (F(x), x), so its logit
    estimates the log density ratio; G minimises that estimate plus the reconstruction loss in z
    space, E_z ||z - F(G(z))||^2 (the paper's d = squared l2), and F minimises the reconstruction loss
    alone. Here logits are "realness", so D's logit is the paper's D_w with the sign flipped: G
    minimises -mean(logit(z, G(z))) + ||z - F(G(z))||^2. Logistic objectives only (the ratio
    estimate needs the logistic loss).
    """

    family_name = "veegan"
    objectives = LOGISTIC

    def g_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        z = ctx.noise(ctx.batch_size, z_dim_of(self.G))
        gz = self.G(z)
        _, fake_in = self.d_inputs(None, pair(gz, z), ctx.step)
        assert self.D is not None
        adv = -self.D(fake_in).logits.mean()
        recon = (z - self.E(gz)).square().sum(1).mean()
        return self.finish_g_terms(gz, None, {"adv": adv, "recon": recon}, adv + recon, ctx)
