"""Adversarial objectives: scalar losses computed from discriminator outputs.

An objective turns what D says about a real batch and a fake batch into two scalars, the
discriminator loss ``d_loss(real, fake)`` and the generator loss ``g_loss(fake)``. Both are means
over every element of ``DOut.logits``: (N,) scores or patch scores (N, ...) alike.

Inputs are raw logits, never probabilities; the log-sigmoid losses use the ``softplus`` forms
(``-log sigmoid(t) = softplus(-t)``, ``-log(1 - sigmoid(t)) = softplus(t)``), which stay finite
for any logit. ``ebgan`` and ``began`` (``energy = True``) take per-sample reconstruction
energies >= 0 from an autoencoder discriminator instead of logits.

A discriminator loss is the real-term mean plus the fake-term mean, with no extra 1/2, except
where the paper's own formula carries factors (LSGAN's 1/2).

Registered objectives (recipe key ``objective``)::

    name                 D loss                                G loss
    minimax              -E log s(r) - E log(1 - s(f))         E log(1 - s(f))      (saturating)
    non-saturating       same as minimax                       -E log s(f)
    maximum-likelihood   same as minimax                       -1/2 E exp(f)
    wasserstein          E f - E r                             -E f
    least-squares        1/2 E(r - b)^2 + 1/2 E(f - a)^2       1/2 E(f - c)^2       (a, b, c)
    hinge                E relu(1 - r) + E relu(1 + f)         -E f
    relativistic         E sp(-(r - f))                        E sp(-(f - r))       (paired samples; RpGAN)
    relativistic-average E sp(-(r - E f)) + E sp(f - E r)      E sp(r - E f) + E sp(-(f - E r))   (RaGAN)
    ebgan                E e_r + E [m - e_f]_+                 E e_f                (m)
    began                E e_r - k_t E e_f                     E e_f                (gamma, lambda_k, k_init)

(s = sigmoid, sp = softplus, r / f = D's outputs on real / fake data, e = energies. The relativistic
G losses read D's outputs on real data: every family passes them, ``g_loss(fake, real)``.)

Options go next to the name in a recipe, e.g.::

    objective: {name: least-squares, a: -1.0, b: 1.0, c: 0.0}

or on the command line: ``objective.name=hinge``, ``objective.m=2.0``.

The trainer calls ``update(real, fake)`` after every D loss with the detached D outputs of that
step (BEGAN's k_t control), saves ``state_dict()`` in checkpoints and logs ``log_values()``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.registry import Registry

OBJECTIVES = Registry("objective")


class Objective:
    """Base class: stateless by default; subclasses override ``d_loss`` and ``g_loss``."""

    energy: bool = False  # True: D outputs are reconstruction energies >= 0, not logits
    # True: g_loss reads D's outputs on real data (relativistic losses). Every family passes them to
    # ``g_loss(fake, real)``; it computes them (one more D pass) only when this says they are read.
    g_uses_real: bool = False

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def update(self, real: Tensor, fake: Tensor) -> None:
        """Called after each D step with that step's detached D outputs; stateless: nothing."""

    def state_dict(self) -> dict[str, Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} is stateless but got state keys {sorted(state)}")

    def log_values(self) -> dict[str, Tensor]:
        return {}

    def to(self, device: torch.device | str) -> Objective:
        return self

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in vars(self).items() if isinstance(v, (int, float)))
        return f"{type(self).__name__}({opts})"


class _LogisticD(Objective):
    """The cross-entropy discriminator shared by the three Goodfellow generators."""

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.softplus(-real).mean() + F.softplus(fake).mean()


@OBJECTIVES.register("minimax")
class Minimax(_LogisticD):
    """Original minimax GAN with the saturating generator loss (Goodfellow et al. 2014).

    min_G max_D E_x log D(x) + E_z log(1 - D(G(z))), with D = sigmoid(logit):
      D loss: -E log s(r) - E log(1 - s(f)) = E softplus(-r) + E softplus(f)
      G loss:  E log(1 - s(f))              = -E softplus(f)
    The G gradient vanishes when D confidently rejects fakes (f -> -inf): that saturation is the
    point of keeping this loss, for comparison with ``non-saturating``. No deviation.
    """

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -F.softplus(fake).mean()


@OBJECTIVES.register("non-saturating")
class NonSaturating(_LogisticD):
    """Non-saturating GAN: G maximises log D(G(z)) (Goodfellow et al. 2014, Sec. 3).

      D loss: E softplus(-r) + E softplus(f)   (as minimax)
      G loss: -E log s(f) = E softplus(-f)
    Goodfellow (2016) writes the "heuristic" cost as -1/2 E log D(G(z)); the 1/2 only averages
    two minibatches, so it is dropped here (gankit convention: no extra 1/2).
    """

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return F.softplus(-fake).mean()


