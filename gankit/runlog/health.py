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
* **Mode collapse** (Goodfellow 2016, Sec. 5.1.1; Metz et al. 2016): an evaluation covers at most half
  of the classes or mixture modes (``coverage``), the modes or classes covered fall to 70 % of the best
  seen, or the samples' diversity (their mean pairwise distance relative to real data's) falls below
  0.2 or to half its best (a best above 1, a generator spread wider than the data, counts as 1). No
  verdict before generator step ``warmup`` (500): an untrained G is neither diverse nor on the modes,
  which is a start, not a collapse. Each source (class coverage, mode coverage, diversity) keeps its
  last verdict until its next reading, so a row without it neither raises nor clears the warning.

The rules use only the rows, so ``gankit report`` replays them on any finished run and gets the same
warnings as the live run printed. Each kind warns once, and again only after it has cleared.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch

#: eval scores whose fall means lost modes, with the smallest best value that makes a fall meaningful
COVERAGE_SCORES = {"eval/modes": 3.0, "eval/classes_covered": 3.0, "eval/class_coverage": 0.3}

#: an evaluation covering at most this fraction of the classes (or of a toy mixture's modes) is collapsed
COLLAPSED_FRACTION = 0.5

#: No mode-collapse verdict before this generator step. Diversity and coverage read off an untrained or barely trained G
#: say "collapsed" for every run: measured here, dcgan-digits' samples (its recipe before 2026-12-05, lr 2e-4) have a
#: diversity of 0.08 at step 10 (0.5 by step 80, 0.9 by 130), and gan-ring covers 1 of 8 modes at step 50, 4 at 300 and
#: 7 at 500 while learning normally. 500 is the first sample grid of most recipes (sample_every 500) and a sixth of the
#: shortest schedules (2000-3000 steps), so recipes keep every verdict from their first grid on. It is a number of
#: steps, not "the second reading": a run evaluated only at its end has a single evaluation, and that one must be
#: judged. Health sees only the logged rows (so a replay agrees with the live run) and the rows do not carry the
#: schedule's length, hence a fixed step, not a fraction.
WARMUP_STEPS = 500


@dataclass(frozen=True)
class Coverage:
    """How much of the data's classes or modes one evaluation covered."""

    what: str  # "classes" or "modes"
    covered: float
    fraction: float | None  # covered / total; None when the total is unknown
    total: int | None = None

    @property
    def low(self) -> bool:
        return self.fraction is not None and self.fraction <= COLLAPSED_FRACTION

    def __str__(self) -> str:
        if self.total:
            return f"{self.covered:g} of {self.total} {self.what}"
        return (
            f"{self.fraction:.0%} of the {self.what}" if self.fraction is not None else f"{self.covered:g} {self.what}"
        )


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


@lru_cache(maxsize=16)
def _mixture_size(dataset: str, options: str) -> int | None:
    """Number of components of the toy mixture an evaluation was scored against, rebuilt from the
    ``reference`` recorded in its protocol (ring/grid are a few centres: cheap); None if it can't be."""
    try:
        from gankit.data import DATASETS

        centers = getattr(DATASETS.build(dataset, **json.loads(options)), "centers", None)
        return int(centers.shape[0]) if centers is not None else None
    except Exception:  # noqa: BLE001 - an unknown or unbuildable dataset: the total stays unknown
        return None


