"""``report.html``: one self-contained page per run directory, built from its files alone.

Loss, discriminator-output and gradient-norm curves, metric curves, sample grids over time, the
toy-data density figure, the training-health diagnostics (replayed from ``metrics.jsonl`` with the
same rules the live run used), the resolved recipe and the environment. Every picture is inlined,
so the page can be mailed or archived on its own. Reads files only: it never imports the trainer.

A run that did not finish says so first: ``status.json`` (written by the trainer's side at start,
resume and stop) names the outcome, and a NaN stop, a crash, a signal or a process that vanished
without a stop record (killed) gets a banner above everything else, with the step, the message and
the command to continue. Runs from before ``status.json`` existed show no banner.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import shlex
import socket
from pathlib import Path
from typing import Any

import yaml

from gankit.files import atomic_write
from gankit.runlog import checkpoint as ck
from gankit.runlog import read_metrics
from gankit.runlog.health import Health, replay
from gankit.version import __version__
from gankit.viz.html import figure, html_table, page

REPORT = "report.html"
ENVIRONMENT = "environment.json"
STATUS = "status.json"
MAX_GRIDS = 8  # sample grids shown, evenly spaced over the run (the last one always)

# Logged terms that are not losses: they get plots of their own.
_NOT_LOSS = ("real", "fake", "acc", "class_acc", "grad_norm")


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for r in rows:
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            steps.append(int(r["step"]))
            values.append(float(v))
    return steps, values


def _keys(rows: list[dict[str, Any]], prefix: str) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for k, v in r.items():
            if k.startswith(prefix) and isinstance(v, (int, float)) and not isinstance(v, bool):
                seen[k] = None
    return list(seen)


def _plot(panels: list[tuple[str, list[str], bool]], rows: list[dict[str, Any]], width: float = 5.2) -> bytes | None:
    """One figure, a panel per (title, keys, log-y) with data; PNG bytes, or None when nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, [k for k in keys if _series(rows, k)[0]], logy) for t, keys, logy in panels]
    panels = [p for p in panels if p[1]]
    if not panels:
        return None
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(width * cols, 3.4 * nrows), dpi=90, squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, keys, logy) in zip(axes.flat, panels):
        for k in keys:
            steps, values = _series(rows, k)
            ax.plot(steps, values, label=k, lw=1.2, marker="o" if len(steps) < 12 else None, ms=3)
        if logy and all(v > 0 for k in keys for v in _series(rows, k)[1]):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("generator step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _grids(run_dir: Path) -> list[Path]:
    grids = sorted((run_dir / "samples").glob("step-*.png")) if (run_dir / "samples").is_dir() else []
    if len(grids) <= MAX_GRIDS:
        return grids
    picks = {round(i * (len(grids) - 1) / (MAX_GRIDS - 1)) for i in range(MAX_GRIDS)}
    return [g for i, g in enumerate(grids) if i in picks]


def _last_eval(rows: list[dict[str, Any]]) -> tuple[int, dict[str, float]]:
    for r in reversed(rows):
        scores = {k[5:]: v for k, v in r.items() if k.startswith("eval/") and isinstance(v, (int, float))}
        if scores:
            return int(r["step"]), scores
    return -1, {}


def read_status(run_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """``status.json`` as a dict, or None; and a note when it exists but cannot be used."""
    path = run_dir / STATUS
    if not path.is_file():
        return None, ""  # a run from before status.json: nothing to say
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, f"{STATUS} could not be read ({type(err).__name__}: {err}); the run's outcome is unknown."
    if not isinstance(status, dict) or not isinstance(status.get("state"), str):
        return None, f"{STATUS} holds no run state; the run's outcome is unknown."
    return status, ""


def _alive(status: dict[str, Any]) -> bool | None:
    """Whether the process that wrote a "running" status still runs: None when this machine can't tell
    (no pid, another host, not POSIX: on Windows os.kill would end the process)."""
    pid, host = status.get("pid"), status.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or os.name != "posix":
        return None
    if isinstance(host, str) and host and host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return None
    return True


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def status_banner(run_dir: Path, last_step: int, total: Any) -> tuple[str, str]:
    """(banner, note) HTML for the run's outcome: a banner when it did not finish (NaN, crash, signal,
    killed) or is still running; a quiet note when it finished, or when status.json is unusable."""
    status, problem = read_status(run_dir)
    if status is None:
        return "", (f"<p class='note'>{html.escape(problem)}</p>" if problem else "")
    state = status["state"]
    step = _int(status.get("step"))
    step = last_step if step is None else step
    total = _int(status.get("total")) or total
    of = f" of {total}" if total else ""
    message = str(status.get("message") or "")
    resume = f"gankit train --resume {shlex.quote(str(run_dir))}"
    ckpts = ck.list_checkpoints(run_dir / "checkpoints")
    last_ckpt = (
        f"the last checkpoint is at step {int(ckpts[-1].name[len(ck.PREFIX) :])}"
        if ckpts
        else "there is no checkpoint yet"
    )

    def banner(
        title: str, text: str = "", command: str = "", cls: str = "banner", lead: str = "Continue where it stopped with"
    ) -> str:
        out = f"<div class='{cls}' id='run-status'><b>{html.escape(title)}</b>"
        if text:
            out += f"<div class='msg'>{html.escape(text)}</div>"
        if command:
            out += f"<div>{html.escape(lead)}: <code>{html.escape(command)}</code></div>"
        return out + "</div>"

    if state == "finished":
        note = f"finished at step {step}{of}" + (f" ({message})" if message else "")
        return "", f"<p class='note' id='run-status'>{html.escape(note)}</p>"
    if state == "nan":  # the message names the term and the lower-rate resume command
        return banner(f"Stopped at step {step}{of}: a loss became NaN/Inf", message), ""
    if state == "signalled":
        return banner(f"Stopped by a signal at step {step}{of}", f"{message or 'signalled'}; {last_ckpt}.", resume), ""
    if state == "crashed":
        return banner(
            f"Crashed at step {step}{of}",
            message or "no message recorded",
            resume if ckpts else "",
            lead="After fixing the cause, continue from the last checkpoint with",
        ), ""
    if state == "running":
        alive = _alive(status)
        # status.json records where this (re)start began; the log may have gone further
        reached = max(step, last_step)
        if alive is False:
            return banner(
                f"The process ended without a stop record at step {reached}{of} (killed?)",
                f"status.json still says running, but process {status.get('pid')} is gone (SIGKILL, "
                f"out of memory, power loss); {last_ckpt}.",
                resume,
                lead="Resume from the last checkpoint with",
            ), ""
        if alive is True:
            return banner(
                f"In progress: step {reached}{of} when this report was written",
                f"process {status.get('pid')} is still training; this page is a snapshot.",
                cls="banner info",
            ), ""
        return banner(
            f"Running, or ended without a stop record, at step {reached}{of}",
            f"status.json says running (process {status.get('pid')}), which can't be checked from here; "
            f"if it is no longer running, {last_ckpt}.",
            resume,
            cls="banner info",
            lead="If it is not running, resume with",
        ), ""
    return "", f"<p class='note'>{html.escape(f'{STATUS} names an unknown state {state!r}.')}</p>"


def _diagnostics(rows: list[dict[str, Any]]) -> list[str]:
    """The health warnings replayed from the rows, and what the latest coverage and diversity say."""
    health = Health()
    warnings = replay(rows, health)
    # Readings that say collapsed while no mode-collapse warning stands can only come from the warm-up
    # (an untrained G covers little): the page names them rather than calling the run free of collapse.
    pending: list[str] = []
    if "mode_collapse" not in health.active:
        early = Health(warmup=0)
        replay(rows, early)
        pending = early.collapse_reasons()
    parts = ["<h2>Diagnostics</h2>"]
    parts += [
        f"<div class='warn'><b>step {w.step}, {html.escape(w.kind.replace('_', ' '))}:</b> "
        f"{html.escape(w.message)}</div>"
        for w in warnings
    ]
    if pending:
        parts.append(
            f"<div class='warn'><b>low coverage or diversity, too early to judge:</b> "
            f"{html.escape('; '.join(pending))}. Before generator step {health.warmup} the monitor gives no "
            "mode-collapse verdict, as an untrained generator is neither diverse nor on the data's "
            "modes: this one may still have been learning, or collapsed.</div>"
        )
    if not warnings:
        checked = "an overpowering discriminator, vanishing generator gradients, divergence"
        checked += " in the logged values" if pending else " or mode collapse in the logged values"
        parts.append(f"<p class='ok'>No warning: no sign of {checked}.</p>")
    return parts


def environment() -> dict[str, Any]:
    """What a result depends on besides the recipe: versions, device and threads."""
    import platform

    import torch

    env: dict[str, Any] = {
        "gankit": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda_version"] = torch.version.cuda
    return env


def record_environment(run_dir: Path, step: int, extra: dict[str, Any] | None = None) -> None:
    """Append this process's environment to ``environment.json`` (one entry per start or resume),
    with ``extra`` (the trainer's resolved ``perf`` settings and why)."""
    path = run_dir / ENVIRONMENT
    entries = json.loads(path.read_text()) if path.is_file() else []
    entries.append({"from_step": step, **environment(), **(extra or {})})
    atomic_write(path, json.dumps(entries, indent=1))


def build_report(run_dir: str | Path) -> str:
    """The report page of ``run_dir`` as HTML text."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a gankit run directory (no config.yaml)")
    config_text = config_path.read_text()
    recipe = yaml.safe_load(config_text) or {}
    rows = read_metrics(run_dir)
    train_rows = [r for r in rows if "d/loss" in r or "g/loss" in r]
    last_step = max((int(r["step"]) for r in rows), default=0)
    total = (recipe.get("schedule") or {}).get("steps")
    parts: list[str] = []

    banner, status_note = status_banner(run_dir, last_step, total)
    desc = " ".join(str(recipe.get("description", "")).split())
    status = f"step {last_step} of {total}" if total else f"step {last_step}"
    parts.append(f"<p>{html.escape(desc)}</p><p class='note'>{html.escape(str(run_dir))} — {status}</p>{status_note}")

    eval_step, scores = _last_eval(rows)
    if scores:
        parts.append(
            f"<h2>Evaluation at step {eval_step}</h2>"
            + html_table(["score", "value"], [[k, f"{v:.4g}"] for k, v in scores.items()], left=1)
        )

    parts += _diagnostics(rows)

    d_loss = [k for k in _keys(train_rows, "d/") if k.split("/", 1)[1] not in _NOT_LOSS]
    g_loss = [k for k in _keys(train_rows, "g/") if k.split("/", 1)[1] not in _NOT_LOSS]
    curves = [
        ("discriminator losses", d_loss, False),
        ("generator losses", g_loss, False),
        ("D outputs on real and fake", ["d/real", "d/fake"], False),
        ("D accuracy (midpoint of its mean scores)", ["d/acc", "d/class_acc"], False),
        ("gradient norms", ["d/grad_norm", "g/grad_norm"], True),
        ("objective state", _keys(train_rows, "objective/"), False),
        ("trick state (ADA: p and r_t)", _keys(train_rows, "tricks/"), False),
    ]
    figs = []
    png = _plot(curves, train_rows)
    if png:
        figs.append(figure(png, "training curves", "wide"))
    eval_keys = [k for k in _keys(rows, "eval/") if not k.endswith("_std")]  # spreads stay in the table
    png = _plot(
        [(k[5:], [k], False) for k in eval_keys] + [("sample diversity vs real data", ["health/diversity"], False)],
        rows,
        width=4.2,
    )
    if png:
        figs.append(figure(png, "evaluation curves", "wide"))
    parts.append("<h2>Curves</h2>" + ("".join(figs) if figs else "<p class='note'>nothing logged yet</p>"))

    grids = _grids(run_dir)
    density = run_dir / "samples" / "density.png"
    if grids or density.is_file():
        items = "".join(figure(g, f"samples at step {int(g.stem.split('-')[1])}") for g in grids)
        if density.is_file():
            items += figure(density, "final samples and their density")
        parts.append(f"<h2>Samples over time</h2><div class='plots grids'>{items}</div>")

    parts.append(f"<h2>Recipe (resolved)</h2><pre>{html.escape(config_text)}</pre>")
    env_path = run_dir / ENVIRONMENT
    if env_path.is_file():
        entries = json.loads(env_path.read_text())
        keys = list(dict.fromkeys(k for e in entries for k in e))
        parts.append(
            "<h2>Environment</h2>"
            + html_table(
                ["", *[f"run from step {e.get('from_step', 0)}" for e in entries]],
                [[k, *[str(e.get(k, "")) for e in entries]] for k in keys if k != "from_step"],
                left=1,
            )
        )
    return page(f"gankit run report: {recipe.get('name', run_dir.name)}", "".join(parts), banner=banner)


def write_curves(run_dir: str | Path, keys: list[str], out: str | Path) -> Path:
    """A PNG of logged series of ``run_dir``, a panel per key (a key ending in ``/`` takes every series
    under it in one panel, e.g. ``tricks/ada/``), for a README or a paper. Unknown keys are refused with
    the keys the run has."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a gankit run directory (no config.yaml)")
    if Path(out).suffix != ".png":
        raise ValueError(f"--out must end in .png for --curves, got {str(out)!r}")
    rows = read_metrics(run_dir)
    panels = [(k, _keys(rows, k) if k.endswith("/") else [k], False) for k in keys]
    missing = [k for k, found, _ in panels if not any(_series(rows, f)[0] for f in found)]
    if missing:
        have = ", ".join(k for k in _keys(rows, "") if k not in ("step", "time"))
        raise ValueError(f"{run_dir} logged no values for {', '.join(missing)}; it has: {have}")
    png = _plot(panels, rows)
    assert png is not None  # every panel has data (checked above)
    return atomic_write(Path(out), png)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``out``) atomically and return its path."""
    run_dir = Path(run_dir)
    path = Path(out) if out is not None else run_dir / REPORT
    return atomic_write(path, build_report(run_dir))
