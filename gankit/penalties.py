"""Regularisers and constraints on one network: gradient penalties, weight constraints, SN, ...

A penalty acts on its ``target`` network ("D" or "G") in up to three ways:

- ``__call__(net, real, fake, y=None)`` returns a scalar the trainer ADDS to the target's loss
  (only when ``adds_loss`` is True: gradient penalties, orthogonal regularisation);
- ``on_build(net)`` runs once when the networks are built (spectral normalisation);
- ``post_step(net)`` runs after every optimiser step of the target (weight clipping).

Registered penalties (recipe key ``penalties``, a list)::

    name              target  kind         term
    wgan-gp           D       loss         lam E (||grad D(x_hat)||_2 - 1)^2, x_hat between x and G(z)
    r1                D       loss         gamma/2 E ||grad D(x)||^2 on real data
    r2                D       loss         gamma/2 E ||grad D(x)||^2 on fake data
    weight-clipping   D       post-step    w <- clamp(w, -c, c)
    spectral-norm     D (G)   build        W <- W / sigma(W) on every linear / conv / embedding
    orthogonal        G (D)   loss         beta sum_W ||W W^T * (1 - I)||_F^2
    drift             D       loss         eps E[D(x)^2] on real data (ProGAN)

e.g. ``penalties: [{name: r1, gamma: 1.0}, {name: spectral-norm}]``.

Gradient norms are taken over ALL non-batch dimensions of the input (a (N, C, H, W) image has
one gradient vector of C*H*W entries per sample), with ``create_graph=True`` so the penalty
trains the network. A patch discriminator's logits are summed per sample before differentiating.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gankit.amp import penalty_scale
from gankit.models.base import DOut
from gankit.registry import Registry

PENALTIES = Registry("penalty")

Opt = Tensor | None  # real / fake / labels may be absent (G-side penalties get real=None)


class Penalty:
    """Base class: no loss term, no build hook, no post-step hook."""

    target: str = "D"  # the network whose loss (and optimiser step) this penalty belongs to
    adds_loss: bool = False  # True: the trainer calls the penalty and adds its value to the loss
    # Lazy regularisation (Karras et al. 2020, StyleGAN2 Sec. 3.1): the loss term is computed only on
    # generator steps where step % every == 0 and multiplied by ``every``, so its average weight is kept.
    every: int = 1

    def __call__(self, net: nn.Module, real: Opt, fake: Opt, y: Opt = None) -> Tensor | None:
        return None

    def on_build(self, net: nn.Module) -> None:
        """Once, right after the networks are built."""

    def post_step(self, net: nn.Module) -> None:
        """After every optimiser step of the target network."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def input_gradients(net: nn.Module, x: Tensor, y: Tensor | None = None) -> Tensor:
    """d(score)/dx flattened to (N, prod(other dims)); score = per-sample sum of D's logits.

    The graph is kept (create_graph) so a loss on the gradient backpropagates into ``net``. Under fp16
    mixed precision the inner gradient is loss-scaled like the outer one (``train.precision``).
    Per-sample gradients come from one backward of the batch sum, which is exact as long as D
    treats samples independently (no batch norm in D: use layer/instance norm or none).
    """
    with torch.enable_grad():  # also correct when called from a no_grad context (evaluation)
        x = x.detach().requires_grad_(True)
        out = net(x) if y is None else net(x, y=y)
        logits = out.logits if isinstance(out, DOut) else out
        score = logits.reshape(logits.shape[0], -1).sum(dim=1).float()
        scale = penalty_scale()
        if scale is None:
            (grad,) = torch.autograd.grad(score.sum(), x, create_graph=True)
        else:  # fp16: scale before the inner backward so small gradients survive, then unscale
            (grad,) = torch.autograd.grad(score.sum() * scale, x, create_graph=True)
            grad = grad.float() / scale
    return grad.flatten(1)


def _every(every: int, who: str) -> int:
    if int(every) < 1:
        raise ValueError(f"{who} every must be >= 1 (1 = every step; StyleGAN2 uses 16), got {every}")
    return int(every)


