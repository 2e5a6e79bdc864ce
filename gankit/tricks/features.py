"""Tricks on D's features and weights: feature matching and historical averaging (Salimans et al.
2016), EBGAN's pulling-away term (Zhao et al. 2017)."""

from __future__ import annotations

from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from gankit.models.base import DOut
from gankit.tricks.base import TRICKS, Trick


@TRICKS.register("feature-matching")
class FeatureMatching(Trick):
    """Feature matching (Salimans et al. 2016, Sec. 3.1): G minimises ||E_x f(x) - E_z f(G(z))||^2
    over the discriminator's features f (its penultimate layer, ``DOut.features``) instead of
    fooling D. ``adversarial_weight > 0`` keeps that much of the usual generator loss as well.
    """

    needs_real_in_g_step = True

    def __init__(self, adversarial_weight: float = 0.0) -> None:
        if adversarial_weight < 0:
            raise ValueError(f"feature-matching adversarial_weight must be >= 0, got {adversarial_weight}")
        self.adversarial_weight = adversarial_weight

    def g_loss(self, fake_out: DOut, real_out: DOut | None, adversarial: torch.Tensor) -> torch.Tensor:
        if fake_out.features is None or real_out is None or real_out.features is None:
            raise ValueError("feature-matching needs a discriminator that returns features (DOut.features)")
        # Real features are a fixed target: G's gradient flows through the generated side only.
        diff = real_out.features.detach().flatten(1).mean(0) - fake_out.features.flatten(1).mean(0)
        return diff.square().sum() + self.adversarial_weight * adversarial


@TRICKS.register("historical-averaging")
class HistoricalAveraging(Trick):
    """Historical averaging (Salimans et al. 2016, Sec. 3.3): each player adds
    weight * ||theta - (1/t) sum_{i<=t} theta_i||^2, the distance of its parameters from their own
    running average (kept in state, so resume is exact). ``networks``: G, D or both.
    """

    def __init__(self, weight: float = 1e-3, networks: Literal["G", "D", "both"] = "both") -> None:
        if weight < 0:
            raise ValueError(f"historical-averaging weight must be >= 0, got {weight}")
        self.weight, self.networks = weight, networks
        self.means: dict[str, list[torch.Tensor]] = {}
        self.counts: dict[str, int] = {}

    def extra_loss(self, net_name: str, net: nn.Module) -> torch.Tensor | None:
        if self.networks not in (net_name, "both"):
            return None
        params = [p for p in net.parameters()]
        if net_name not in self.means:
            self.means[net_name] = [p.detach().clone() for p in params]
            self.counts[net_name] = 1
        else:  # fold the current parameters into the running mean, then measure the distance to it
            self.counts[net_name] += 1
            n = self.counts[net_name]
            for m, p in zip(self.means[net_name], params):
                m.add_(p.detach() - m, alpha=1.0 / n)
        # A tensor: the networks have parameters (sum's type also allows the 0 of an empty sum).
        distance = cast(torch.Tensor, sum((p - m).square().sum() for p, m in zip(params, self.means[net_name])))
        return self.weight * distance

    def state_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "means": {k: [m.cpu() for m in v] for k, v in self.means.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts = dict(state.get("counts", {}))
        self.means = {k: [m.clone() for m in v] for k, v in state.get("means", {}).items()}


@TRICKS.register("pulling-away")
class PullingAway(Trick):
    """EBGAN's pulling-away term (Zhao et al. 2017, Sec. 2.4, Eq. 8): G adds
    weight * f_PT(S) = weight / (N (N - 1)) sum_{i != j} (S_i^T S_j / (|S_i| |S_j|))^2 over the codes
    S = Enc(G(z)) of a batch (``DOut.features``), pushing generated codes towards orthogonality so
    the batch does not collapse onto one mode. The paper uses weight 0.1.
    """

    def __init__(self, weight: float = 0.1) -> None:
        if weight < 0:
            raise ValueError(f"pulling-away weight must be >= 0, got {weight}")
        self.weight = weight

    @staticmethod
    def term(s: torch.Tensor) -> torch.Tensor:
        s = F.normalize(s.flatten(1), dim=1)
        n = s.shape[0]
        if n < 2:
            return s.new_zeros(())
        cos2 = (s @ s.T).square()
        return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))

    def g_loss(self, fake_out: DOut, real_out: DOut | None, adversarial: torch.Tensor) -> torch.Tensor:
        if fake_out.features is None:
            raise ValueError(
                "pulling-away needs the discriminator's code (DOut.features): use the "
                "autoencoder or began discriminator"
            )
        return adversarial + self.weight * self.term(fake_out.features)
