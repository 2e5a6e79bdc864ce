"""Run directories: start a run, resume one exactly, refuse what would corrupt either."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console
from rich.markup import escape

from gankit.config import ConfigError, Recipe, apply_overrides, diff_keys, dump_yaml, flatten
from gankit.files import atomic_write
from gankit.recipes.load import validate_recipe
from gankit.runlog import RunLog
from gankit.runlog import checkpoint as ck
from gankit.training import distributed
from gankit.training.build import resolve_device
from gankit.training.guard import NonFiniteLoss
from gankit.training.lock import LOCK, RunLock
from gankit.training.trainer import Trainer
from gankit.viz.report import record_environment, write_report

CONFIG = "config.yaml"
STATUS = "status.json"
HISTORY = "config_history.json"


def default_run_dir(recipe: Recipe, root: str | Path = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{recipe.name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{recipe.name}-{stamp}-{n}"
    return path


def _write_config(run_dir: Path, recipe: Recipe) -> None:
    atomic_write(run_dir / CONFIG, dump_yaml(recipe))


class NullLog:
    """What the ranks other than 0 log to under torchrun: nothing (rank 0 writes the run directory)."""

    def write(self, step: int, scalars: dict[str, Any]) -> dict[str, Any]:
        return {"step": step, **scalars}

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _agreed_run_dir(recipe: Recipe, out: str | Path | None) -> Path:
    """--out, or a fresh timestamped folder; under torchrun, rank 0's choice for every rank."""
    info = distributed.from_environment()
    if not info.enabled:
        return Path(out) if out is not None else default_run_dir(recipe)
    distributed.init(info, distributed.device_for(info, resolve_device(recipe.device)))
    chosen = [str(Path(out) if out is not None else default_run_dir(recipe))]
    torch.distributed.broadcast_object_list(chosen, src=0)
    return Path(chosen[0])


def _refuse_foreign_out(run_dir: Path) -> None:
    """A run goes into a new or empty folder; anything else in it is the user's, not ours to mix into."""
    if (run_dir / CONFIG).exists() or (run_dir / "checkpoints").exists():
        raise ConfigError(
            f"{run_dir} already holds a run; continue it with `gankit train --resume {run_dir}` or choose another --out"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file, not a folder; give a new or empty folder")
    if run_dir.is_dir() and any(p.name != LOCK for p in run_dir.iterdir()):
        raise ConfigError(
            f"--out {run_dir} is not empty and is not a gankit run directory; give a new or empty folder "
            "(gankit never writes a run among other files)"
        )


def start_run(recipe: Recipe, out: str | Path | None = None, console: Console | None = None) -> dict[str, Any]:
    run_dir = _agreed_run_dir(recipe, out)
    main = distributed.from_environment().main
    if main:
        _refuse_foreign_out(run_dir)
    trainer = Trainer(recipe, run_dir, console=console)  # builds (and validates data) before writing
    if not main:
        return _train(trainer, NullLog(), console)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir).acquire()
    try:
        _refuse_foreign_out(run_dir)  # again, under the lock: another process may have begun here meanwhile
        _write_config(run_dir, recipe)
        record_environment(run_dir, 0, trainer.perf.record())
        log = RunLog(run_dir, tensorboard=recipe.log.tensorboard)
        return _train(trainer, log, console)
    finally:
        lock.release()


