"""Latent-space tools: interpolation (lerp / slerp), the seeds' vector arithmetic, truncation.

* Interpolation grids between z1 and z2 (Radford et al. 2016, Sec. 6.1): linear, or spherical
  (White 2016, "Sampling generative networks"): slerp(z1, z2; t) = sin((1-t) w)/sin(w) z1 +
  sin(t w)/sin(w) z2 with cos w = <z1, z2> / (|z1| |z2|), which keeps |z| typical of N(0, I) in high d.
* Vector arithmetic (Radford et al. 2016, Sec. 6.3.2): average three z's per concept, then
  a - b + c, the "smiling woman - neutral woman + neutral man" of the seeds.
* Truncation (Brock et al. 2019, Sec. 3.1): redraw every |z_i| above a threshold, trading variety for
  fidelity; threshold = inf is plain N(0, I).
"""

from __future__ import annotations

import math
from typing import cast

import torch


def z_dim_of(G: torch.nn.Module) -> int:
    """G's latent size: the ``z_dim`` every generator sets (0 for the image-to-image ones). torch types
    a module's attributes as ``Tensor | Module``; this reads it as the int it is (wrappers that forward
    attributes, such as gankit.training.distributed's DDP, answer too)."""
    return cast(int, G.z_dim)


def lerp(z1: torch.Tensor, z2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(D,), (D,), (T,) -> (T, D): (1 - t) z1 + t z2."""
    t = t.to(z1.dtype).unsqueeze(1)
    return (1 - t) * z1 + t * z2


def slerp(z1: torch.Tensor, z2: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """(D,), (D,), (T,) -> (T, D): spherical interpolation; falls back to lerp for (anti)parallel z."""
    cos = torch.dot(z1, z2) / (z1.norm() * z2.norm()).clamp_min(eps)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-4 or (math.pi - omega).abs() < 1e-4:
        return lerp(z1, z2, t)
    t = t.to(z1.dtype).unsqueeze(1)
    return (torch.sin((1 - t) * omega) * z1 + torch.sin(t * omega) * z2) / torch.sin(omega)


def interpolation_grid(z_pairs: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """(R, 2, D) pairs -> (R * steps, D): one row of ``steps`` latents per pair, endpoints included."""
    if mode not in ("lerp", "slerp"):
        raise ValueError(f"interpolation mode {mode!r}; valid choices: lerp, slerp")
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (the two endpoints), got {steps}")
    t = torch.linspace(0, 1, steps, dtype=z_pairs.dtype)
    fn = slerp if mode == "slerp" else lerp
    return torch.cat([fn(p[0], p[1], t) for p in z_pairs])


def vector_arithmetic(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """mean(a) - mean(b) + mean(c), each (K, D) a few z's showing one concept (K = 3 in the paper)."""
    for name, v in (("a", a), ("b", b), ("c", c)):
        if v.ndim != 2 or v.shape[0] < 1:
            raise ValueError(f"{name} must be (K, D) latents with K >= 1, got {tuple(v.shape)}")
    return a.mean(0) - b.mean(0) + c.mean(0)


def truncated_normal(n: int, dim: int, threshold: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, I) samples whose entries above ``threshold`` in magnitude are redrawn until none is."""
    if threshold <= 0:
        raise ValueError(f"truncation threshold must be > 0, got {threshold}")
    z = torch.randn(n, dim, generator=generator)
    if math.isinf(threshold):
        return z
    bad = z.abs() > threshold
    while bad.any():
        z[bad] = torch.randn(int(bad.sum()), generator=generator)
        bad = z.abs() > threshold
    return z


@torch.no_grad()
def class_morph(G: torch.nn.Module, z: torch.Tensor, class_a: int, class_b: int, steps: int = 8) -> torch.Tensor:
    """Category morphing (Brock et al. 2019, Fig. 8; Miyato & Koyama 2018, Fig. 6): one z, with the class
    embedding lerped from class_a's to class_b's in ``steps`` frames; (steps, C, H, W) on the CPU.

    Needs a generator with a shared class embedding (``G.embed(y)`` and ``G(z, class_embedding=...)``:
    ``biggan``); per-layer class tables (resnet's CBN) have no single embedding to interpolate.
    """
    embed = getattr(G, "embed", None)
    if not callable(embed):
        raise ValueError(
            f"class morphing needs a generator with a shared class embedding (biggan); {type(G).__name__} has none"
        )
    k = int(getattr(G, "num_classes", 0))
    if not (0 <= class_a < k and 0 <= class_b < k):
        raise ValueError(f"classes {class_a} and {class_b} must be in 0..{k - 1}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    device = next(G.parameters()).device
    ends = embed(torch.tensor([class_a, class_b], device=device))
    emb = lerp(ends[0], ends[1], torch.linspace(0, 1, steps, device=device))
    zs = z.reshape(1, -1).to(device).expand(steps, -1)
    return G(zs, class_embedding=emb).float().cpu()


@torch.no_grad()
def generate(
    G: torch.nn.Module,
    num: int,
    seed: int | None = 0,
    batch_size: int = 500,
    labels: torch.Tensor | None = None,
    truncation: float = float("inf"),
    z: torch.Tensor | None = None,
    psi: float = 1.0,
) -> torch.Tensor:
    """``num`` samples of G (or G(z) for given latents), as float32 on the CPU.

    The latents are ``torch.randn(num, G.z_dim)`` drawn on the CPU from
    ``torch.Generator().manual_seed(seed)`` (``seed=None``: from torch's global RNG), so a seed gives
    the same samples on every device; ``truncation`` redraws |z_i| above it (Brock et al. 2019);
    ``psi`` < 1 truncates in w space, w_avg + psi (w - w_avg) (StyleGAN only, Karras et al. 2019,
    Sec. 3.1 / App. B)."""
    if not getattr(G, "z_dim", 0):
        raise ValueError(
            f"{type(G).__name__} translates images (an image-to-image family) and draws nothing from "
            "noise; its run's samples/ grids show input | output | target on held-out images"
        )
    if psi != 1.0 and not callable(getattr(G, "truncate", None)):
        raise ValueError(
            f"--psi truncates StyleGAN's w space; {type(G).__name__} has none (use --truncation for z-space truncation)"
        )
    kw = {"psi": psi} if psi != 1.0 else {}

    if z is None:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        z = truncated_normal(num, z_dim_of(G), truncation, generator=gen)
    device = next(G.parameters()).device
    out = []
    for i in range(0, num, batch_size):
        y = labels[i : i + batch_size].to(device) if labels is not None else None
        zi = z[i : i + batch_size].to(device)
        out.append((G(zi, y, **kw) if y is not None else G(zi, **kw)).float().cpu())
    return torch.cat(out)
