"""Class-conditional GANs: G(z, y) and D(x, y); how y enters is the architecture's business.

Mirza & Osindero 2014 (cGAN): min_G max_D E_x[log D(x|y)] + E_z[log(1 - D(G(z|y)|y))]. With the
``mlp`` and ``dcgan`` models, y is concatenated as a one-hot vector (cGAN); with ``resnet`` it enters
G through conditional batch norm and D through the projection term (Miyato & Koyama 2018). Any
objective composes: it only sees D's logits.
"""

from __future__ import annotations

from typing import Any

import torch

from gankit.families.base import FAMILIES
from gankit.families.unconditional import Unconditional


@FAMILIES.register("conditional")
class Conditional(Unconditional):
    """Class-conditional GAN (cGAN / projection): real (x, y) from labelled data; fakes G(z, y) with the
    real batch's labels in the D step (so gradient penalties interpolate same-class pairs) and with
    uniformly drawn labels in the G step."""

    conditional = True
    family_name = "conditional"
    d_options: dict[str, Any] = {}  # options the family imposes on the discriminator (AC-GAN's class head)
    # PacGAN would pack samples of different classes; the unrolled look-ahead calls D without labels.
    unsupported_tricks = ("pacgan", "unrolled", "feature-matching")
    tricks_reason = ("pacgan would pack samples of different classes; unrolling and feature matching call D "
                     "without labels")

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.num_classes = int(getattr(self.G, "num_classes", 0))
        if self.num_classes < 1:
            raise ValueError("family 'conditional' needs a labelled dataset (num_classes > 0)")

    def _labelled(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.next_batch()
        if y is None:
            raise ValueError("family 'conditional' needs labels, but the data source gave none")
        self.batch_size = x.shape[0]
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def labels(self, n: int) -> torch.Tensor:
        if self.sharding is not None:
            return self.sharding.randint(self.num_classes, n, self.device)
        return torch.randint(self.num_classes, (n,), device=self.device)

    def d_terms(self) -> dict[str, torch.Tensor]:
        x, y = self._labelled()
        with torch.no_grad():
            fake = self.G(self.noise(x.shape[0]), y)
        return self.d_loss_terms(x, fake, y)

    def g_forward(self) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """(labels, G(z, y), D's output on it) for a G step with uniformly drawn labels."""
        n = self.batch_size or 64
        y = self.labels(n)
        fake = self.G(self.noise(n), y)
        _, fake_in = self._d_inputs(None, fake)
        return y, fake, self.D(fake_in, y)

    def g_terms(self) -> dict[str, torch.Tensor]:
        y, fake, out = self.g_forward()
        loss = self.objective.g_loss(out.logits)
        return self.finish_g_terms(fake, y, {"adv": loss}, loss)
