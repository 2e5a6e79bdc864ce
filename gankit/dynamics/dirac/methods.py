"""Dirac-GAN: the smallest GAN that shows which training methods converge.

Mescheder, Geiger & Nowozin, "Which Training Methods for GANs do actually Converge?", ICML 2018
(arXiv:1801.04406): Sec. 2 (the Dirac-GAN) and Sec. 3 (regularisation strategies). The data
distribution is p_D = delta_0, the generator G = delta_theta, the discriminator linear,
D_psi(x) = psi * x, and the training objective of their Sec. 2.1 (the seeds' L(theta, phi)) becomes

    L(theta, psi) = f(psi * theta) + f(0),

minimised by the generator and maximised by the discriminator; f(t) = -log(1 + exp(-t)) for the GAN
of Goodfellow et al. (f'(0) = 1/2, f''(0) = -1/4) and f(t) = t for WGAN (f'(0) = 1; the seeds write
f(t) = -t, the same game after psi -> -psi). The unique equilibrium is (theta, psi) = (0, 0).

Training is a fixed-point iteration of an operator F_h on (theta, psi) (paper Sec. 2.1):
simultaneous gradient descent F_h = id + h v, with the gradient vector field

    v(theta, psi) = (-dL_G/dtheta, dL_D/dpsi),

and alternating gradient descent F_h = F_{2,h}^{n_d} o F_{1,h} (generator step first, then n_d
discriminator steps, the order of the paper and the seeds). Locally, F_h converges when the spectral
radius of its Jacobian F_h'(0, 0) is below 1 and does not when it is above 1 (paper Sec. 2.1); the
continuous system converges when every eigenvalue of v'(0, 0) has negative real part.

Each method below is a small dataclass that gives its losses (for autograd checks), its analytic
vector field (torch, any shape, float64), the analytic Jacobian v'(0, 0) and the paper's closed-form
eigenvalues, and an optional projection applied after a discriminator step (WGAN clipping).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from gankit.registry import Registry

DIRAC = Registry("dirac method")
Pair = tuple[Tensor, Tensor]


# -- the objective's function f and its derivatives ---------------------------------------------
@dataclass(frozen=True)
class Game:
    """f, f' and f'' of the objective in L = E f(D(G(z))) + E f(-D(x)) (paper Sec. 2.1)."""

    name: str
    f: Callable[[Tensor], Tensor]
    df: Callable[[Tensor], Tensor]
    d2f: Callable[[Tensor], Tensor]

    @property
    def df0(self) -> float:
        return float(self.df(torch.zeros((), dtype=torch.float64)))

    @property
    def d2f0(self) -> float:
        return float(self.d2f(torch.zeros((), dtype=torch.float64)))


GAN_GAME = Game(
    "gan", lambda t: -F.softplus(-t), lambda t: torch.sigmoid(-t), lambda t: -torch.sigmoid(t) * torch.sigmoid(-t)
)
WGAN_GAME = Game("wgan", lambda t: t, torch.ones_like, torch.zeros_like)


def _t(x: float | tuple[float, ...] | np.ndarray | Tensor) -> Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def conjugate_pair(re: float, disc: float) -> np.ndarray:
    """The roots re +- sqrt(disc) (complex when disc < 0), sorted by imaginary then real part."""
    root = np.sqrt(complex(disc))
    return np.sort_complex(np.array([re - root, re + root], dtype=complex))


class DiracMethod:
    """Base: the plain game L(theta, psi) = f(psi theta) + f(0), no regulariser, no constraint."""

    game: ClassVar[Game] = GAN_GAME
    #: the point where ``jacobian()`` is the derivative of ``field`` (the equilibrium unless noted)
    jacobian_point: ClassVar[tuple[float, float]] = (0.0, 0.0)

    def value(self, theta: Tensor, psi: Tensor) -> Tensor:
        return self.game.f(psi * theta) + self.game.f(torch.zeros_like(psi))

    def losses(self, theta: Tensor, psi: Tensor) -> Pair:
        """(generator loss to MINIMISE, discriminator objective to MAXIMISE)."""
        val = self.value(theta, psi)
        return val, val

    def field(self, theta: Tensor, psi: Tensor) -> Pair:
        df = self.game.df(psi * theta)
        return -psi * df, theta * df

    def jacobian(self) -> np.ndarray:
        a = self.game.df0
        return np.array([[0.0, -a], [a, 0.0]])

    def eigenvalues(self) -> np.ndarray:
        """Closed form of the paper: {-f'(0) i, +f'(0) i} (Sec. 2.2)."""
        return conjugate_pair(0.0, -(self.game.df0**2))

    def project(self, psi: Tensor) -> Tensor:
        """Constraint applied after each discriminator step (identity unless the method clips)."""
        return psi


@DIRAC.register("gan")
@dataclass
class Gan(DiracMethod):
    """Unregularised GAN, f(t) = -log(1 + e^-t): eigenvalues +-f'(0) i, not convergent (paper Sec. 2.2)."""


