"""Finished benchmark runs kept on disk, so that a long benchmark resumes where it stopped.

The full toy benchmark is an overnight job (tens of runs of 60,000 steps); a crash, a Ctrl-C or a
killed job should cost the run in progress, not the night. Each finished run (a "cell": one method,
dataset and seed) is written to ``<out>/cells/<name>.json`` with its scores, and its samples to
``<name>.safetensors``. Re-running the same command loads every cell whose **key** matches and trains
only the rest. The key is a hash of everything that decides the result: the fully resolved recipe
(seed, budget and learning rate included), the benchmark's own settings (evaluation schedule,
sample counts), and the gankit and torch versions. A cell with another key is trained again and
overwritten. Editing gankit's code without changing its version is not seen: pass ``--fresh``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from gankit.config import Recipe


def cell_key(recipe: Recipe, **settings: Any) -> str:
    """A hex digest of the resolved recipe, the benchmark ``settings`` and the library versions."""
    from gankit import __version__

    blob = json.dumps({"recipe": recipe.model_dump(mode="json"), "settings": settings,
                       "gankit": __version__, "torch": torch.__version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class CellStore:
    """Finished cells under ``out/cells``; ``enabled=False`` (``--fresh``) never loads but still saves."""

    def __init__(self, out: str | Path, enabled: bool = True) -> None:
        self.dir = Path(out) / "cells"
        self.enabled = enabled
        self.loaded = 0

    def load(self, name: str, key: str) -> tuple[dict[str, Any], torch.Tensor | None] | None:
        """The record and samples saved for ``name`` under ``key``; None when absent, stale or unreadable
        (then the cell is simply trained again)."""
        meta = self.dir / f"{name}.json"
        if not self.enabled or not meta.is_file():
            return None
        try:
            stored = json.loads(meta.read_text())
            if stored.get("key") != key:
                return None
            samples = None
            if stored.get("samples"):
                samples = load_file(str(self.dir / stored["samples"]))["samples"]
        except (OSError, ValueError, KeyError):  # a truncated or foreign file: train the cell again
            return None
        self.loaded += 1
        return stored["record"], samples

    def save(self, name: str, key: str, record: dict[str, Any], samples: torch.Tensor | None = None) -> None:
        """Write the samples first and the JSON last (each atomically): a cell counts as finished only
        once its JSON names samples that are already on disk."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tensors = None
        if samples is not None:
            tensors = f"{name}.safetensors"
            data = {"samples": samples.detach().cpu().contiguous()}
            _atomic_write(self.dir / tensors, lambda p: save_file(data, str(p)))
        text = json.dumps({"key": key, "record": record, "samples": tensors}, indent=1)
        _atomic_write(self.dir / f"{name}.json", lambda p: p.write_text(text))
