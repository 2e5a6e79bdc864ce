"""Dirac-GAN analysis (Mescheder et al. 2018, Sec. 2.1): autograd references for the analytic fields,
the update operator F_h (simultaneous or alternating) and its Jacobian's spectral radius, trajectories,
a verdict per method, and the paper's figure of fields with trajectories. The methods themselves are in
``gankit.dynamics.dirac.methods``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gankit.dynamics.dirac.methods import DIRAC, DiracMethod, Pair, _t, build


# -- autograd references ------------------------------------------------------------------------
def autograd_field(method: DiracMethod, theta: float, psi: float) -> np.ndarray:
    """(-dL_G/dtheta, dL_D/dpsi) by autograd of ``method.losses`` (checks ``method.field``)."""
    th = _t(theta).requires_grad_(True)
    ps = _t(psi).requires_grad_(True)
    loss_g, obj_d = method.losses(th, ps)
    (g_theta,) = torch.autograd.grad(loss_g, th, retain_graph=True)
    (g_psi,) = torch.autograd.grad(obj_d, ps)
    return np.array([-float(g_theta), float(g_psi)])


def autograd_jacobian(method: DiracMethod, at: tuple[float, float] | None = None) -> np.ndarray:
    """v'(theta, psi) of the analytic field by torch.autograd.functional.jacobian in float64."""

    def v(x: Tensor) -> Tensor:
        return torch.stack(method.field(x[0], x[1]))

    return torch.autograd.functional.jacobian(v, _t(at or method.jacobian_point)).numpy()


# -- training operators -------------------------------------------------------------------------
def step(
    method: DiracMethod, theta: Tensor, psi: Tensor, h: float, alternating: bool = False, d_steps: int = 1
) -> Pair:
    """One application of F_h: simultaneous (id + h v) or alternating (F_2^{n_d} o F_1)."""
    if not alternating:
        v_theta, v_psi = method.field(theta, psi)
        return theta + h * v_theta, method.project(psi + h * v_psi)
    theta = theta + h * method.field(theta, psi)[0]
    for _ in range(d_steps):
        psi = method.project(psi + h * method.field(theta, psi)[1])
    return theta, psi


def update_jacobian(method: DiracMethod, h: float, alternating: bool = False, d_steps: int = 1) -> np.ndarray:
    """F_h'(0, 0) from the analytic v'(0, 0): I + h J, or (I + h E_2 J)^{n_d} (I + h E_1 J)."""
    jac, eye = method.jacobian(), np.eye(2)
    if not alternating:
        return eye + h * jac
    e1, e2 = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    return np.linalg.matrix_power(eye + h * e2 @ jac, d_steps) @ (eye + h * e1 @ jac)


def spectral_radius(method: DiracMethod, h: float, alternating: bool = False, d_steps: int = 1) -> float:
    """max |eig F_h'(0, 0)|: < 1 means locally convergent, > 1 divergent (paper Sec. 2.1)."""
    return float(np.abs(np.linalg.eigvals(update_jacobian(method, h, alternating, d_steps))).max())


def trajectory(
    method: DiracMethod,
    start: tuple[float, float] = (1.0, 1.0),
    h: float = 0.1,
    steps: int = 2000,
    alternating: bool = False,
    d_steps: int = 1,
) -> np.ndarray:
    """The iterates (theta_k, psi_k), k = 0..steps, as a (steps + 1, 2) float64 array.

    The start is projected onto the method's constraint first (WGAN: psi into [-c, c]); a run that
    overflows is padded with inf.
    """
    theta, psi = _t(start[0]), method.project(_t(start[1]))
    out = np.empty((steps + 1, 2))
    out[0] = float(theta), float(psi)
    with torch.no_grad():
        for k in range(1, steps + 1):
            theta, psi = step(method, theta, psi, h, alternating, d_steps)
            out[k] = float(theta), float(psi)
            if not math.isfinite(out[k].sum()):
                out[k:] = np.inf
                break
    return out


@dataclass(frozen=True)
class Verdict:
    method: str
    eigenvalues: np.ndarray  # analytic, of v'(0, 0) (one-sided for wgan-gp)
    spectral_radius: float  # of F_h'(0, 0)
    distance: float  # ||(theta_T, psi_T)||
    converges: bool
    path: np.ndarray


def verdict(
    method: str | DiracMethod,
    h: float = 0.1,
    steps: int = 2000,
    alternating: bool = False,
    d_steps: int = 1,
    start: tuple[float, float] = (1.0, 1.0),
    tol: float = 1e-3,
    gamma: float | None = None,
    **options: float,
) -> Verdict:
    """Train from ``start`` for ``steps`` steps; it converges when ||(theta_T, psi_T)|| < tol.

    ``method`` is a registered name (built with ``gamma`` and ``options``) or a built method.
    """
    if isinstance(method, str):
        method = build(method, gamma, **options)
    name = next(n for n in DIRAC.names() if type(method) is DIRAC.get(n))
    path = trajectory(method, start, h, steps, alternating, d_steps)
    dist = float(np.hypot(*path[-1]))
    return Verdict(
        name, method.eigenvalues(), spectral_radius(method, h, alternating, d_steps), dist, bool(dist < tol), path
    )


def plot_verdicts(
    verdicts: list[Verdict], path: str, methods: dict[str, DiracMethod] | None = None, extent: float = 2.0
) -> str:
    """One panel per method: the vector field (streamplot) with the trajectory overlaid (as the paper's figures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(verdicts)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows), squeeze=False)
    grid = np.linspace(-extent, extent, 41)
    th, ps = np.meshgrid(grid, grid)  # x axis theta, y axis psi
    for ax, res in zip(axes.flat, verdicts):
        method = (methods or {}).get(res.method) or build(res.method)
        with torch.no_grad():
            u, w = (x.numpy() for x in method.field(_t(th), _t(ps)))
        ax.streamplot(grid, grid, u, w, color="0.65", density=0.9, linewidth=0.7, arrowsize=0.7)
        pts = res.path[np.isfinite(res.path).all(1)]
        ax.plot(pts[:, 0], pts[:, 1], color="C3", lw=1.0)
        ax.plot(*pts[0], "o", color="C3", ms=4)
        ax.plot(0, 0, "*", color="k", ms=9)
        clip = getattr(method, "clip", None)
        if clip is not None:
            for c in (-clip, clip):
                ax.axhline(c, color="C0", ls=":", lw=0.8)
        ax.set(xlim=(-extent, extent), ylim=(-extent, extent), xlabel="θ", ylabel="ψ")
        ax.set_title(f"{res.method}: {'converges' if res.converges else 'does not converge'}", fontsize=9)
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
