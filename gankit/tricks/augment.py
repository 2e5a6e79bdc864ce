"""Augmenting what D sees: DiffAugment (Zhao et al. 2020) and ADA with its p controller (Karras et al. 2020)."""

from __future__ import annotations

from typing import Any

import torch

from gankit.nn.ada import OPS as ADA_OPS
from gankit.nn.ada import ada_augment
from gankit.nn.augment import POLICIES, diff_augment
from gankit.tricks.base import TRICKS, Trick


class _ImageAugmentation(Trick):
    """What DiffAugment and ADA share: D sees ``augment(x)`` of the real and the fake images alike, in the D
    step and the G step, and only images can be augmented."""

    trick_name = ""

    def d_in_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise ValueError(
                f"{self.trick_name} transforms images (C, H, W); this discriminator judges inputs of shape "
                f"{tuple(shape)}: remove the trick, or use an image dataset and family"
            )
        return shape

    def d_inputs(
        self, real: torch.Tensor | None, fake: torch.Tensor, step: int
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        return (None if real is None else self.augment(real)), self.augment(fake)


@TRICKS.register("diffaugment")
class DiffAugment(_ImageAugmentation):
    """Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
    GAN Training"): D sees T(x) and T(G(z)), with a fresh random T per sample, in the D step and the G
    step alike, so D cannot memorise a small training set and G's gradient flows through T. Augmenting
    the real images only would teach G to produce augmented images; augmenting both does not, since
    T(p) = T(q) when p = q. ``policy``: any of color, translation, cutout (the paper's choice for
    limited data is all three); ``translation`` and ``cutout`` are fractions of the image side.
    Images only: the ops shift and mask pixels.
    """

    trick_name = "diffaugment"

    def __init__(
        self,
        policy: list[str] | tuple[str, ...] = ("color", "translation", "cutout"),
        translation: float = 0.125,
        cutout: float = 0.5,
    ) -> None:
        policy = (policy,) if isinstance(policy, str) else tuple(policy)
        bad = [p for p in policy if p not in POLICIES]
        if bad or not policy:
            raise ValueError(f"diffaugment policy {list(policy)} must be a non-empty list of {', '.join(POLICIES)}")
        if not (0.0 <= translation < 0.5 and 0.0 <= cutout <= 1.0):
            raise ValueError(
                f"diffaugment needs 0 <= translation < 0.5 and 0 <= cutout <= 1, got {translation}, {cutout}"
            )
        self.policy, self.translation, self.cutout = policy, translation, cutout

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy, self.translation, self.cutout)


@TRICKS.register("ada")
class ADA(_ImageAugmentation):
    """Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks
    with Limited Data", Sec. 3): every image D sees, real or fake, in the D step and the G step, goes
    through the non-leaking pipeline of ``gankit.nn.ada`` with probability ``p`` per op, and p is steered
    by the overfitting heuristic r_t = E[sign(D(x_real))] (Eq. 1, the real logits of the last
    ``interval`` D steps): every ``interval`` D steps, p += sign(r_t - target) * (batch * interval) /
    ``speed``, clamped to [0, ``max_p``], so p can go from 0 to 1 in ``speed`` real images (the paper's
    500k; CPU recipes use fewer). ``target`` 0.6 as in the paper; ``p`` is the starting value;
    ``adaptive=false`` keeps p fixed. p and r_t are logged (``tricks/ada/p``, ``tricks/ada/rt``),
    checkpointed and plotted in the report. Images only; logit objectives only (r_t reads the sign).
    """

    trick_name = "ada"

    def __init__(
        self,
        target: float = 0.6,
        p: float = 0.0,
        interval: int = 4,
        speed: int = 500_000,
        max_p: float = 1.0,
        adaptive: bool = True,
        ops: list[str] | tuple[str, ...] = ADA_OPS,
    ) -> None:
        bad = [o for o in ops if o not in ADA_OPS]
        if bad or not ops:
            raise ValueError(f"ada ops {list(ops)} must be a non-empty list of {', '.join(ADA_OPS)}")
        if not (0.0 <= p <= max_p <= 1.0) or not 0.0 < target < 1.0 or interval < 1 or speed < 1:
            raise ValueError(
                f"ada needs 0 <= p <= max_p <= 1, 0 < target < 1, interval >= 1 and speed >= 1; got "
                f"p={p}, max_p={max_p}, target={target}, interval={interval}, speed={speed}"
            )
        self.target, self.interval, self.speed, self.max_p, self.adaptive = target, interval, speed, max_p, adaptive
        self.ops = tuple(ops)
        self.p = torch.tensor(float(p))
        self.rt = torch.tensor(float("nan"))  # the last r_t (NaN until the first adjustment)
        self._signs = torch.zeros(())  # sum of E[sign(real logits)] over the D steps since the last adjustment
        self._seen = 0  # D steps since the last adjustment

    def check(self, objective: str) -> None:
        if objective in ("ebgan", "began"):
            raise ValueError(
                f"ada steers p by the sign of D's real logits; objective {objective!r} scores "
                "reconstruction energies: use diffaugment with it"
            )

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.p.device != x.device:
            self.p, self.rt, self._signs = self.p.to(x.device), self.rt.to(x.device), self._signs.to(x.device)
        return ada_augment(x, self.p, self.ops)

    def observe(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        if not self.adaptive:
            return
        if self._signs.device != real.device:
            self._signs = self._signs.to(real.device)
        self._signs = self._signs + torch.sign(real.float()).mean()
        self._seen += 1
        if self._seen == self.interval:  # on the device: no host sync
            self.rt = self._signs / self.interval
            step = torch.sign(self.rt - self.target) * (real.shape[0] * self.interval / self.speed)
            self.p = (self.p.to(real.device) + step).clamp(0.0, self.max_p)
            self._signs, self._seen = torch.zeros_like(self._signs), 0

    def log_values(self) -> dict[str, torch.Tensor | float]:
        return {"p": self.p, "rt": self.rt}

    def state_dict(self) -> dict[str, Any]:
        return {
            "p": self.p.detach().cpu(),
            "rt": self.rt.detach().cpu(),
            "signs": self._signs.detach().cpu(),
            "seen": self._seen,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.p, self.rt = state["p"].clone(), state["rt"].clone()
            self._signs, self._seen = state["signs"].clone(), int(state["seen"])
