"""Kernel and transport distances between feature sets: KID, Gaussian-kernel MMD, sliced Wasserstein.

All sums run in float64 so that the unbiased estimators, which subtract nearly equal sums, keep
their digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def polynomial_kernel(degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> Kernel:
    """k(x, y) = (gamma <x, y> + coef0)^degree, gamma = 1/d by default (Bińkowski et al. 2018)."""

    def k(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = gamma if gamma is not None else 1.0 / x.shape[1]
        return (g * (x @ y.T) + coef0) ** degree

    return k


def gaussian_kernel(sigma: float) -> Kernel:
    """k(x, y) = exp(-||x - y||^2 / (2 sigma^2))."""

    def k(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.cdist(x, y).square() / (2.0 * sigma**2))

    return k


def _kernel_sums(k: Kernel, x: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> tuple[float, float]:
    """(sum of k(x_i, y_j) over all i, j; sum of the diagonal k(x_i, y_i) when x is y) in chunks."""
    total, diag = 0.0, 0.0
    for i in range(0, x.shape[0], chunk):
        block = k(x[i : i + chunk], y)
        total += float(block.sum())
        if x is y:
            diag += float(block.diagonal(offset=i).sum()) if block.shape[1] > i else 0.0
    return total, diag


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, kernel: Kernel) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012, Eq. 3): within-set means exclude i = j.

    MMD^2 = E k(x, x') - 2 E k(x, y) + E k(y, y'), the lecture notes' formula squared, with x, x'
    independent draws (hence no diagonal terms). It can be slightly negative when P = Q.
    """
    x, y = x.to(torch.float64), y.to(torch.float64)
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"MMD needs at least 2 samples per set, got {m} and {n}")
    kxx, dxx = _kernel_sums(kernel, x, x)
    kyy, dyy = _kernel_sums(kernel, y, y)
    kxy, _ = _kernel_sums(kernel, x, y)
    return (kxx - dxx) / (m * (m - 1)) + (kyy - dyy) / (n * (n - 1)) - 2.0 * kxy / (m * n)


def kid(
    x: torch.Tensor,
    y: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 2020,
) -> dict[str, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018, Sec. 3): unbiased MMD^2 with the cubic
    polynomial kernel k(x, y) = (<x, y>/d + 1)^3, averaged over ``subsets`` random subsets of
    ``subset_size`` from each set; returns its mean and standard deviation.

    Subsets are drawn as in torch-fidelity and the authors' code (numpy ``RandomState(seed)``,
    without replacement, x before y), so equal seeds give equal numbers.
    """
    n1, n2 = x.shape[0], y.shape[0]
    if subset_size > min(n1, n2) or subset_size < 2:
        raise ValueError(
            f"KID subset_size {subset_size} must be in [2, min(N) = {min(n1, n2)}]; "
            "lower subset_size or evaluate more samples"
        )
    rng = np.random.RandomState(seed)
    kernel = polynomial_kernel(degree, gamma, coef0)
    x64, y64 = x.to(torch.float64), y.to(torch.float64)
    vals = []
    for _ in range(subsets):
        i = torch.from_numpy(rng.choice(n1, subset_size, replace=False))
        j = torch.from_numpy(rng.choice(n2, subset_size, replace=False))
        a, b = x64[i], y64[j]
        m = subset_size
        kxx, kyy, kxy = kernel(a, a), kernel(b, b), kernel(a, b)
        vals.append(
            float(
                (kxx.sum() - kxx.trace()) / (m * (m - 1))
                + (kyy.sum() - kyy.trace()) / (m * (m - 1))
                - 2.0 * kxy.sum() / (m * m)
            )
        )
    t = torch.tensor(vals, dtype=torch.float64)
    return {"kid": float(t.mean()), "kid_std": float(t.std(unbiased=False))}


def median_heuristic(x: torch.Tensor, y: torch.Tensor, max_points: int = 1000, seed: int = 0) -> float:
    """Median pairwise distance of the pooled sample (Gretton et al. 2012), on at most ``max_points``."""
    pooled = torch.cat([x, y]).to(torch.float64)
    if pooled.shape[0] > max_points:
        pooled = pooled[torch.randperm(pooled.shape[0], generator=torch.Generator().manual_seed(seed))[:max_points]]
    d = torch.cdist(pooled, pooled)
    return float(d[torch.triu(torch.ones_like(d, dtype=torch.bool), diagonal=1)].median())


def gaussian_mmd(x: torch.Tensor, y: torch.Tensor, sigma: float | None = None) -> dict[str, float]:
    """Kernel MMD with a Gaussian kernel (the lecture notes' definition; Gretton et al. 2012):

        MMD(P_r, P_g) = ( E[k(x_r, x_r') - 2 k(x_r, x_g) + k(x_g, x_g')] )^(1/2)

    ``sigma`` defaults to the median heuristic. Returns the unbiased ``mmd2``, ``mmd`` =
    sqrt(max(mmd2, 0)) and the ``mmd_sigma`` used.
    """
    s = sigma if sigma is not None else median_heuristic(x, y)
    if not s > 0:
        raise ValueError(f"Gaussian MMD needs sigma > 0, got {s} (are all samples identical?)")
    m2 = mmd2_unbiased(x, y, gaussian_kernel(s))
    return {"mmd2": m2, "mmd": math.sqrt(max(m2, 0.0)), "mmd_sigma": s}


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, num_projections: int = 128, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance (Rabin et al. 2011; Deshpande et al. 2018):

        SW_2(P, Q) = ( E_theta W_2^2(theta#P, theta#Q) )^(1/2),  theta uniform on the unit sphere,

    with the expectation over ``num_projections`` fixed random directions and each 1-D W_2 computed
    exactly from sorted projections. Sets of unequal size are compared at the quantiles
    (i + 1/2) / n of the smaller one.
    """
    if x.shape[1:] != y.shape[1:] or x.ndim != 2:
        raise ValueError(f"sliced Wasserstein needs (N, d) and (M, d), got {tuple(x.shape)} and {tuple(y.shape)}")
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(x.shape[1], num_projections, generator=g, dtype=torch.float64)
    theta /= theta.norm(dim=0, keepdim=True)
    px = (x.to(torch.float64) @ theta).sort(dim=0).values
    py = (y.to(torch.float64) @ theta).sort(dim=0).values
    n = min(px.shape[0], py.shape[0])
    if px.shape[0] != py.shape[0]:
        q = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        px = torch.quantile(px, q, dim=0, interpolation="linear") if px.shape[0] != n else px
        py = torch.quantile(py, q, dim=0, interpolation="linear") if py.shape[0] != n else py
    return float((px - py).square().mean().sqrt())
