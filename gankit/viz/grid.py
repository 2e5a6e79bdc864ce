"""Sample grids (images in [-1, 1]) and scatter plots (2-D points), written atomically as PNG."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from gankit.files import atomic_write, save_figure

MIN_CELL = 48


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Write (N, C, H, W) images in [-1, 1] as one PNG grid, ``nrow`` per row (default: square)."""
    from torchvision.utils import save_image

    path = Path(path)
    images = images.detach().float().cpu()
    n = images.shape[0]
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    # Tiny images (16 px digits) are unreadable at 1:1; enlarge to >= MIN_CELL px, keeping pixels crisp.
    scale = max(1, math.ceil(MIN_CELL / images.shape[-1]))
    if scale > 1:
        images = torch.nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
    return atomic_write(
        path,
        lambda tmp: save_image(
            images, tmp, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1), pad_value=1.0, format="png"
        ),
    )


def save_points_plot(
    fake: torch.Tensor,
    path: str | Path,
    real: torch.Tensor | None = None,
    centers: torch.Tensor | None = None,
    title: str = "",
) -> Path:
    """Scatter generated 2-D points (blue) over real ones (grey) and the mode centres (red x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if real is not None:
        r = real.detach().cpu()
        ax.scatter(r[:, 0], r[:, 1], s=2, c="0.7", label="real", rasterized=True)
    f = fake.detach().float().cpu()
    ax.scatter(f[:, 0], f[:, 1], s=2, c="tab:blue", alpha=0.6, label="generated", rasterized=True)
    if centers is not None:
        c = centers.cpu()
        ax.scatter(c[:, 0], c[:, 1], marker="x", s=30, c="tab:red", label="modes")
    ref = torch.cat([t.detach().float().cpu() for t in (real, centers) if t is not None] or [f])
    lo, hi = ref.min().item(), ref.max().item()
    margin = 0.25 * (hi - lo) + 0.1
    ax.set_xlim(lo - margin, hi + margin)
    ax.set_ylim(lo - margin, hi + margin)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, format="png")


def save_samples(
    samples: torch.Tensor,
    path: str | Path,
    real: torch.Tensor | None = None,
    centers: torch.Tensor | None = None,
    title: str = "",
) -> Path:
    """A grid for images (N, C, H, W), a scatter plot for points (N, 2)."""
    if samples.ndim == 4:
        return save_image_grid(samples, path)
    if samples.ndim == 2 and samples.shape[1] == 2:
        return save_points_plot(samples, path, real=real, centers=centers, title=title)
    raise ValueError(f"cannot draw samples of shape {tuple(samples.shape)}: expected (N, C, H, W) or (N, 2)")
