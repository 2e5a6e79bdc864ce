"""Keep the checkpoint with the best evaluation score in RUN_DIR/best/ (beside the rolling ones)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gankit.config import ConfigError
from gankit.files import atomic_write
from gankit.metrics.image import HIGHER_IS_BETTER
from gankit.runlog import checkpoint as ck

BEST_DIR = "best"


class BestTracker:
    """Tracks ``eval.best`` (a score name such as ``fid``) and says when a new value beats the best."""

    key: str | None
    value: float | None  # the best so far, and the step that reached it
    step: int | None

    def __init__(self, key: str | None, mode: str, metrics: list[tuple[str, Any]]) -> None:

        self.key, self.value, self.step = key, None, None
        if key is None:
            self.mode = "min"
            return
        known = sorted({s for _, m in metrics for s in getattr(m, "scores", ())})
        if key not in known:
            listed = ", ".join(known) or "(none: add eval.metrics first)"
            raise ConfigError(f"eval.best={key!r} is not a score of this recipe's eval.metrics; scores: {listed}")
        self.mode = mode if mode != "auto" else ("max" if key in HIGHER_IS_BETTER else "min")

    def improved(self, results: dict[str, float]) -> bool:
        if self.key is None or self.key not in results or not math.isfinite(results[self.key]):
            return False
        v = results[self.key]
        return self.value is None or (v < self.value if self.mode == "min" else v > self.value)

    def record(self, results: dict[str, float], step: int) -> None:
        """Take ``results`` as the new best (before the checkpoint's state is taken, so it carries it)."""
        assert self.key is not None  # recorded only after ``improved``, which needs a key
        self.value, self.step = results[self.key], step

    def write(
        self,
        run_dir: Path,
        step: int,
        tensors: dict[str, Any],
        state: dict[str, Any],
        meta: dict[str, str],
        results: dict[str, float],
        protocol: dict[str, Any],
    ) -> None:
        """The best checkpoint in RUN_DIR/best/ and ``best.json`` (score, step, every result, protocol)."""
        root = run_dir / BEST_DIR
        ck.save_checkpoint(root, step, tensors, state, meta, keep=1)
        info = {
            "step": step,
            "score": self.key,
            "mode": self.mode,
            "value": self.value,
            "eval": results,
            "protocol": protocol,
        }
        atomic_write(root / "best.json", json.dumps(info, indent=2))

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "step": self.step} if self.value is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value, self.step = state.get("value"), state.get("step")
