"""Label tricks: one- or two-sided label smoothing and instance noise (Salimans et al. 2016;
Sonderby et al. 2017)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from gankit.tricks.base import LOGISTIC, TRICKS, Trick


def smoothed_terms(
    real: torch.Tensor, fake: torch.Tensor, alpha: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(real term, fake term) of the logistic D loss with targets alpha (real) and beta (fake):
    -E_p[alpha log D + (1 - alpha) log(1 - D)] and -E_q[beta log D + (1 - beta) log(1 - D)]."""
    return (
        F.binary_cross_entropy_with_logits(real, torch.full_like(real, alpha)),
        F.binary_cross_entropy_with_logits(fake, torch.full_like(fake, beta)),
    )


@TRICKS.register("label-smoothing")
class LabelSmoothing(Trick):
    """Label smoothing of D's targets (Salimans et al. 2016, Sec. 3.4): real -> alpha, fake -> beta.

    One-sided (beta = 0, the paper's advice) moves the optimal discriminator to
    D*(x) = alpha p(x) / (p(x) + q(x)); two-sided to (alpha p + beta q) / (p + q), which the paper
    warns rewards G for staying where q > 0 and p = 0. Logistic objectives only.
    """

    def __init__(self, alpha: float = 0.9, beta: float = 0.0) -> None:
        if not (0.0 < alpha <= 1.0 and 0.0 <= beta < alpha):
            raise ValueError(f"label-smoothing needs 0 <= beta < alpha <= 1, got alpha={alpha}, beta={beta}")
        self.alpha, self.beta = alpha, beta

    def check(self, objective: str) -> None:
        if objective not in LOGISTIC:
            raise ValueError(
                f"label-smoothing smooths the targets of the logistic D loss ({', '.join(LOGISTIC)}); "
                f"objective {objective!r} has no such targets (for least-squares, set objective.b instead)"
            )

    def d_loss(self, objective: Any, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        r, f = smoothed_terms(real.flatten(), fake.flatten(), self.alpha, self.beta)
        return r + f


@TRICKS.register("instance-noise")
class InstanceNoise(Trick):
    """Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): D sees x + sigma_t * eps,
    eps ~ N(0, I), for real and generated samples alike, so the two distributions overlap.

    sigma_t decays linearly from ``sigma`` to 0 over ``anneal_steps`` generator steps (0: constant).
    The noise comes from the global RNG, which checkpoints keep: resuming stays exact.
    """

    def __init__(self, sigma: float = 0.1, anneal_steps: int = 0) -> None:
        if sigma < 0 or anneal_steps < 0:
            raise ValueError(f"instance-noise needs sigma >= 0 and anneal_steps >= 0, got {sigma}, {anneal_steps}")
        self.sigma, self.anneal_steps = sigma, anneal_steps

    def sigma_at(self, step: int) -> float:
        if not self.anneal_steps:
            return self.sigma
        return self.sigma * max(0.0, 1.0 - step / self.anneal_steps)

    def d_inputs(
        self, real: torch.Tensor | None, fake: torch.Tensor, step: int
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        s = self.sigma_at(step)
        if s == 0.0:
            return real, fake
        noisy = None if real is None else real + s * torch.randn_like(real)
        return noisy, fake + s * torch.randn_like(fake)
