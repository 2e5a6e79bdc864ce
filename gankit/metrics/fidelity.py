"""Full-reference image fidelity: how close an output is to its target (translation, super-resolution,
inpainting). Pure functions of (N, C, H, W) float tensors; each returns one value per image.

Images in gankit are in [-1, 1], so ``data_range`` defaults to 2. Both scores are unchanged by
mapping both images affinely to [0, 1] with data_range 1, so they match the papers' numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"expected two (N, C, H, W) batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, 10 log10(L^2 / MSE) dB; infinite for identical images."""
    _check(x, y)
    mse = (x.double() - y.double()).square().flatten(1).mean(1)
    return (10 * torch.log10(data_range**2 / mse)).float()


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised (size, size) Gaussian of Wang et al. (2004): 11 x 11, sigma 1.5."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 2.0,
    size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004, Eq. 13), the mean over channels and over
    every window position inside the image (no padding) of

        SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),

    with Gaussian-weighted local statistics (11 x 11, sigma 1.5), C1 = (k1 L)^2, C2 = (k2 L)^2.
    Images smaller than the window use a window of their size (odd)."""
    _check(x, y)
    n, c, h, w = x.shape
    size = min(size, h - (1 - h % 2), w - (1 - w % 2))
    if size < 1:
        raise ValueError(f"images of {h}x{w} are too small for SSIM")
    win = gaussian_window(size, sigma).to(x.device)[None, None].repeat(c, 1, 1, 1)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, win, groups=c)

    x, y = x.double(), y.double()
    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1).float()
