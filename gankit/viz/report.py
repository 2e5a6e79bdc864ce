"""``report.html``: one self-contained page per run directory, built from its files alone.

Loss, discriminator-output and gradient-norm curves, metric curves, sample grids over time, the
toy-data density figure, the training-health diagnostics (replayed from ``metrics.jsonl`` with the
same rules the live run used), the resolved recipe and the environment. Every picture is inlined,
so the page can be mailed or archived on its own. Reads files only: it never imports the trainer.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import yaml

from gankit.train.health import replay
from gankit.train.logger import read_metrics
from gankit.viz.html import figure, html_table, page

REPORT = "report.html"
ENVIRONMENT = "environment.json"
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
    for ax in axes.flat[len(panels):]:
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


def environment() -> dict[str, Any]:
    """What a result depends on besides the recipe: versions, device and threads."""
    import platform

    import torch

    import gankit

    env: dict[str, Any] = {
        "gankit": gankit.__version__, "torch": torch.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda_version"] = torch.version.cuda
    return env


def record_environment(run_dir: Path, step: int) -> None:
    """Append this process's environment to ``environment.json`` (one entry per start or resume)."""
    path = run_dir / ENVIRONMENT
    entries = json.loads(path.read_text()) if path.is_file() else []
    entries.append({"from_step": step, **environment()})
    tmp = path.with_name(f".{ENVIRONMENT}.tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    os.replace(tmp, path)


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

    desc = " ".join(str(recipe.get("description", "")).split())
    status = f"step {last_step} of {total}" if total else f"step {last_step}"
    parts.append(f"<p>{html.escape(desc)}</p><p class='note'>{html.escape(str(run_dir))} — {status}</p>")

    eval_step, scores = _last_eval(rows)
    if scores:
        parts.append(f"<h2>Evaluation at step {eval_step}</h2>"
                     + html_table(["score", "value"], [[k, f"{v:.4g}"] for k, v in scores.items()], left=1))

    warnings = replay(rows)
    parts.append("<h2>Diagnostics</h2>")
    if warnings:
        parts += [f"<div class='warn'><b>step {w.step}, {html.escape(w.kind.replace('_', ' '))}:</b> "
                  f"{html.escape(w.message)}</div>" for w in warnings]
    else:
        parts.append("<p class='ok'>No warning: no sign of an overpowering discriminator, vanishing "
                     "generator gradients, divergence or mode collapse in the logged values.</p>")

    d_loss = [k for k in _keys(train_rows, "d/") if k.split("/", 1)[1] not in _NOT_LOSS]
    g_loss = [k for k in _keys(train_rows, "g/") if k.split("/", 1)[1] not in _NOT_LOSS]
    curves = [
        ("discriminator losses", d_loss, False), ("generator losses", g_loss, False),
        ("D outputs on real and fake", ["d/real", "d/fake"], False),
        ("D accuracy (midpoint of its mean scores)", ["d/acc", "d/class_acc"], False),
        ("gradient norms", ["d/grad_norm", "g/grad_norm"], True),
        ("objective state", _keys(train_rows, "objective/"), False),
    ]
    figs = []
    png = _plot(curves, train_rows)
    if png:
        figs.append(figure(png, "training curves", "wide"))
    eval_keys = [k for k in _keys(rows, "eval/") if not k.endswith("_std")]  # spreads stay in the table
    png = _plot([(k[5:], [k], False) for k in eval_keys] + [("sample diversity vs real data", ["health/diversity"], False)],
                rows, width=4.2)
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
        parts.append("<h2>Environment</h2>" + html_table(
            ["", *[f"run from step {e.get('from_step', 0)}" for e in entries]],
            [[k, *[str(e.get(k, "")) for e in entries]] for k in keys if k != "from_step"], left=1))
    return page(f"gankit run report: {recipe.get('name', run_dir.name)}", "".join(parts))


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``out``) atomically and return its path."""
    run_dir = Path(run_dir)
    path = Path(out) if out is not None else run_dir / REPORT
    text = build_report(run_dir)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