def coverage(row: dict[str, Any]) -> list[Coverage]:
    """The class and mode coverage an evaluation row reports, with totals where the row tells them.

    Classes: ``eval/class_coverage`` is already the covered fraction (class-coverage metric); the total
    is the classifier's ``num_classes`` in ``eval/protocol``, or covered / fraction. Toy modes:
    ``eval/modes`` counts the modes hit and the total is not logged, so it is the size of the mixture
    named by the toy-mixture protocol's ``reference`` (dataset and options), rebuilt from the registry.
    """
    found: list[Coverage] = []
    logged = row.get("eval/protocol")
    protocols = logged if isinstance(logged, dict) else {}
    entries = [p for p in protocols.values() if isinstance(p, dict)]
    frac, covered = _number(row.get("eval/class_coverage")), _number(row.get("eval/classes_covered"))
    if frac is not None:
        total = next(
            (
                int(p["num_classes"])
                for p in entries
                if p.get("metric") == "class-coverage" and _number(p.get("num_classes"))
            ),
            None,
        )
        if total is None and covered and frac > 0:
            total = round(covered / frac)
        found.append(Coverage("classes", covered if covered is not None else frac * (total or 0), frac, total))
    modes = _number(row.get("eval/modes"))
    if modes is not None:
        total = None
        for p in entries:
            ref = p.get("reference")
            if p.get("metric") == "toy-mixture" and isinstance(ref, dict) and isinstance(ref.get("dataset"), str):
                opts = ref.get("options") if isinstance(ref.get("options"), dict) else {}
                total = _mixture_size(ref["dataset"], json.dumps(opts, sort_keys=True))
        found.append(Coverage("modes", modes, modes / total if total else None, total))
    return found


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
    warmup: int = WARMUP_STEPS  # no mode-collapse verdict before this generator step
    _early: dict[str, list[float]] = field(default_factory=dict)
    _streak: dict[str, int] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)  # kinds warned about and not yet cleared
    _best: dict[str, float] = field(default_factory=dict)
    _window: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)
    _lost: dict[str, str | None] = field(default_factory=dict)  # last mode-collapse verdict per source

    def collapse_reasons(self) -> list[str]:
        """Why the latest readings (past the warm-up) count as mode collapse; empty when they don't."""
        return [why for why in self._lost.values() if why]

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
        self._coverage(step, values, row, warn)
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
                    warn(
                        "d_overpowering",
                        f"over the last {len(window)} logging steps D told real from fake {acc:.1%} right with its "
                        f"loss at {loss:.3g} (early {d0:.3g}): G learns little from a D this sure. Try one-sided "
                        "label smoothing, instance noise, an R1 penalty, a lower D learning rate or fewer D steps.",
                    )
        g0 = self._scale("g/grad_norm")
        if g0 and "g/grad_norm" in v and self._hold("vanishing_g_grad", v["g/grad_norm"] < 1e-3 * g0):
            warn(
                "vanishing_g_grad",
                f"G's gradient norm is {v['g/grad_norm']:.2e}, under 1/1000 of its early {g0:.2e}: G has "
                "stopped learning. Use a non-saturating or hinge loss, or weaken D.",
            )
        grown = []
        for key in ("d/loss", "g/loss", "d/grad_norm", "g/grad_norm"):
            scale = self._scale(key)
            if scale is not None and key in v and abs(v[key]) > 100 * max(scale, 1e-3 if "grad" in key else 1.0):
                grown.append(f"{key} = {v[key]:.3g} (early {scale:.3g})")
        if self._hold("divergence", bool(grown)):
            warn(
                "divergence",
                f"training is diverging: {'; '.join(grown)}. Lower the learning rates, add a gradient "
                "penalty (wgan-gp, r1) or spectral norm.",
            )

    def _coverage(self, step: int, v: dict[str, float], row: dict[str, Any], warn: Any) -> None:
        readings: dict[str, str | None] = {}  # source -> why it says collapsed, or None
        for key, floor in COVERAGE_SCORES.items():
            if key in v:
                best = self._best[key] = max(self._best.get(key, -math.inf), v[key])
                src = "modes" if key == "eval/modes" else "classes"
                fell = (
                    f"{key[5:]} fell to {v[key]:.3g} from {best:.3g}"
                    if best >= floor and v[key] <= 0.7 * best
                    else None
                )
                readings[src] = "; ".join(x for x in (readings.get(src), fell) if x) or None
        for c in coverage(row):
            if c.low:
                readings[c.what] = f"the evaluation covers {c} (at most {COLLAPSED_FRACTION:.0%})"
        if "health/diversity" in v:
            d = v["health/diversity"]
            # Spread wider than the data (an untrained G often is) is no more diverse than the data itself.
            best = self._best["diversity"] = max(self._best.get("diversity", -math.inf), min(d, 1.0))
            readings["diversity"] = (
                f"sample diversity is {d:.2f} of real data's (best {best:.2f})" if d < 0.2 or d <= 0.5 * best else None
            )
        # A row without a reading keeps the verdicts as they were; best values are tracked from the start,
        # but the warm-up keeps an untrained G's readings out of the verdict.
        if not readings or step < self.warmup:
            return
        self._lost.update(readings)
        lost = self.collapse_reasons()
        if self._once("mode_collapse", bool(lost)):
            warn(
                "mode_collapse",
                f"mode collapse: {'; '.join(lost)}. Try minibatch discrimination / minibatch stddev, "
                "PacGAN packing, unrolled D steps, or a lower learning rate.",
            )


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