@DIRAC.register("ns-gan")
@dataclass
class NsGan(DiracMethod):
    """Non-saturating GAN: G minimises -f(-psi theta); same Jacobian +-f'(0) i (paper Sec. 2.2)."""

    def losses(self, theta: Tensor, psi: Tensor) -> Pair:
        return -self.game.f(-psi * theta), self.value(theta, psi)

    def field(self, theta: Tensor, psi: Tensor) -> Pair:
        return -psi * self.game.df(-psi * theta), theta * self.game.df(psi * theta)


@DIRAC.register("wgan")
@dataclass
class Wgan(DiracMethod):
    """WGAN, f(t) = t, psi clipped to [-c, c] after each D step: eigenvalues +-i, not convergent (Sec. 3)."""

    game: ClassVar[Game] = WGAN_GAME
    clip: float = 0.3  # the paper's code uses c = 0.3

    def project(self, psi: Tensor) -> Tensor:
        return psi.clamp(-self.clip, self.clip)


@DIRAC.register("wgan-gp")
@dataclass
class WganGp(DiracMethod):
    """WGAN-GP: D also pays gamma/2 (|psi| - g0)^2 (paper Sec. 3; Gulrajani et al. 2017).

    The brief's lambda (|psi| - g0)^2 is this with lambda = gamma/2. The field
    v = (-psi, theta - gamma sign(psi)(|psi| - g0)) JUMPS by 2 gamma g0 across psi = 0: near the
    equilibrium the penalty pushes psi away from 0 towards +-g0, so gradient descent with any fixed
    h and n_d does not converge to (0, 0) (paper Sec. 3, WGAN-GP). ``jacobian()`` is therefore the ONE-SIDED
    Jacobian for psi -> 0+, [[0, -1], [1, -gamma]], eigenvalues (-gamma +- sqrt(gamma^2 - 4)) / 2:
    its negative real parts say nothing about convergence, the jump decides.
    """

    game: ClassVar[Game] = WGAN_GAME
    jacobian_point: ClassVar[tuple[float, float]] = (0.0, 1e-3)  # the field is affine for psi > 0
    gamma: float = 1.0
    g0: float = 1.0  # target gradient norm, 1 as in WGAN-GP (the paper's code uses 0.3)

    def losses(self, theta: Tensor, psi: Tensor) -> Pair:
        val = self.value(theta, psi)
        return val, val - self.gamma / 2 * (psi.abs() - self.g0) ** 2

    def field(self, theta: Tensor, psi: Tensor) -> Pair:
        return -psi, theta - self.gamma * torch.sign(psi) * (psi.abs() - self.g0)

    def jacobian(self) -> np.ndarray:
        return np.array([[0.0, -1.0], [1.0, -self.gamma]])

    def eigenvalues(self) -> np.ndarray:
        return conjugate_pair(-self.gamma / 2, self.gamma**2 / 4 - 1.0)