@OBJECTIVES.register("maximum-likelihood")
class MaximumLikelihood(_LogisticD):
    """Maximum-likelihood generator cost (Goodfellow 2016, NIPS tutorial, Sec. 3.2.3).

      D loss: E softplus(-r) + E softplus(f)   (as minimax)
      G loss: J(G) = -1/2 E exp(sigma^-1(D(G(z)))) = -1/2 E exp(f)
    With an optimal D, its expected gradient equals that of KL(p_data || p_g). The tutorial's 1/2
    is kept, as in its formula. exp(f) is unbounded: a logit above ~88 overflows float32 to inf,
    which the trainer's non-finite check reports; that is the loss as written, not clamped.
    """

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -0.5 * torch.exp(fake).mean()


@OBJECTIVES.register("wasserstein")
class Wasserstein(Objective):
    """Wasserstein GAN (Arjovsky et al. 2017).

    min_G max_{||D||_L <= 1} E_x D(x) - E_z D(G(z)):
      D loss: E f - E r
      G loss: -E f
    Needs a Lipschitz constraint on D: add ``weight-clipping``, ``wgan-gp`` or ``spectral-norm``.
    """

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return fake.mean() - real.mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -fake.mean()


@OBJECTIVES.register("least-squares")
class LeastSquares(Objective):
    """Least-squares GAN, LSGAN (Mao et al. 2017).

      min_D 1/2 E (D(x) - b)^2 + 1/2 E (D(G(z)) - a)^2
      min_G 1/2 E (D(G(z)) - c)^2
    a: target for fakes, b: for reals, c: the value G wants D to believe. Defaults (0, 1, 1) are
    the paper's 0-1 coding; (-1, 1, 0) gives its Pearson chi^2 variant. The paper's 1/2 factors
    are kept. D's raw output is used (no sigmoid), as in the paper.
    """

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        if a == b:
            raise ValueError(f"least-squares needs distinct targets for fake (a) and real (b); got a = b = {a}")
        self.a, self.b, self.c = float(a), float(b), float(c)

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * (real - self.b).pow(2).mean() + 0.5 * (fake - self.a).pow(2).mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return 0.5 * (fake - self.c).pow(2).mean()


@OBJECTIVES.register("hinge")
class Hinge(Objective):
    """Hinge GAN (Lim & Ye 2017; Tran et al. 2017; Miyato et al. 2018).

      L_D = -E min(0, -1 + D(x)) - E min(0, -1 - D(G(z))) = E relu(1 - r) + E relu(1 + f)
      L_G = -E D(G(z)) = -E f
    No deviation.
    """

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -fake.mean()


def _needs_real(name: str, real: Tensor | None) -> Tensor:
    if real is None:
        raise ValueError(
            f"objective {name!r} compares fakes with reals: g_loss(fake, real) needs D's outputs on "
            "real data (every gankit family passes them when the objective has g_uses_real)"
        )
    return real


@OBJECTIVES.register("relativistic")
class Relativistic(Objective):
    """Relativistic pairing GAN, RpGAN (Jolicoeur-Martineau 2018; Huang et al. 2024, R3GAN, Eq. 2).

    D judges how much more real a real sample looks than a fake one, pair by pair:
      D loss: E softplus(-(r - f))
      G loss: E softplus(-(f - r))
    with r and f the logits of the i-th real and i-th fake sample (both batches the same size; patch
    logits pair position by position). Huang et al. show that with R1 + R2 this loss has no mode-dropping
    local minima and converges locally, the base of R3GAN. No deviation.
    """

    g_uses_real = True

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.softplus(-(real - _paired(real, fake))).mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return F.softplus(-(fake - _paired(fake, _needs_real("relativistic", real)))).mean()


def _paired(a: Tensor, b: Tensor) -> Tensor:
    if a.shape != b.shape:
        raise ValueError(
            f"the relativistic loss pairs real and fake samples one to one; got D outputs of shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)} (equal real and fake batch sizes needed)"
        )
    return b


@OBJECTIVES.register("relativistic-average")
class RelativisticAverage(Objective):
    """Relativistic average GAN, RaGAN (Jolicoeur-Martineau 2018, Eqs. 11-12; as in ESRGAN, Wang et al. 2018).

    Each sample is compared with the mean logit of the other side:
      D loss: E_r softplus(-(r - E f)) + E_f softplus(f - E r)
      G loss: E_r softplus(r - E f) + E_f softplus(-(f - E r))
    i.e. -E log s(r - E f) - E log(1 - s(f - E r)), and the G loss swaps the labels. The means are over
    the batch (and patch positions); the batches need not pair. No deviation.
    """

    g_uses_real = True

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        real = _needs_real("relativistic-average", real)
        return F.softplus(real - fake.mean()).mean() + F.softplus(-(fake - real.mean())).mean()