def _need(x: Tensor | None, what: str, who: str) -> Tensor:
    if x is None:
        raise ValueError(f"{who} needs the {what} batch, got None")
    return x


class _GradientPenalty(Penalty):
    adds_loss = True
    double_backward = True  # a loss on an input gradient: no torch.compile of the network it reads


@PENALTIES.register("wgan-gp")
class WGANGP(_GradientPenalty):
    """WGAN-GP two-sided gradient penalty (Gulrajani et al. 2017, Algorithm 1).

      L += lam E_{x_hat} (||grad_{x_hat} D(x_hat)||_2 - 1)^2,   x_hat = eps x + (1 - eps) x_tilde
    x real, x_tilde = G(z) (detached), eps ~ U[0, 1] drawn per sample from torch's global RNG
    and broadcast over the other dimensions. Default lam = 10 as in the paper. No deviation.
    """

    def __init__(self, lam: float = 10.0) -> None:
        if lam < 0:
            raise ValueError(f"wgan-gp lam must be >= 0, got {lam}")
        self.lam = float(lam)

    def __call__(self, net: nn.Module, real: Opt, fake: Opt, y: Opt = None) -> Tensor:
        real, fake = _need(real, "real", "wgan-gp"), _need(fake, "fake", "wgan-gp").detach()
        if real.shape != fake.shape:
            raise ValueError(
                f"wgan-gp interpolates real and fake: shapes differ, {tuple(real.shape)} vs {tuple(fake.shape)}"
            )
        eps = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
        x_hat = eps * real.detach() + (1.0 - eps) * fake
        norm = input_gradients(net, x_hat, y).norm(dim=1)
        return self.lam * (norm - 1.0).pow(2).mean()


@PENALTIES.register("r1")
class R1(_GradientPenalty):
    """R1 zero-centred gradient penalty on real data (Mescheder et al. 2018, Sec. 4.1).

      R_1 = gamma/2 E_{x ~ p_data} ||grad_x D(x)||^2
    ``every`` = k > 1 is StyleGAN2's lazy regularisation: the term is added on every k-th generator
    step only, multiplied by k (Karras et al. 2020, Sec. 3.1; k = 16 in their configs). No deviation.
    """

    def __init__(self, gamma: float = 10.0, every: int = 1) -> None:
        if gamma < 0:
            raise ValueError(f"r1 gamma must be >= 0, got {gamma}")
        self.gamma, self.every = float(gamma), _every(every, "r1")

    def __call__(self, net: nn.Module, real: Opt, fake: Opt, y: Opt = None) -> Tensor:
        grad = input_gradients(net, _need(real, "real", "r1"), y)
        return 0.5 * self.gamma * grad.pow(2).sum(dim=1).mean()


@PENALTIES.register("r2")
class R2(_GradientPenalty):
    """R2 zero-centred gradient penalty on generated data (Mescheder et al. 2018, Sec. 4.1).

      R_2 = gamma/2 E_{x ~ p_g} ||grad_x D(x)||^2
    The fake batch is detached: the penalty trains D only. ``every`` as for r1. No deviation.
    """

    def __init__(self, gamma: float = 10.0, every: int = 1) -> None:
        if gamma < 0:
            raise ValueError(f"r2 gamma must be >= 0, got {gamma}")
        self.gamma, self.every = float(gamma), _every(every, "r2")

    def __call__(self, net: nn.Module, real: Opt, fake: Opt, y: Opt = None) -> Tensor:
        grad = input_gradients(net, _need(fake, "fake", "r2"), y)
        return 0.5 * self.gamma * grad.pow(2).sum(dim=1).mean()


