"""The seeds' game-theory identities of the GAN objective, each as numbers one can check.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (Prop. 1, Theorem 1) and the lecture
notes (seeds) on GANs and Wasserstein GANs (Arjovsky et al. 2017):

(a) the optimal discriminator D*(x) = p(x) / (p(x) + q(x)) (Prop. 1), against a trained 1-D MLP;
(b) V(D*, G) = E_p log D* + E_q log(1 - D*) = 2 JSD(p || q) - log 4 (Theorem 1), by quadrature;
(c) JSD(p || q) = log 2 for any disjoint supports, while W1(p, q) = int |F_p - F_q| grows with the
    distance (seeds: "W1(p, q) = d"); the seeds' example p = 1/4 1[1,2] + 1/4 1[3,4] + 1/2 1[9,10],
    q = 1[5,7] has W1 = 3;
(d) the minimax generator loss log(1 - D(G(z))) saturates: its gradient vanishes when D confidently
    rejects fakes (D(G(z)) -> 0), while the non-saturating -log D(G(z)) keeps a gradient of size 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import torch
from scipy import integrate, special, stats
from torch import nn

LOG2 = math.log(2.0)
LOG4 = math.log(4.0)


# -- 1-D densities ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Density:
    """A 1-D density with pdf, cdf, quantile function, a sampler and the points where it has kinks."""

    pdf: Callable[[np.ndarray | float], np.ndarray]  # arrays or single points (the quadratures' integrands)
    cdf: Callable[[np.ndarray | float], np.ndarray]
    ppf: Callable[[np.ndarray], np.ndarray]
    span: tuple[float, float]  # an interval holding all but ~1e-12 of the mass
    breaks: tuple[float, ...] = ()

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.ppf(rng.random(n))


def gaussian(mu: float, sigma: float) -> Density:
    d = stats.norm(mu, sigma)
    return Density(d.pdf, d.cdf, d.ppf, (mu - 12 * sigma, mu + 12 * sigma))


def uniform_mixture(parts: list[tuple[float, float, float]]) -> Density:
    """sum_k w_k U[a_k, b_k] from (w_k, a_k, b_k); e.g. the seeds' p = [(.25, 1, 2), (.25, 3, 4), (.5, 9, 10)]."""
    w = np.array([p[0] for p in parts], dtype=float)
    a = np.array([p[1] for p in parts], dtype=float)
    b = np.array([p[2] for p in parts], dtype=float)
    if not np.isclose(w.sum(), 1.0) or (b <= a).any():
        raise ValueError(f"need weights summing to 1 and a < b, got {parts}")

    def pdf(x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)[..., None]
        return (w / (b - a) * ((x >= a) & (x <= b))).sum(-1)

    def cdf(x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)[..., None]
        return (w * np.clip((x - a) / (b - a), 0.0, 1.0)).sum(-1)

    knots = np.unique(np.concatenate([a, b]))
    levels = cdf(knots)
    rising = np.flatnonzero(np.diff(levels) > 0)  # segments where the cdf is not flat

    def ppf(u: np.ndarray) -> np.ndarray:  # invert the piecewise-linear cdf segment by segment
        u = np.asarray(u, dtype=float)
        seg = rising[np.clip(np.searchsorted(levels[rising + 1], u), 0, len(rising) - 1)]
        c0, c1, x0, x1 = levels[seg], levels[seg + 1], knots[seg], knots[seg + 1]
        return x0 + (u - c0) / (c1 - c0) * (x1 - x0)

    return Density(pdf, cdf, ppf, (float(a.min()), float(b.max())), tuple(knots))


def _integrate(g: Callable[[float], float], *densities: Density) -> float:
    """int g over the union of spans, split at every kink so quad sees smooth pieces only."""
    lo = min(d.span[0] for d in densities)
    hi = max(d.span[1] for d in densities)
    pts = sorted({lo, hi, *(x for d in densities for x in d.breaks if lo <= x <= hi)})
    return float(sum(integrate.quad(g, x0, x1, limit=200)[0] for x0, x1 in zip(pts[:-1], pts[1:])))


