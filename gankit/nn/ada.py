"""ADA's non-leaking augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data", Sec. 2.2-2.3 and App. B), pure PyTorch.

Every op is applied to each image independently with probability ``p``. An op applied with probability
p < 1 is non-leaking: its distribution of outputs is invertible (the augmented distribution still pins
down the clean one), so G learns clean images while D sees augmented ones; Karras et al. find p up to
about 0.8 safe. The geometric ops compose into one affine map per image, resampled once (bilinear,
reflected borders), and every op is differentiable in the pixels, so G's gradient passes through:

    xflip       x -> -x with probability p
    rot90       a rotation by a multiple of 90 degrees, uniform in {0, 1, 2, 3}
    int. trans. a shift by (tx, ty) ~ U(-0.125, 0.125) of the image side, rounded to whole pixels
    iso. scale  a zoom by 2^N(0, 0.2^2)
    brightness  x + N(0, 0.2^2)
    contrast    mean + (x - mean) * 2^N(0, 0.5^2)
    saturation  (RGB) the deviation from the per-pixel grey scaled by 2^N(0, 1)

Images are (N, C, H, W) on the [-1, 1] scale; the random draws come from the global RNG (which
checkpoints keep), so a resumed run augments exactly as an uninterrupted one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

OPS = ("xflip", "rot90", "translation", "scale", "brightness", "contrast", "saturation")


def _gate(p: torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    """1 for the images an op applies to (each with probability ``p``), else 0; shape (n,)."""
    return (torch.rand(n, device=device) < p).float()


def _geometric(x: torch.Tensor, p: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
    n, _, h, w = x.shape
    dev = x.device
    eye = torch.eye(3, device=dev).expand(n, 3, 3)
    m = eye.clone()
    if "xflip" in ops:
        s = 1 - 2 * _gate(p, n, dev)
        m = m @ _scale(s, torch.ones_like(s))
    if "rot90" in ops:
        k = torch.randint(4, (n,), device=dev) * _gate(p, n, dev)
        m = m @ _rotation(k * (math.pi / 2))
    if "translation" in ops:
        g = _gate(p, n, dev)
        t = (torch.rand(n, 2, device=dev) * 2 - 1) * 0.125
        # whole pixels, in the [-1, 1] grid units grid_sample uses (one pixel = 2 / size)
        tx = torch.round(t[:, 0] * w) * 2 / w * g
        ty = torch.round(t[:, 1] * h) * 2 / h * g
        m = m @ _translation(tx, ty)
    if "scale" in ops:
        s = torch.exp2(torch.randn(n, device=dev) * 0.2 * _gate(p, n, dev))
        m = m @ _scale(s, s)
    if torch.equal(m, eye):
        return x
    grid = F.affine_grid(m[:, :2, :].to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(sx.shape[0], 3, 3, device=sx.device)
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = sx, sy, 1
    return m


def _rotation(a: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(a.shape[0], 3, 3, device=a.device)
    c, s = torch.cos(a).round(decimals=6), torch.sin(a).round(decimals=6)  # exact multiples of 90 degrees
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1], m[:, 2, 2] = c, -s, s, c, 1
    return m


def _translation(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=tx.device).repeat(tx.shape[0], 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _colour(x: torch.Tensor, p: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
    n, dev = x.shape[0], x.device
    if "brightness" in ops:
        x = x + (torch.randn(n, device=dev) * 0.2 * _gate(p, n, dev)).view(n, 1, 1, 1).to(x.dtype)
    if "contrast" in ops:
        g = _gate(p, n, dev).view(n, 1, 1, 1)
        c = torch.exp2(torch.randn(n, device=dev) * 0.5).view(n, 1, 1, 1).to(x.dtype)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = torch.where(g > 0, mean + (x - mean) * c, x)  # untouched images stay bit-exact
    if "saturation" in ops and x.shape[1] == 3:
        g = _gate(p, n, dev).view(n, 1, 1, 1)
        s = torch.exp2(torch.randn(n, device=dev)).view(n, 1, 1, 1).to(x.dtype)
        grey = x.mean(dim=1, keepdim=True)
        x = torch.where(g > 0, grey + (x - grey) * s, x)
    return x


def ada_augment(x: torch.Tensor, p: torch.Tensor | float, ops: tuple[str, ...] = OPS) -> torch.Tensor:
    """``x`` with each op of ``ops`` applied to each image with probability ``p`` (a float or a 0-d tensor,
    which may live on the device: no host sync)."""
    if x.ndim != 4:
        raise ValueError(f"ADA augments images (N, C, H, W); got a tensor of shape {tuple(x.shape)}")
    p_t = torch.as_tensor(p, device=x.device, dtype=torch.float32)
    return _colour(_geometric(x, p_t, ops), p_t, ops)
