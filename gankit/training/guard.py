"""What stops a run safely. ``StopSignals``: SIGINT/SIGTERM end it at a step boundary with a
checkpoint. ``FiniteGuard``, the NaN/Inf guard: every step's loss terms and gradient norms stay on the device
until a logging
step reads them all at once; the first bad step and term then stop the run with a message that says
what went wrong, where the last good checkpoint is, and how to resume it with lower learning rates."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import torch

from gankit.training import distributed


class NonFiniteLoss(RuntimeError):
    """A NaN/Inf loss: the run stops and keeps its last good checkpoint."""


class FiniteGuard:
    """Collects (step, phase, term names, stacked values) per phase per step: one ``torch.stack`` each,
    no host sync; ``check`` reads them all and raises on the first non-finite one."""

    def __init__(self, check_every: int = 4096) -> None:
        self.pending: list[tuple[int, str, tuple[str, ...], torch.Tensor]] = []
        self.failure: str | None = None
        self.check_every = check_every  # a very long logging interval: check then rather than hoard

    def track(self, step: int, phase: str, terms: dict[str, torch.Tensor], skipped: torch.Tensor | None = None) -> bool:
        """Keep ``terms`` of generator step ``step``; True when it is time to check (the list is long)."""
        # Named terms first, then their total, then the gradient: the first bad one is the culprit.
        keys = tuple(k for k in terms if k not in ("loss", "grad_norm")) + tuple(
            k for k in ("loss", "grad_norm") if k in terms
        )
        vals = [terms[k] for k in keys]
        if any(v.ndim or v.dtype != torch.float32 for v in vals):  # checked in Python: free for the usual scalars
            vals = [v.float().sum() for v in vals]
        stacked = torch.stack(vals)
        if skipped is not None:  # fp16: a step the scaler skipped cannot be a NaN stop
            stacked = torch.where(skipped, torch.zeros_like(stacked), stacked)
        self.pending.append((step, phase, keys, stacked))
        return len(self.pending) >= self.check_every

    def check(self, last_checkpoint: Path | None, run_dir: Path | None, recipe: Any, has_d: bool) -> None:
        """Raise ``NonFiniteLoss`` if a tracked term went NaN/Inf; once raised, raise again on every call."""
        if self.failure is not None:
            raise NonFiniteLoss(self.failure)
        pending, self.pending = self.pending, []
        if not pending:
            return
        flags = ~torch.isfinite(torch.stack([v.sum() for *_, v in pending]))  # one read for the lot
        if not bool(flags.any()):
            return
        first, phase, keys, values = pending[int(flags.nonzero()[0])]
        term = f"{phase.lower()}/{keys[int((~torch.isfinite(values)).nonzero()[0])]}"
        what = (
            f"the gradient of {term.split('/')[0].upper()} became NaN/Inf"
            if term.endswith("/grad_norm")
            else f"the loss term {term} became NaN/Inf"
        )
        if last_checkpoint is None:
            self.failure = (
                f"{what} at step {first}; training stopped before any checkpoint was written. "
                "Start again with lower learning rates, a gradient penalty or another objective."
            )
        else:
            lower = " ".join(
                f"optim.{k}.lr={cfg.lr / 2:g}"
                for k, cfg in (("g", recipe.optim.g), ("d", recipe.optim.d))
                if k == "g" or has_d
            )
            self.failure = (
                f"{what} at step {first}; training stopped and the last good checkpoint is {last_checkpoint}. "
                f"Resume from it with lower learning rates:\n  gankit train --resume {run_dir} --force {lower}\n"
                "or start again with a gradient penalty or another objective."
            )
        raise NonFiniteLoss(self.failure)


class StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM (schedulers, `kill`) ask the run to stop at the next step boundary,
    where the trainer writes a checkpoint; a second signal stops at once."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.requested: str | None = None

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.requested:  # asked twice: the user wants out now, checkpoint or not
            raise KeyboardInterrupt(f"{name} received twice")
        self.requested = name
        self.console.print(
            f"[yellow]{name}: finishing this step, saving a checkpoint and stopping (send it again to stop at once)[/]"
        )

    def install(self) -> dict[int, Any]:
        """Install the handlers; returns the old ones to restore. Only the main thread may."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def restore(handlers: dict[int, Any]) -> None:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)

    def agreed(self, want_log: bool, distributed_run: bool, device: torch.device) -> bool:
        """Whether to stop now: at once in one process; under DDP every rank stops at the same logging
        step (a rank that left alone would hang the others in their next gradient reduction)."""
        if not distributed_run:
            return bool(self.requested)
        if not want_log:
            return False
        stop = distributed.any_rank(bool(self.requested), device)
        if stop and not self.requested:
            self.requested = "a signal to another rank"
        return stop
