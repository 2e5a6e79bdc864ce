"""Real points and generated samples of a 2-D mixture, and the samples' log-density (the VEEGAN /
PacGAN figures)."""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.files import save_figure


def save_density_figure(
    samples: torch.Tensor, real: torch.Tensor, centers: torch.Tensor | None, path: str | Path, title: str = ""
) -> Path:
    """Two panels: real points (grey), generated samples (blue) and mode centres (red x); and the
    log-density of the samples as a 2-D histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    real = real.detach().float().cpu()
    ref = centers if centers is not None else real
    lo, hi = float(ref.min()), float(ref.max())
    pad = 0.25 * (hi - lo) + 0.3
    lim = (lo - pad, hi + pad)
    f = samples.detach().float().cpu()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4.5), dpi=100)
    ax1.scatter(real[:, 0], real[:, 1], s=2, c="0.7", label="real", rasterized=True)
    ax1.scatter(f[:, 0], f[:, 1], s=2, c="tab:blue", alpha=0.5, label="generated", rasterized=True)
    if centers is not None:
        ax1.scatter(centers[:, 0], centers[:, 1], marker="x", s=30, c="tab:red", label="modes")
    ax1.legend(loc="upper right", fontsize=7, markerscale=3)
    ax1.set_title("samples", fontsize=9)
    finite = f[torch.isfinite(f).all(1)]
    ax2.hist2d(finite[:, 0].numpy(), finite[:, 1].numpy(), bins=120, range=[lim, lim], norm=LogNorm(), cmap="viridis")
    if centers is not None:
        ax2.scatter(centers[:, 0], centers[:, 1], marker="x", s=20, c="tab:red")
    ax2.set_title("density of generated samples (log)", fontsize=9)
    for ax in (ax1, ax2):
        ax.set_xlim(*lim)
        ax.set_ylim(*lim)
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, format="png")
