"""The trick base class (every hook the identity or absent), the registry and the logistic objectives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gankit.models.base import DOut
from gankit.registry import Registry

TRICKS = Registry("trick")

LOGISTIC = ("minimax", "non-saturating", "maximum-likelihood")


class Trick:
    """Base: every hook is the identity / absent."""

    def check(self, objective: str) -> None:
        pass

    def d_in_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def d_rows(self, rows: int) -> int:
        """How many rows D sees for ``rows`` samples (PacGAN: one per pack)."""
        return rows

    def d_inputs(
        self, real: torch.Tensor | None, fake: torch.Tensor, step: int
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        return real, fake

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def d_loss(self, objective: Any, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        return None

    def g_loss(self, fake_out: DOut, real_out: DOut | None, adversarial: torch.Tensor) -> torch.Tensor | None:
        return None

    def g_critic(
        self, family: Any, fake: torch.Tensor, real: torch.Tensor | None, ctx: Any
    ) -> Callable[[torch.Tensor], DOut] | None:
        return None

    def observe(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        """See D's (detached) outputs on the real and fake batch after every D loss (ADA's controller)."""

    def log_values(self) -> dict[str, torch.Tensor | float]:
        """Scalars to log at logging steps, as ``tricks/<name>/<key>`` (ADA's p and r_t)."""
        return {}

    needs_real_in_g_step = False  # g_loss reads D's outputs on real data (feature matching)
    needs_batch_in_g_step = False  # the G step needs a real batch for itself (the unrolled look-ahead)

    def extra_loss(self, net_name: str, net: nn.Module) -> torch.Tensor | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