@OBJECTIVES.register("ebgan")
class EBGAN(Objective):
    """Energy-based GAN, EBGAN (Zhao et al. 2017; lecture notes Eqs. 6-7).

    D outputs a per-sample energy, e.g. the autoencoder reconstruction error ||Dec(Enc(x)) - x||:
      L_D = D(x) + [m - D(G(z))]_+       (means over the batch)
      L_G = D(G(z))
    m > 0 is the margin: fakes whose energy is already above m cost D nothing. The pulling-away
    term (repelling regulariser, Eq. 8) acts on encoder features, not energies, so it is not
    part of this objective.
    """

    energy = True

    def __init__(self, m: float = 1.0) -> None:
        if not m > 0:
            raise ValueError(f"ebgan margin m must be > 0, got {m}")
        self.m = float(m)

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return real.mean() + F.relu(self.m - fake).mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return fake.mean()


@OBJECTIVES.register("began")
class BEGAN(Objective):
    """Boundary-equilibrium GAN, BEGAN (Berthelot et al. 2017).

    D is an autoencoder and L(v) = |v - D(v)|^eta its per-sample reconstruction loss (the
    discriminator puts L in ``DOut.logits``):
      L_D = L(x) - k_t L(G(z))
      L_G = L(G(z))
      k_{t+1} = clamp(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)
      M_global = L(x) + |gamma L(x) - L(G(z))|     (convergence measure, logged)
    gamma = E L(G(z)) / E L(x) is the diversity ratio D is steered to; k_t is clamped to [0, 1]
    as in the paper's experiments. Deviation: k_t is updated from the means of the D step
    (``update``), i.e. L(G(z_D)) rather than L(G(z_G)) from the G step; the two batches come
    from the same G, and this keeps the objective independent of the G step.

    State: k_t and M_global are 0-dim float32 tensors on the data's device (no host sync);
    ``state_dict()`` holds k_t, so a resumed run continues bit-exactly.
    """

    energy = True

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001, k_init: float = 0.0) -> None:
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"began gamma (diversity ratio) must be in (0, 1], got {gamma}")
        if lambda_k < 0.0:
            raise ValueError(f"began lambda_k (k_t learning rate) must be >= 0, got {lambda_k}")
        if not 0.0 <= k_init <= 1.0:
            raise ValueError(f"began k_init must be in [0, 1], got {k_init}")
        self.gamma, self.lambda_k, self.k_init = float(gamma), float(lambda_k), float(k_init)
        self.k_t = torch.tensor(self.k_init, dtype=torch.float32)
        self.m_global: Tensor | None = None  # unknown until the first update

    def _k_on(self, device: torch.device) -> Tensor:
        # follows the data lazily, so a BEGAN built on CPU works on CUDA without an explicit .to()
        if self.k_t.device != device:
            self.k_t = self.k_t.to(device)
        return self.k_t

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return real.mean() - self._k_on(real.device) * fake.mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return fake.mean()

    @torch.no_grad()
    def update(self, real: Tensor, fake: Tensor) -> None:
        k = self._k_on(real.device)
        l_real, l_fake = real.float().mean(), fake.float().mean()
        balance = self.gamma * l_real - l_fake
        self.k_t = (k + self.lambda_k * balance).clamp(0.0, 1.0)
        self.m_global = l_real + balance.abs()

    def state_dict(self) -> dict[str, Tensor]:
        return {"k_t": self.k_t.detach().clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if set(state) != {"k_t"}:
            raise ValueError(f"began state must hold exactly 'k_t', got keys {sorted(state)}")
        k = torch.as_tensor(state["k_t"])
        if k.ndim != 0:
            raise ValueError(f"began k_t must be a 0-dim tensor, got shape {tuple(k.shape)}")
        self.k_t = k.detach().to(device=self.k_t.device, dtype=torch.float32).clone()

    def log_values(self) -> dict[str, Tensor]:
        out = {"k_t": self.k_t}
        if self.m_global is not None:
            out["m_global"] = self.m_global
        return out

    def to(self, device: torch.device | str) -> BEGAN:
        self.k_t = self.k_t.to(device)
        if self.m_global is not None:
            self.m_global = self.m_global.to(device)
        return self