@PENALTIES.register("drift")
class Drift(Penalty):
    """Drift penalty of ProGAN (Karras et al. 2018, App. A.1): eps_drift E_{x ~ p_data}[D(x)^2].

    Keeps a WGAN critic's output near zero, since the Wasserstein loss is blind to an additive
    constant; the paper uses eps = 0.001 with WGAN-GP. No deviation.
    """

    adds_loss = True

    def __init__(self, eps: float = 0.001) -> None:
        if eps < 0:
            raise ValueError(f"drift eps must be >= 0, got {eps}")
        self.eps = float(eps)

    def __call__(self, net: nn.Module, real: Opt, fake: Opt, y: Opt = None) -> Tensor:
        real = _need(real, "real", "drift")
        out = net(real) if y is None else net(real, y=y)
        logits = out.logits if isinstance(out, DOut) else out
        return self.eps * logits.float().pow(2).mean()


@PENALTIES.register("weight-clipping")
class WeightClipping(Penalty):
    """Weight clipping for the WGAN critic (Arjovsky et al. 2017, Algorithm 1, line 7).

      w <- clip(w, -c, c)   for every parameter of D, after every D update
    Default c = 0.01 as in the paper. Every parameter is clipped, normalisation-layer affine
    parameters included, as in the paper's algorithm.
    """

    def __init__(self, c: float = 0.01) -> None:
        if not c > 0:
            raise ValueError(f"weight-clipping c must be > 0, got {c}")
        self.c = float(c)

    @torch.no_grad()
    def post_step(self, net: nn.Module) -> None:
        for p in net.parameters():
            p.clamp_(-self.c, self.c)


_SN_TYPES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Embedding,
)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _weight_parametrizations(m: nn.Module) -> Any:
    """The ParametrizationList of ``m``'s parametrised weight (``m.parametrizations["weight"]``, which torch
    types as a plain module attribute). Its entries are torch's private classes, read by name (``_SpectralNorm``
    with its ``_u``, ``_v``, ``dim`` and ``eps``), hence Any."""
    return cast(nn.ModuleDict, m.parametrizations)["weight"]


def _has_spectral_norm(m: nn.Module) -> bool:
    if hasattr(m, "weight_orig"):  # the older hook-based torch.nn.utils.spectral_norm
        return True
    if parametrize.is_parametrized(m, "weight"):
        return any(type(p).__name__ == "_SpectralNorm" for p in _weight_parametrizations(m))
    return False


@PENALTIES.register("spectral-norm")
class SpectralNorm(Penalty):
    """Spectral normalisation (Miyato et al. 2018).

      W_SN = W / sigma(W),  sigma(W) = max singular value, estimated by power iteration
    applied (``on_build``) to every Linear, Conv{1,2,3}d, ConvTranspose{1,2,3}d and Embedding via
    ``torch.nn.utils.parametrizations.spectral_norm``; each layer then has Lipschitz constant ~1.
    Conv kernels are reshaped to (out, -1) (dim 1 = output channels for transposed convs), as in
    the paper, which bounds the reshaped kernel, not the exact operator norm of the convolution.
    One power iteration per training forward (u persists across steps); eval mode reuses u.
    Modules already spectrally normalised are skipped, so applying it twice is harmless.
    ``target`` (default "D") may be "G" for SAGAN / BigGAN-style generators.
    """

    def __init__(self, n_power_iterations: int = 1, eps: float = 1e-12, target: Literal["D", "G"] = "D") -> None:
        if n_power_iterations < 1:
            raise ValueError(f"spectral-norm n_power_iterations must be >= 1, got {n_power_iterations}")
        if not eps > 0:
            raise ValueError(f"spectral-norm eps must be > 0, got {eps}")
        if target not in ("D", "G"):
            raise ValueError(f"spectral-norm target must be 'D' or 'G', got {target!r}")
        self.n_power_iterations, self.eps, self.target = int(n_power_iterations), float(eps), target

    def on_build(self, net: nn.Module) -> None:
        for m in list(net.modules()):  # list: registering parametrizations adds modules
            if not isinstance(m, _SN_TYPES) or _has_spectral_norm(m):
                continue
            if isinstance(m.weight, nn.parameter.UninitializedParameter):
                raise ValueError(f"spectral-norm cannot wrap lazy {type(m).__name__}: run one forward pass first")
            dim = 1 if isinstance(m, _TRANSPOSED) else 0
            spectral_norm(m, n_power_iterations=self.n_power_iterations, eps=self.eps, dim=dim)


