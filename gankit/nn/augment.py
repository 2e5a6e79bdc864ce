"""Differentiable image augmentations (DiffAugment, Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training", Sec. 3 and their policy "color,translation,cutout").

Each op draws one random transform per sample from the global RNG (which checkpoints keep) and is
differentiable in the pixels, so the generator's gradient passes through the augmentation of its
samples. Images are (N, C, H, W) on the [-1, 1] scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def _uniform(n: int, x: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype)


def color(x: torch.Tensor) -> torch.Tensor:
    """Brightness + U(-0.5, 0.5); saturation: each pixel's deviation from its channel mean scaled by
    U(0, 2); contrast: the deviation from the image mean scaled by U(0.5, 1.5) (DiffAugment's ranges)."""
    n = x.shape[0]
    x = x + (_uniform(n, x) - 0.5)
    if x.shape[1] > 1:  # saturation is meaningless for one channel
        m = x.mean(dim=1, keepdim=True)
        x = (x - m) * (_uniform(n, x) * 2.0) + m
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * (_uniform(n, x) + 0.5) + m


def translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its height and width in each direction;
    the uncovered border is filled by reflection (as StyleGAN2-ADA does, so that no hard edge tells D
    the image was shifted), not by a constant."""
    n, c, h, w = x.shape
    sh, sw = round(h * ratio), round(w * ratio)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (n, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1), device=x.device)
    padded = F.pad(x, (sw, sw, sh, sh), mode="reflect")
    rows = (torch.arange(h, device=x.device)[None] + sh + dy)[:, None, :, None]  # (n, 1, h, 1)
    cols = (torch.arange(w, device=x.device)[None] + sw + dx)[:, None, None, :]  # (n, 1, 1, w)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of side ``ratio`` of the image per sample, centred anywhere in the image (its
    parts outside the image are dropped); 0 is mid-grey on the [-1, 1] scale."""
    n, _, h, w = x.shape
    ch, cw = round(h * ratio), round(w * ratio)
    if ch == 0 or cw == 0:
        return x
    top = torch.randint(0, h, (n, 1, 1), device=x.device) - ch // 2  # the square's centre is in the image
    left = torch.randint(0, w, (n, 1, 1), device=x.device) - cw // 2
    ys = torch.arange(h, device=x.device)[None, :, None] - top
    xs = torch.arange(w, device=x.device)[None, None, :] - left
    inside = (ys >= 0) & (ys < ch) & (xs >= 0) & (xs < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def diff_augment(
    x: torch.Tensor, policy: tuple[str, ...], translation: float = 0.125, cutout_ratio: float = 0.5
) -> torch.Tensor:
    """Apply the ops of ``policy`` in DiffAugment's order (color, translation, cutout)."""
    if "color" in policy:
        x = color(x)
    if "translation" in policy:
        x = translate(x, translation)
    if "cutout" in policy:
        x = cutout(x, cutout_ratio)
    return x