@functools.cache
def _hermite(n: int) -> tuple[Tensor, Tensor]:
    """Nodes and weights of E g(eps), eps ~ N(0, 1): exact for polynomials of degree < 2n."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return _t(x), _t(w / w.sum())


@DIRAC.register("instance-noise")
@dataclass
class InstanceNoise(DiracMethod):
    """Instance noise (Sonderby et al. 2017; Arjovsky & Bottou 2017), the expected game over x + eps.

    L = E_eps f(psi (theta + eps)) + E_eps f(-psi eps), eps ~ N(0, sigma^2), computed by
    Gauss-Hermite quadrature. Eigenvalues f''(0) sigma^2 +- sqrt(f''(0)^2 sigma^4 - f'(0)^2)
    (paper Sec. 3, instance noise): negative real part for sigma > 0, so the game converges.
    """

    sigma: float = 1.0
    nodes: int = 48

    def _eps(self) -> tuple[Tensor, Tensor]:
        x, w = _hermite(self.nodes)
        return self.sigma * x, w

    def value(self, theta: Tensor, psi: Tensor) -> Tensor:
        eps, w = self._eps()
        th, ps = theta[..., None], psi[..., None]
        f = self.game.f
        return ((f(ps * (th + eps)) + f(-ps * eps)) * w).sum(-1)

    def field(self, theta: Tensor, psi: Tensor) -> Pair:
        eps, w = self._eps()
        th, ps = theta[..., None], psi[..., None]
        df = self.game.df(ps * (th + eps))
        v_theta = (-ps * df * w).sum(-1)
        v_psi = (((th + eps) * df - eps * self.game.df(-ps * eps)) * w).sum(-1)
        return v_theta, v_psi

    def jacobian(self) -> np.ndarray:
        a, b = self.game.df0, self.game.d2f0
        return np.array([[0.0, -a], [a, 2 * b * self.sigma**2]])

    def eigenvalues(self) -> np.ndarray:
        a, b, s2 = self.game.df0, self.game.d2f0, self.sigma**2
        return conjugate_pair(b * s2, b**2 * s2**2 - a**2)


def _grad_penalty(psi: Tensor, x: Tensor) -> Tensor:
    """||d/dx D_psi(x)||^2 by autograd, D_psi(x) = psi x (the zero-centred penalties of paper Sec. 3-4)."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad((psi * x).sum(), x, create_graph=True)
    return g**2


@DIRAC.register("r1")
@dataclass
class R1(DiracMethod):
    """R1 = gamma/2 E_{p_D} ||grad D(x)||^2 = gamma/2 psi^2 (paper Sec. 3 and 4.1, Theorem 4.1).

    Eigenvalues -gamma/2 +- sqrt(gamma^2/4 - f'(0)^2) (paper Sec. 3, zero-centred gradient penalties;
    the seeds print gamma/4 under the root, a typo), i.e. (-gamma +- sqrt(gamma^2 - 4 f'(0)^2)) / 2:
    negative real part for every gamma > 0; critically damped (double root -gamma/2) at
    gamma = 2 f'(0) = 1 for the GAN.
    """

    gamma: float = 1.0

    def _penalty_at(self, theta: Tensor) -> Tensor:
        return torch.zeros_like(theta)  # real data: x = 0

    def losses(self, theta: Tensor, psi: Tensor) -> Pair:
        val = self.value(theta, psi)
        return val, val - self.gamma / 2 * _grad_penalty(psi, self._penalty_at(theta))

    def field(self, theta: Tensor, psi: Tensor) -> Pair:
        v_theta, v_psi = super().field(theta, psi)
        return v_theta, v_psi - self.gamma * psi

    def jacobian(self) -> np.ndarray:
        a = self.game.df0
        return np.array([[0.0, -a], [a, -self.gamma]])

    def eigenvalues(self) -> np.ndarray:
        return conjugate_pair(-self.gamma / 2, self.gamma**2 / 4 - self.game.df0**2)


@DIRAC.register("r2")
@dataclass
class R2(R1):
    """R2 = gamma/2 E_{p_theta} ||grad D(x)||^2 on generated data (paper Sec. 4.1): also gamma/2
    psi^2 for the linear Dirac discriminator, so the same field and eigenvalues as R1."""

    def _penalty_at(self, theta: Tensor) -> Tensor:
        return theta  # fake data: x = theta


@DIRAC.register("consensus")
@dataclass
class Consensus(DiracMethod):
    """Consensus optimisation (Mescheder et al. 2017, "The Numerics of GANs", Sec. 4) on the GAN.

    Both players add the penalty gamma/2 ||v||^2 (G to its loss, D subtracting it from its objective),
    so w = v - gamma grad(1/2 ||v||^2) = v - gamma v'^T v. At the equilibrium v = 0 and
    w' = v' - gamma v'^T v', eigenvalues -gamma f'(0)^2 +- f'(0) i (paper Sec. 3, consensus optimisation):
    convergent.
    """

    gamma: float = 1.0

    def losses(self, theta: Tensor, psi: Tensor) -> Pair:
        # theta and psi must require grad: the penalty is built from the game's own gradients
        val = self.value(theta, psi)
        g_theta, g_psi = torch.autograd.grad(val, (theta, psi), create_graph=True)
        reg = self.gamma / 2 * (g_theta**2 + g_psi**2)
        return val + reg, val - reg

    def field(self, theta: Tensor, psi: Tensor) -> Pair:
        s = psi * theta
        df, d2f = self.game.df(s), self.game.d2f(s)
        r2 = theta**2 + psi**2  # 1/2 ||v||^2 = 1/2 r2 f'(s)^2
        grad_theta = theta * df**2 + r2 * df * d2f * psi
        grad_psi = psi * df**2 + r2 * df * d2f * theta
        return -psi * df - self.gamma * grad_theta, theta * df - self.gamma * grad_psi

    def jacobian(self) -> np.ndarray:
        a = self.game.df0
        return np.array([[-self.gamma * a**2, -a], [a, -self.gamma * a**2]])

    def eigenvalues(self) -> np.ndarray:
        a = self.game.df0
        return conjugate_pair(-self.gamma * a**2, -(a**2))


METHODS: tuple[str, ...] = ("gan", "ns-gan", "wgan", "wgan-gp", "instance-noise", "r1", "r2", "consensus")
CONVERGES: dict[str, bool] = {  # the paper's verdicts (Sec. 2-3)
    "gan": False,
    "ns-gan": False,
    "wgan": False,
    "wgan-gp": False,
    "instance-noise": True,
    "r1": True,
    "r2": True,
    "consensus": True,
}


def build(name: str, gamma: float | None = None, **options: float) -> DiracMethod:
    """``DIRAC.build`` that drops ``gamma`` for methods without one (so a CLI --gamma fits all)."""
    if gamma is not None and "gamma" in DIRAC.options(name):
        options["gamma"] = gamma
    return DIRAC.build(name, **options)
