"""Keep the checkpoint with the best evaluation score in RUN_DIR/best/ (beside the rolling ones)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from gankit.config import ConfigError
from gankit.training import checkpoint as ck

BEST_DIR = "best"


class BestTracker:
    """Tracks ``eval.best`` (a score name such as ``fid``) and says when a new value beats the best."""

    def __init__(self, key: str | None, mode: str, metrics: list[tuple[str, Any]]) -> None:
        from gankit.metrics.image import HIGHER_IS_BETTER

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

    def save(self, trainer: Any, results: dict[str, float]) -> None:
        self.value, self.step = results[self.key], trainer.step
        root = trainer.run_dir / BEST_DIR
        state = trainer.checkpoint_state()  # collective under DDP: every rank gets here together
        if not trainer.dist.main:
            return
        ck.save_checkpoint(root, trainer.step, trainer.checkpoint_tensors(), state, trainer.metadata(), keep=1)
        info = {"step": trainer.step, "score": self.key, "mode": self.mode, "value": self.value,
                "eval": results, "protocol": trainer.last_protocol}
        tmp = root / ".best.json.tmp"
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, root / "best.json")

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "step": self.step} if self.value is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value, self.step = state.get("value"), state.get("step")