# -- (a) the optimal discriminator --------------------------------------------------------------
def optimal_discriminator(p: Density, q: Density, x: np.ndarray) -> np.ndarray:
    """D*(x) = p(x) / (p(x) + q(x)) (Goodfellow et al. 2014, Prop. 1; p real, q generated)."""
    px, qx = p.pdf(x), q.pdf(x)
    return px / (px + qx)


def train_discriminator(
    p: Density, q: Density, steps: int = 500, batch: int = 512, seed: int = 0, lr: float = 1e-2
) -> nn.Module:
    """A 1-32-32-1 MLP trained with the GAN discriminator loss on fresh samples of p (real) and q (fake)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small only loses to thread synchronisation (badly, on a busy machine)
    try:
        return _train(p, q, steps, batch, seed, lr)
    finally:
        torch.set_num_threads(threads)


def _train(p: Density, q: Density, steps: int, batch: int, seed: int, lr: float) -> nn.Module:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    bce = nn.BCEWithLogitsLoss()
    labels = torch.cat([torch.ones(batch, 1), torch.zeros(batch, 1)])
    for _ in range(steps):
        x = np.concatenate([p.sample(batch, rng), q.sample(batch, rng)])
        loss = bce(net(torch.as_tensor(x, dtype=torch.float32)[:, None]), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net


def check_optimal_discriminator(
    p: Density | None = None, q: Density | None = None, steps: int = 500, seed: int = 0, grid: np.ndarray | None = None
) -> dict[str, float]:
    """Max and mean |D_trained - D*| on a grid where p + q holds its mass (default: two Gaussians)."""
    p = p or gaussian(-1.0, 1.0)
    q = q or gaussian(1.0, 0.5)
    grid = np.linspace(-3.0, 2.0, 201) if grid is None else grid
    net = train_discriminator(p, q, steps=steps, seed=seed)
    with torch.no_grad():
        d = torch.sigmoid(net(torch.as_tensor(grid, dtype=torch.float32)[:, None]))[:, 0].double().numpy()
    err = np.abs(d - optimal_discriminator(p, q, grid))
    return {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean())}


# -- (b) V(D*, G) = 2 JSD - log 4 ---------------------------------------------------------------
def value_at_optimum(p: Density, q: Density) -> float:
    """V(D*, G) = int p log D* + q log(1 - D*), by quadrature (0 log 0 = 0)."""

    def g(x: float) -> float:
        px, qx = float(p.pdf(x)), float(q.pdf(x))
        s = px + qx
        return 0.0 if s == 0 else float(special.xlogy(px, px / s) + special.xlogy(qx, qx / s))

    return _integrate(g, p, q)


def jsd(p: Density, q: Density) -> float:
    """JSD(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, by quadrature (nats)."""

    def g(x: float) -> float:
        px, qx = float(p.pdf(x)), float(q.pdf(x))
        m = (px + qx) / 2
        return 0.0 if m == 0 else 0.5 * float(special.xlogy(px, px / m) + special.xlogy(qx, qx / m))

    return _integrate(g, p, q)


# -- (c) JSD saturates, W1 does not -------------------------------------------------------------
def w1(p: Density, q: Density) -> float:
    """W1(p, q) = int |F_p(x) - F_q(x)| dx, the 1-D earth mover's distance."""
    return _integrate(lambda x: abs(float(p.cdf(x)) - float(q.cdf(x))), p, q)


def seeds_example() -> tuple[Density, Density]:
    """The seeds' p = 1/4 1[1,2] + 1/4 1[3,4] + 1/2 1[9,10] and q = 1[5,7] (W1 = 3)."""
    p = uniform_mixture([(0.25, 1.0, 2.0), (0.25, 3.0, 4.0), (0.5, 9.0, 10.0)])
    q = uniform_mixture([(1.0, 5.0, 7.0)])
    return p, q


def jsd_vs_w1(distances: list[float] | np.ndarray, width: float = 1.0) -> list[dict[str, float]]:
    """p = U[0, width], q = U[d, d + width]: JSD stays log 2 once d >= width, W1 = d throughout."""
    p = uniform_mixture([(1.0, 0.0, width)])
    rows = []
    for d in distances:
        q = uniform_mixture([(1.0, float(d), float(d) + width)])
        rows.append({"distance": float(d), "jsd": jsd(p, q), "w1": w1(p, q)})
    return rows


# -- (d) saturation of the minimax generator loss -----------------------------------------------
def generator_gradients(logits: np.ndarray) -> dict[str, np.ndarray]:
    """d/dt of both generator losses at D's logit t on a fake, D(G(z)) = sigmoid(t), by autograd.

    minimax (Goodfellow eq. 1):  log(1 - D(G(z))) = -softplus(t),  gradient -sigmoid(t) -> 0 as t -> -inf;
    non-saturating (Sec. 3):    -log D(G(z))      = softplus(-t),  gradient -sigmoid(-t) -> -1.
    By the chain rule d/dtheta = (d/dt) (dt/dtheta): the same factor multiplies both.
    """
    t = torch.as_tensor(np.asarray(logits, dtype=float), dtype=torch.float64).requires_grad_(True)
    (g_mm,) = torch.autograd.grad(-nn.functional.softplus(t).sum(), t)
    (g_ns,) = torch.autograd.grad(nn.functional.softplus(-t).sum(), t)
    return {"d_fake": torch.sigmoid(t).detach().numpy(), "minimax": g_mm.numpy(), "non_saturating": g_ns.numpy()}


class Identities(TypedDict):
    """What ``run_all`` returns, by identity."""

    optimal_discriminator: dict[str, float]
    value_at_optimum: dict[str, float]
    jsd_vs_w1: list[dict[str, float]]
    seeds_w1: float
    generator_gradients: dict[str, np.ndarray]


def run_all(seed: int = 0, d_steps: int = 500) -> Identities:
    """Every identity as numbers (what ``gankit identities`` prints)."""
    p, q = gaussian(-1.0, 1.0), gaussian(1.0, 0.5)
    sp, sq = seeds_example()
    grads = generator_gradients(np.array([-10.0, -5.0, 0.0, 5.0]))
    return {
        "optimal_discriminator": check_optimal_discriminator(p, q, steps=d_steps, seed=seed),
        "value_at_optimum": {"V(D*,G)": value_at_optimum(p, q), "2JSD-log4": 2 * jsd(p, q) - LOG4},
        "jsd_vs_w1": jsd_vs_w1([1.0, 2.0, 5.0, 10.0]),
        "seeds_w1": w1(sp, sq),
        "generator_gradients": grads,
    }


def plot_identities(path: str, seed: int = 0, d_steps: int = 500) -> str:
    """Three panels: trained D vs D*, JSD and W1 against distance, both generator gradients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, q = gaussian(-1.0, 1.0), gaussian(1.0, 0.5)
    x = np.linspace(-3.0, 2.0, 201)
    net = train_discriminator(p, q, steps=d_steps, seed=seed)
    with torch.no_grad():
        d = torch.sigmoid(net(torch.as_tensor(x, dtype=torch.float32)[:, None]))[:, 0].numpy()
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.4))
    ax[0].plot(x, optimal_discriminator(p, q, x), "k", label="D* = p / (p + q)")
    ax[0].plot(x, d, "C3--", label="trained MLP")
    ax[0].fill_between(x, 0, p.pdf(x) / 2, alpha=0.2, label="p (real)")
    ax[0].fill_between(x, 0, q.pdf(x) / 2, alpha=0.2, label="q (fake)")
    ax[0].set(title="(a) optimal discriminator", xlabel="x")
    ax[0].legend(fontsize=7)
    dist = np.linspace(0.0, 6.0, 25)
    rows = jsd_vs_w1(dist)
    ax[1].plot(dist, [r["jsd"] for r in rows], label="JSD")
    ax[1].plot(dist, [r["w1"] for r in rows], label="W1")
    ax[1].axhline(LOG2, color="0.5", ls=":", label="log 2")
    ax[1].set(title="(c) U[0,1] vs U[d,d+1]", xlabel="d")
    ax[1].legend(fontsize=7)
    t = np.linspace(-10.0, 10.0, 201)
    g = generator_gradients(t)
    ax[2].plot(t, g["minimax"], label="minimax  d/dt log(1 - D)")
    ax[2].plot(t, g["non_saturating"], label="non-saturating  d/dt -log D")
    ax[2].set(title="(d) generator gradient", xlabel="D's logit on a fake, t")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