@torch.no_grad()
def refresh_spectral_norm(net: nn.Module, iterations: int = 1) -> int:
    """Re-estimate the singular vectors (u, v) of every spectrally normalised layer of ``net`` from its
    own weight, by power iteration; returns the number of layers refreshed.

    Needed for an exponential moving average of a spectrally normalised G (SAGAN, BigGAN): averaging
    the u and v buffers along with the weights leaves them shorter than unit length and off the
    averaged weight's singular vectors, so the eval-mode sigma = u^T W v is underestimated and every
    layer is scaled up (a BigGAN on MNIST had 97 % of its EMA pixels saturated against 60 % for the
    live G). ``iterations`` = 1 after each averaging step tracks the slowly moving average, as one
    iteration per training step does for the live network.
    """
    count = 0
    for m in net.modules():
        if not parametrize.is_parametrized(m, "weight"):
            continue
        for p in _weight_parametrizations(m):
            if type(p).__name__ != "_SpectralNorm" or not hasattr(p, "_u"):  # 1-d weights: normalised exactly
                continue
            w = _weight_parametrizations(m).original
            w = w.movedim(p.dim, 0).flatten(1)  # the parametrisation's (out, -1) matrix
            for _ in range(iterations):
                p._u.copy_(F.normalize(w @ p._v, dim=0, eps=p.eps))
                p._v.copy_(F.normalize(w.t() @ p._u, dim=0, eps=p.eps))
            count += 1
    return count


@PENALTIES.register("orthogonal")
class Orthogonal(Penalty):
    """Off-diagonal orthogonal regularisation (Brock et al. 2019, BigGAN, Sec. 3.1).

      R_beta(W) = beta ||W W^T * (1 - I)||_F^2,  summed over every weight W with ndim >= 2
    reshaped to (W.shape[0], -1): rows are output units / filters (input channels for a
    ConvTranspose, whose weight is stored (in, out, ...), as in BigGAN's code); biases and other
    1-D parameters are excluded. Unlike ||W^T W - I||, only pairwise cosine-like overlaps are
    penalised, not the row norms. Default target G, beta = 1e-4 as in the paper. Parameters are
    taken as stored (with spectral-norm, the un-normalised ``original``). real/fake are ignored.
    """

    adds_loss = True

    def __init__(self, beta: float = 1e-4, target: Literal["G", "D"] = "G") -> None:
        if beta < 0:
            raise ValueError(f"orthogonal beta must be >= 0, got {beta}")
        if target not in ("D", "G"):
            raise ValueError(f"orthogonal target must be 'D' or 'G', got {target!r}")
        self.beta, self.target = float(beta), target

    def __call__(self, net: nn.Module, real: Opt = None, fake: Opt = None, y: Opt = None) -> Tensor:
        terms = [off_diagonal_gram_sq(p.reshape(p.shape[0], -1)) for p in net.parameters() if p.ndim >= 2]
        if not terms:
            raise ValueError(f"orthogonal: {type(net).__name__} has no weight with 2 or more dimensions")
        return self.beta * torch.stack(terms).sum()


def off_diagonal_gram_sq(w: Tensor) -> Tensor:
    """||W W^T * (1 - I)||_F^2 for a 2-D W.

    For tall W (rows > cols, e.g. a G's first Linear z -> 4*4*C) the (rows x rows) Gram would be
    huge; ||W W^T||_F = ||W^T W||_F, and the diagonal of W W^T is the squared row norms, so the
    small Gram gives the same value.
    """
    rows, cols = w.shape
    if rows <= cols:
        gram = w @ w.T
        return (gram - torch.diag_embed(torch.diagonal(gram))).pow(2).sum()
    return (w.T @ w).pow(2).sum() - w.pow(2).sum(dim=1).pow(2).sum()