def write_status(run_dir: Path, state: str, step: int, total: int, message: str = "") -> None:
    """``RUN_DIR/status.json``: how the run stands or ended (running, finished, signalled, nan, crashed),
    so the report and a later reader never mistake a stopped run for a finished one."""
    info = {
        "state": state,
        "step": int(step),
        "total": int(total),
        "message": message,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write(run_dir / STATUS, json.dumps(info, indent=1))


def _train(trainer: Trainer, log: Any, console: Console | None) -> dict[str, Any]:
    """Train, then write report.html, also when training stops on an error (a NaN stop's report
    shows how it got there); a report that fails never hides the training result or error."""
    report = None
    main, run_dir, total = trainer.dist.main, trainer.run_dir, trainer.recipe.schedule.steps
    if main:
        write_status(run_dir, "running", trainer.step, total)
        if console is not None:
            console.print(escape(trainer.perf.summary()), style="dim")
    try:
        result = {"run_dir": run_dir, **trainer.train(log)}
        if main:
            if result["finished"]:  # an end-of-run evaluation that failed is noted, the weights are kept
                error = result.get("eval_error")
                write_status(
                    run_dir,
                    "finished",
                    trainer.step,
                    total,
                    f"the end-of-run evaluation failed: {error}" if error else "",
                )
            else:
                write_status(run_dir, "signalled", trainer.step, total, f"stopped by {result.get('stopped_by')}")
    except NonFiniteLoss as err:
        if main:
            write_status(run_dir, "nan", trainer.step, total, str(err))
        raise
    except BaseException as err:
        if main:
            write_status(run_dir, "crashed", trainer.step, total, f"{type(err).__name__}: {err}")
        raise
    finally:
        log.close()
        if main:
            try:
                report = write_report(run_dir)
            except Exception as err:  # noqa: BLE001 - the report is a view; training's outcome matters more
                (console or Console(stderr=True)).print(f"[yellow]warning:[/] report.html not written: {err}")
    return {**result, "report": report}


def resume_recipe(run_dir: Path, overrides: list[str], force: bool = False) -> tuple[Recipe, Recipe]:
    """The saved recipe and the one to continue with; refuses changes other than more steps."""
    cfg = run_dir / CONFIG
    if not cfg.is_file():
        raise ConfigError(f"{run_dir} is not a gankit run directory (no {CONFIG}); give the folder `gankit train` made")
    saved_raw = yaml.safe_load(cfg.read_text())
    saved = validate_recipe(saved_raw)
    new = validate_recipe(apply_overrides(saved.model_dump(mode="json"), overrides))
    changed = diff_keys(saved.model_dump(mode="json"), new.model_dump(mode="json"))
    if "schedule.steps" in changed and new.schedule.steps > saved.schedule.steps:
        changed.remove("schedule.steps")  # raising steps extends the run; lowering is a change like any other
    if changed and not force:
        raise ConfigError(
            f"resuming would change {', '.join(changed)}; only raising schedule.steps keeps the run "
            "exact. Pass --force to resume anyway, or start a new run."
        )
    return saved, new


def _record_changes(run_dir: Path, step: int, saved: Recipe, new: Recipe, forced: bool) -> None:
    """Append the resume's recipe changes, old and new values, to ``RUN_DIR/config_history.json``: a
    forced change is part of how the run's numbers came about."""
    old_flat, new_flat = flatten(saved.model_dump(mode="json")), flatten(new.model_dump(mode="json"))
    changes = {
        k: {"old": old_flat.get(k), "new": new_flat.get(k)}
        for k in diff_keys(saved.model_dump(mode="json"), new.model_dump(mode="json"))
    }
    if not changes:
        return
    path = run_dir / HISTORY
    try:
        entries = json.loads(path.read_text()) if path.is_file() else []
    except ValueError:
        entries = []
    entries.append(
        {"from_step": step, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "forced": forced, "changes": changes}
    )
    atomic_write(path, json.dumps(entries, indent=1))


def resume_run(
    run_dir: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    force: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    main = distributed.from_environment().main
    lock = RunLock(run_dir).acquire() if main and (run_dir / CONFIG).is_file() else None
    try:
        saved, recipe = resume_recipe(run_dir, list(overrides), force)
        ckpts = ck.list_checkpoints(run_dir / "checkpoints")
        trainer = Trainer(recipe, run_dir, console=console)
        if ckpts:
            trainer.load_checkpoint(ckpts[-1], force=force)
        elif (
            console is not None and trainer.dist.main
        ):  # stopped before its first checkpoint: a fresh trainer *is* step 0
            console.print(f"{run_dir} has no checkpoint yet: training again from step 0")
        if not trainer.dist.main:
            return _train(trainer, NullLog(), console)
        _record_changes(run_dir, trainer.step, saved, recipe, force)
        _write_config(run_dir, recipe)
        record_environment(run_dir, trainer.step, trainer.perf.record())
        log = RunLog(run_dir, tensorboard=recipe.log.tensorboard, resume_step=trainer.step)
        return _train(trainer, log, console)
    finally:
        if lock is not None:
            lock.release()
