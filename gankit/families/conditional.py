"""Class-conditional GANs: G(z, y) and D(x, y); how y enters is the architecture's business.

Mirza & Osindero 2014 (cGAN): min_G max_D E_x[log D(x|y)] + E_z[log(1 - D(G(z|y)|y))]. With the
``mlp`` and ``dcgan`` models, y is concatenated as a one-hot vector (cGAN); with ``resnet`` it enters
G through conditional batch norm and D through the projection term (Miyato & Koyama 2018). Any
objective composes: it only sees D's logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from gankit.families.base import FAMILIES
from gankit.families.step import Batch, StepContext
from gankit.families.unconditional import Unconditional
from gankit.latent import z_dim_of


@FAMILIES.register("conditional")
class Conditional(Unconditional):
    """Class-conditional GAN (cGAN / projection): real (x, y) from labelled data; fakes G(z, y) with the
    real batch's labels in the D step (so gradient penalties interpolate same-class pairs) and with
    uniformly drawn labels in the G step."""

    conditional = True
    family_name = "conditional"
    # PacGAN would pack samples of different classes; the unrolled look-ahead calls D without labels.
    unsupported_tricks = ("pacgan", "unrolled", "feature-matching")
    tricks_reason = (
        "pacgan would pack samples of different classes; unrolling and feature matching call D without labels"
    )

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.num_classes = int(getattr(self.G, "num_classes", 0))
        if self.num_classes < 1:
            raise ValueError("family 'conditional' needs a labelled dataset (num_classes > 0)")

    def d_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        assert batch is not None
        x, y = batch.x, batch.labels(self.family_name)
        with torch.no_grad():
            fake = self.G(ctx.noise(x.shape[0], z_dim_of(self.G)), y)
        return self.d_loss_terms(x, fake, ctx, y)

    def g_forward(
        self, batch: Batch | None, ctx: StepContext
    ) -> tuple[torch.Tensor, torch.Tensor, Any, Callable[[], Any] | None]:
        """(labels, G(z, y), D's output on it, D's output on the real batch when the objective reads it)
        for a G step with uniformly drawn labels."""
        n = ctx.batch_size
        y = ctx.labels(n, self.num_classes)
        fake = self.G(ctx.noise(n, z_dim_of(self.G)), y)
        real = batch.x if batch is not None and self.g_reads_real() else None
        real_in, fake_in = self.d_inputs(real, fake, ctx.step)
        assert self.D is not None
        real_out = None
        if real_in is not None and batch is not None:
            y_real = batch.labels(self.family_name)
            real_out = lambda: self.D(real_in, y_real)  # noqa: E731 - evaluated only when read
        return y, fake, self.D(fake_in, y), real_out

    def g_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        y, fake, out, real_out = self.g_forward(batch, ctx)
        loss = self.adversarial_g_loss(out.logits, _logits(real_out))
        return self.finish_g_terms(fake, y, {"adv": loss}, loss, ctx)


def _logits(out: Callable[[], Any] | None) -> Callable[[], torch.Tensor] | None:
    """D's real logits, computed when called (``Unconditional.adversarial_g_loss`` calls it only for
    objectives that read them)."""
    return (lambda: out().logits) if out is not None else None
