"""What the benchmarks show a person: rich tables, scatter/density plots, one HTML page per run."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from gankit.data import DATASETS
from gankit.files import save_figure
from gankit.viz.density import save_density_figure
from gankit.viz.html import html_table, page


def fmt(mean: float | None, se: float | None, digits: int = 1) -> str:
    """``mean ± se`` (just the mean for one seed, an em dash when nothing finished)."""
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" if se is None else f"{mean:.{digits}f} ± {se:.{digits}f}"


def _pub(row: dict[str, Any], key: str, digits: int) -> str:
    pub = row.get("published")
    return f"{pub[key]:.{digits}f}" if pub else ""


COLUMNS = (  # header, how to render a row, right-aligned
    ("dataset", lambda r: f"{r['dataset']} ({r['num_modes']})", False),
    ("method", lambda r: r["label"], False),
    ("seeds", lambda r: str(r["seeds"]) if r["status"] == "ok" else r["status"], True),
    ("modes", lambda r: fmt(r["modes"], r["modes_se"]), True),
    ("paper modes", lambda r: _pub(r, "modes", 1), True),
    ("% HQ", lambda r: fmt(r["hq"], r["hq_se"]), True),
    ("paper % HQ", lambda r: _pub(r, "hq", 1), True),
    ("KL", lambda r: fmt(r["kl"], r["kl_se"], 2), True),
    ("paper KL", lambda r: _pub(r, "kl", 2), True),
)


def toy_table_rows(results: dict[str, Any]) -> list[list[str]]:
    return [[render(row) for _, render, _ in COLUMNS] for row in results["rows"]]


def print_toy_table(results: dict[str, Any], console: Console) -> None:
    c = results["config"]
    title = (
        f"Mode collapse on 2-D mixtures (modes of K, % high-quality samples, reverse KL): {c['budget']} "
        f"steps, {c['seeds']} seed(s), lr {c['lr']:g}, {c['eval_samples']} samples; mean ± standard error"
    )
    table = Table(
        title=title,
        title_justify="left",
        caption=f"paper columns: {results['published_source']}",
        caption_justify="left",
    )
    for name, _, right in COLUMNS:
        table.add_column(name, justify="right" if right else "left", style="dim" if name.startswith("paper") else None)
    for cells in toy_table_rows(results):
        table.add_row(*cells)
    # Logs (CI, files) get the whole table unwrapped; a terminal keeps its own width.
    out = (
        console if console.is_terminal else Console(file=console.file, width=max(console.width, 140), color_system=None)
    )
    out.print(table)


def save_points_figure(samples: torch.Tensor, path: str | Path, dataset: str, title: str = "") -> Path:
    """The two-panel figure of ``viz.density`` for a built-in toy ``dataset``."""

    source = DATASETS.build(dataset)
    real, _ = source.sample_real(len(samples), seed=0)
    return save_density_figure(samples, real, source.centers, path, title=title)


TRAJECTORY_PANELS = (("modes", "modes captured"), ("hq", "% high-quality samples"), ("kl", "reverse KL"))


def save_trajectory_figure(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Modes, % high-quality samples and reverse KL against generator steps, one line per row
    (method) from its ``trajectory``; the paper's value, where published, as a dotted line in the
    same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=100)
    for i, row in enumerate(rows):
        color = f"C{i % 10}"
        steps = [p["step"] for p in row["trajectory"]]
        for ax, (key, _) in zip(axes, TRAJECTORY_PANELS):
            ax.plot(steps, [p[key] for p in row["trajectory"]], "o-", ms=3, color=color, label=row["label"])
            if row.get("published"):
                ax.axhline(row["published"][key], color=color, ls=":", lw=1)
    for ax, (key, name) in zip(axes, TRAJECTORY_PANELS):
        ax.set_xlabel("generator steps")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        if key == "modes" and rows:
            ax.axhline(rows[0]["num_modes"], color="0.5", lw=0.8)
    axes[0].legend(fontsize=7)
    fig.suptitle((title + "; " if title else "") + "dotted: paper", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, format="png")


def write_toy_html(results: dict[str, Any], path: str | Path) -> Path:
    """index.html: the settings, the table (ours beside the paper's) and every plot, by relative path."""
    c = results["config"]
    header = [name for name, _, _ in COLUMNS]
    paper = tuple(i for i, h in enumerate(header) if h.startswith("paper"))
    settings = (
        f"{c['budget']} generator steps per run, {c['seeds']} seed(s), Adam lr {c['lr']:g} "
        f"(β1 0.8), {c['eval_samples']} samples per evaluation, device {c['device']}, torch {c['torch']}"
        + (" — quick preset (CI); see gankit/bench/toy.py QUICK for its deviations" if c["quick"] else "")
    )
    parts = [
        f"<p class='note'>{html.escape(settings)}</p>",
        html_table(header, toy_table_rows(results), paper=paper),
        "<p class='note'>mean ± standard error over seeds; grey columns: "
        f"{html.escape(results['published_source'])}.</p>",
    ]
    if results.get("skipped"):
        items = "".join(f"<li><b>{html.escape(m)}</b>: {html.escape(r)}</li>" for m, r in results["skipped"].items())
        parts.append(f"<h2>Skipped</h2><ul>{items}</ul>")
    figs = "".join(
        f"<figure><img src='{html.escape(r['plot'])}' alt='{html.escape(r['label'])}'>"
        f"<figcaption>{html.escape(r['label'])} on {html.escape(r['dataset'])}</figcaption></figure>"
        for r in results["rows"]
        if r.get("plot")
    )
    curves = "".join(
        f"<figure><img src='{html.escape(png)}' alt='trajectory on {html.escape(d)}'>"
        f"<figcaption>scores against steps on {html.escape(d)} (every {c.get('eval_every')} steps)"
        "</figcaption></figure>"
        for d, png in results.get("trajectory_plots", {}).items()
    )
    if curves:
        parts.append(f"<h2>Scores during training</h2><div class='plots'>{curves}</div>")
    parts.append(f"<h2>Samples (first seed)</h2><div class='plots'>{figs}</div>")
    path = Path(path)
    path.write_text(page("gankit mode-collapse benchmark (2-D mixtures)", "".join(parts)))
    return path
