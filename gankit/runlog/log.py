"""The run log: scalars appended to ``metrics.jsonl`` (and mirrored to TensorBoard), and read back."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from gankit.files import atomic_write

METRICS_FILE = "metrics.jsonl"


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/Inf
    return v


class RunLog:
    """Appends one JSON object per logging step; mirrors every scalar to TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool, resume_step: int | None = None) -> None:
        self.path = run_dir / METRICS_FILE
        if resume_step is not None:
            self._truncate_after(resume_step)
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides events written after the checkpoint we resume from
            self._tb = SummaryWriter(str(run_dir), purge_step=resume_step)
        self._fh = open(self.path, "a", encoding="utf-8")

    def _truncate_after(self, step: int) -> None:
        """Drop lines logged after the checkpoint being resumed: they will be logged again."""
        if not self.path.exists():
            return
        kept = [json.dumps(row) for row in _rows(self.path) if row.get("step", 0) <= step]
        atomic_write(self.path, "".join(ln + "\n" for ln in kept))

    def write(self, step: int, scalars: dict[str, Any]) -> dict[str, Any]:
        row = {"step": step, "time": round(time.time(), 3), **{k: _plain(v) for k, v in scalars.items()}}
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()
        if self._tb is not None:
            for k, v in row.items():
                if k not in ("step", "time") and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, step)
        return row

    def flush(self) -> None:
        self._fh.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for ln in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rows.append(json.loads(ln))
        except json.JSONDecodeError:  # a line torn by a killed process: it is logged again on resume
            continue
    return rows


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS_FILE
    return _rows(path) if path.exists() else []
