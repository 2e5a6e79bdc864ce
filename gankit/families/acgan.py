"""AC-GAN (Odena et al. 2017): D also predicts the class, of real and generated samples alike."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from gankit.families.base import FAMILIES
from gankit.families.conditional import Conditional, _logits
from gankit.families.step import Batch, StepContext
from gankit.families.unconditional import separation
from gankit.latent import z_dim_of


@FAMILIES.register("acgan")
class ACGAN(Conditional):
    """Auxiliary-classifier GAN (Odena et al. 2017, Sec. 3, Eqs. 2-3).

    L_S = E[log P(S = real | x_real)] + E[log P(S = fake | x_fake)],
    L_C = E[log P(C = c | x_real)] + E[log P(C = c | x_fake)];
    D maximises L_S + L_C and G maximises L_C - L_S. Here the source term is the recipe's objective
    (so -L_S becomes the non-saturating G loss by default) and L_C the cross-entropy of
    ``DOut.class_logits``; ``class_weight`` (the recipe's ``objective``-independent weight, default 1)
    scales L_C. G is conditional as in the cGAN family; D has no projection, only the class head
    (the ``resnet`` or ``dcgan`` discriminator with ``conditioning=auxiliary``, which this family sets).
    """

    family_name = "acgan"
    d_options = {"conditioning": "auxiliary"}
    class_weight = 1.0

    def _class_loss(self, out: Any, y: torch.Tensor) -> torch.Tensor:
        if out.class_logits is None:
            raise ValueError(
                "family 'acgan' needs a discriminator with a class head (DOut.class_logits): "
                "use discriminator.name=resnet or dcgan"
            )
        return F.cross_entropy(out.class_logits, y)

    def d_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        assert batch is not None
        x, y = batch.x, batch.labels(self.family_name)
        with torch.no_grad():
            fake = self.G(ctx.noise(x.shape[0], z_dim_of(self.G)), y)
        real_in, fake_in = self.d_inputs(x, fake, ctx.step)
        assert real_in is not None and self.D is not None
        r_out, f_out = self.D(real_in, y), self.D(fake_in, y)
        adv = self.adversarial_d_loss(r_out.logits, f_out.logits)
        cls = self._class_loss(r_out, y) + self._class_loss(f_out, y)
        loss = adv + self.class_weight * cls
        terms = {
            "adv": adv,
            "class": cls,
            "real": r_out.logits.mean(),
            "fake": f_out.logits.mean(),
            "class_acc": (r_out.class_logits.argmax(1) == y).float().mean(),
        }
        if ctx.logging:
            terms["acc"] = separation(r_out.logits.detach(), f_out.logits.detach())
        return self.finish_d_terms(real_in, fake_in, y, r_out.logits, f_out.logits, terms, loss, ctx)

    def g_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        y, fake, out, real_out = self.g_forward(batch, ctx)
        adv = self.adversarial_g_loss(out.logits, _logits(real_out))
        cls = self._class_loss(out, y)
        return self.finish_g_terms(fake, y, {"adv": adv, "class": cls}, adv + self.class_weight * cls, ctx)
