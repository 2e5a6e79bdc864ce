"""Training-health diagnostics: the failure modes of the seeds, read off the logged scalars.

A ``Health`` monitor is fed every row that goes to ``metrics.jsonl`` (training scalars at logging
steps, evaluations, sample-diversity readings) and returns a warning the first time a pattern shows:

* **D overpowering** (Goodfellow 2016, Sec. 3.2.3; Arjovsky & Bottou 2017): over the last
  ``2 * patience`` logging steps D separated real from fake almost perfectly (mean ``d/acc`` >= 0.98)
  *and* its loss collapsed to under a tenth of its early value. A D that separates the batches while
  its loss stays moderate is a normal, learning GAN (the default DCGAN spends most of its run there);
  a WGAN critic's negative loss never counts. It clears once the mean accuracy drops under 0.9 or the
  loss recovers to 0.3 of its early value, so a flicker does not repeat the warning.
* **Vanishing G gradients**: G's gradient norm falls below 1/1000 of its early typical size.
* **Divergence**: a loss or gradient norm grows to 100x its early typical scale and stays there.
* **Mode collapse** (Goodfellow 2016, Sec. 5.1.1; Metz et al. 2016): the modes or classes covered
  fall to 70 % of the best seen, or the samples' diversity (their mean pairwise distance relative to
  real data's) falls below 0.2 or to half its best.

The rules use only the rows, so ``gankit report`` replays them on any finished run and gets the same
warnings as the live run printed. Each kind warns once, and again only after it has cleared.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

#: eval scores whose fall means lost modes, with the smallest best value that makes a fall meaningful
COVERAGE_SCORES = {"eval/modes": 3.0, "eval/classes_covered": 3.0, "eval/class_coverage": 0.3}


@dataclass
class HealthWarning:
    step: int
    kind: str
    message: str

    def as_row(self) -> dict[str, Any]:
        return {"health/warning": self.kind, "health/message": self.message}


@dataclass
class Health:
    patience: int = 5  # consecutive logging steps a training-scalar pattern must hold
    baseline_rows: int = 5  # the first rows that set the "early typical" scales
    _early: dict[str, list[float]] = field(default_factory=dict)
    _streak: dict[str, int] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)  # kinds warned about and not yet cleared
    _best: dict[str, float] = field(default_factory=dict)
    _window: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)

    def _scale(self, key: str) -> float | None:
        early = self._early.get(key, [])
        return statistics.median(abs(v) for v in early) if len(early) >= self.baseline_rows else None

    def _hold(self, kind: str, condition: bool) -> bool:
        """True once ``condition`` has held for ``patience`` rows in a row, and not already warned."""
        self._streak[kind] = self._streak.get(kind, 0) + 1 if condition else 0
        if not condition:
            self.active.discard(kind)
        return self._streak[kind] >= self.patience and kind not in self.active

    def _once(self, kind: str, condition: bool, cleared: bool | None = None) -> bool:
        """True when ``condition`` holds and the kind is not already warned about; a warned kind re-arms
        only when ``cleared`` (default: the condition no longer holds)."""
        if (not condition) if cleared is None else cleared:
            self.active.discard(kind)
        return condition and kind not in self.active

    def update(self, step: int, row: dict[str, Any]) -> list[HealthWarning]:
        found: list[HealthWarning] = []

        def warn(kind: str, message: str) -> None:
            self.active.add(kind)
            found.append(HealthWarning(step, kind, message))

        values = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "d/loss" in values or "g/loss" in values:
            self._training(values, warn)
        self._coverage(values, warn)
        return found

    def _training(self, v: dict[str, float], warn: Any) -> None:
        for key in ("d/loss", "g/loss", "d/grad_norm", "g/grad_norm"):
            if key in v and math.isfinite(v[key]) and len(self._early.setdefault(key, [])) < self.baseline_rows:
                self._early[key].append(v[key])
        d0 = self._scale("d/loss")
        if "d/acc" in v and "d/loss" in v and d0:
            window = self._window.setdefault("d", deque(maxlen=2 * self.patience))
            window.append((v["d/acc"], v["d/loss"]))
            if len(window) == window.maxlen:
                acc = sum(a for a, _ in window) / len(window)
                loss = sum(x for _, x in window) / len(window)
                sure = acc >= 0.98 and 0 <= loss < 0.1 * d0
                if self._once("d_overpowering", sure, cleared=acc < 0.9 or loss > 0.3 * d0):
                    warn("d_overpowering",
                         f"over the last {len(window)} logging steps D told real from fake {acc:.1%} right with its "
                         f"loss at {loss:.3g} (early {d0:.3g}): G learns little from a D this sure. Try one-sided "
                         "label smoothing, instance noise, an R1 penalty, a lower D learning rate or fewer D steps.")
        g0 = self._scale("g/grad_norm")
        if g0 and "g/grad_norm" in v and self._hold("vanishing_g_grad", v["g/grad_norm"] < 1e-3 * g0):
            warn("vanishing_g_grad",
                 f"G's gradient norm is {v['g/grad_norm']:.2e}, under 1/1000 of its early {g0:.2e}: G has "
                 "stopped learning. Use a non-saturating or hinge loss, or weaken D.")
        grown = []
        for key in ("d/loss", "g/loss", "d/grad_norm", "g/grad_norm"):
            scale = self._scale(key)
            if scale is not None and key in v and abs(v[key]) > 100 * max(scale, 1e-3 if "grad" in key else 1.0):
                grown.append(f"{key} = {v[key]:.3g} (early {scale:.3g})")
        if self._hold("divergence", bool(grown)):
            warn("divergence",
                 f"training is diverging: {'; '.join(grown)}. Lower the learning rates, add a gradient "
                 "penalty (wgan-gp, r1) or spectral norm.")

    def _coverage(self, v: dict[str, float], warn: Any) -> None:
        lost = []
        for key, floor in COVERAGE_SCORES.items():
            if key in v:
                best = self._best[key] = max(self._best.get(key, -math.inf), v[key])
                if best >= floor and v[key] <= 0.7 * best:
                    lost.append(f"{key[5:]} fell to {v[key]:.3g} from {best:.3g}")
        if "health/diversity" in v:
            d = v["health/diversity"]
            best = self._best["diversity"] = max(self._best.get("diversity", -math.inf), d)
            if d < 0.2 or d <= 0.5 * best:
                lost.append(f"sample diversity is {d:.2f} of real data's (best {best:.2f})")
        if self._once("mode_collapse", bool(lost)):
            warn("mode_collapse",
                 f"mode collapse: {'; '.join(lost)}. Try minibatch discrimination / minibatch stddev, "
                 "PacGAN packing, unrolled D steps, or a lower learning rate.")


def replay(rows: Iterable[dict[str, Any]], health: Health | None = None) -> list[HealthWarning]:
    """The warnings a live run gave (or would have given) for these logged rows."""
    health = health or Health()
    return [w for row in rows for w in health.update(int(row.get("step", 0)), row)]


def diversity(fake: torch.Tensor, real: torch.Tensor) -> float:
    """Mean pairwise L2 distance among generated samples over the same among real ones: about 1 for
    a generator as varied as the data, near 0 for a collapsed one."""
    def spread(x: torch.Tensor) -> float:
        flat = x.detach().float().flatten(1)
        n = len(flat)
        return float(torch.pdist(flat).sum() * 2 / (n * (n - 1))) if n > 1 else 0.0

    ref = spread(real)
    return spread(fake) / ref if ref > 0 else float("nan")
