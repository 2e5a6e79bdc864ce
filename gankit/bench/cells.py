"""Finished benchmark runs kept on disk, so that a long benchmark resumes where it stopped.

The full toy benchmark is an overnight job (tens of runs of 60,000 steps); a crash, a Ctrl-C or a
killed job should cost the run in progress, not the night. Each finished run (a "cell": one method,
dataset and seed) is written to ``<out>/cells/<name>.json`` with its scores, and its samples to
``<name>.safetensors``. Re-running the same command loads every cell whose **key** matches and trains
only the rest. The key is a hash of everything that decides the result: the fully resolved recipe
(seed, budget and learning rate included), the benchmark's own settings (evaluation schedule,
sample counts), and the gankit and torch versions. A cell with another key is trained again and
overwritten. Editing gankit's code without changing its version is not seen: pass ``--fresh``.

``run_cells`` is the loop both benchmarks share (gankit/bench/toy.py, gankit/bench/stacked.py): for
each cell, load it from the store or train and save it, with one progress bar over every step, and a
method whose recipe does not validate skipped (with its reason) rather than fatal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from safetensors.torch import load_file, save_file

from gankit.config import ConfigError, Recipe
from gankit.files import atomic_write
from gankit.version import __version__


def cell_key(recipe: Recipe, **settings: Any) -> str:
    """A hex digest of the resolved recipe, the benchmark ``settings`` and the library versions."""

    blob = json.dumps(
        {
            "recipe": recipe.model_dump(mode="json"),
            "settings": settings,
            "gankit": __version__,
            "torch": torch.__version__,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


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
            atomic_write(self.dir / tensors, lambda p: save_file(data, str(p)))
        text = json.dumps({"key": key, "record": record, "samples": tensors}, indent=1)
        atomic_write(self.dir / f"{name}.json", text)


@dataclass
class Job:
    """A cell ready to run: its file ``name`` under ``out/cells``, its ``key`` (``cell_key``), and
    ``train(advance)``, which trains it, calls ``advance()`` once per generator step, and returns the
    fields to merge into the cell's record and the samples to keep (or None)."""

    name: str
    key: str
    train: Callable[[Callable[[], None]], tuple[dict[str, Any], torch.Tensor | None]]


@dataclass
class CellRun:
    """One cell's outcome: its ``record`` (``status`` "ok", "skipped" or "failed", with ``error`` when
    not ok) and its samples, trained now or loaded from the store."""

    cell: Any
    record: dict[str, Any]
    samples: torch.Tensor | None = None


def run_cells(
    cells: Sequence[Any],
    prepare: Callable[[Any], Job],
    *,
    store: CellStore,
    budget: int,
    label: str,
    describe: Callable[[Any], str],
    group: Callable[[Any], str],
    record: Callable[[Any], dict[str, Any]],
    console: Console,
    progress: bool = True,
) -> tuple[list[CellRun], dict[str, str]]:
    """Run every cell in order, each loaded from ``store`` when its key matches, else trained and saved.

    ``record(cell)`` is the cell's starting record, with ``status`` "skipped"; ``prepare(cell)`` builds
    its recipe and returns its ``Job``. A ConfigError from ``prepare`` or training (a method's piece is
    missing) marks the cell skipped with the error, and every later cell of the same ``group(cell)`` (the
    method) is skipped with the same reason without being prepared; a NonFiniteLoss marks it "failed".
    One progress bar titled ``label`` counts ``budget`` steps per cell, ``describe(cell)`` naming the
    current one. Returns the runs, in the order of ``cells``, and the reasons per skipped group.
    """
    from gankit.training.trainer import NonFiniteLoss

    runs: list[CellRun] = []
    skipped: dict[str, str] = {}
    with progress_bar(console, progress) as bar:
        task = bar.add_task(label, total=len(cells) * budget, run="")
        for i, cell in enumerate(cells):
            bar.update(task, run=f"{i + 1}/{len(cells)} {describe(cell)}")
            run = CellRun(cell, record(cell))
            steps = 0

            def advance() -> None:
                nonlocal steps
                steps += 1
                bar.advance(task)

            try:
                if group(cell) in skipped:
                    raise ConfigError(skipped[group(cell)])
                job = prepare(cell)
                stored = store.load(job.name, job.key)
                if stored is not None:
                    run.record.update(stored[0])
                    run.samples = stored[1]
                    bar.advance(task, budget)
                else:
                    fields, run.samples = job.train(advance)
                    run.record.update(fields)
                    store.save(job.name, job.key, run.record, run.samples)
            except ConfigError as err:
                skipped.setdefault(group(cell), str(err))
                run.record["error"] = str(err)
                bar.advance(task, budget - steps)
            except NonFiniteLoss as err:
                run.record.update(status="failed", error=str(err))
            runs.append(run)
    return runs, skipped


def print_cell_notes(console: Console, store: CellStore, skipped: dict[str, str]) -> None:
    """The lines a benchmark ends with: each skipped method and why, and how many cells were resumed."""
    for method, reason in skipped.items():
        console.print(f"[yellow]skipped {method}:[/] {reason}")
    if store.loaded:
        console.print(f"resumed {store.loaded} finished run(s) from {store.dir} (--fresh retrains them)")


def progress_bar(console: Console, enabled: bool) -> Any:
    """A rich progress bar over generator steps, its ``run`` field naming the current cell."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[run]}"),
        console=console,
        disable=not enabled,
        transient=False,
    )
