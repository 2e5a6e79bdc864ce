"""Training tricks, registered by name in ``TRICKS``: small hooks the family calls at fixed points.

A trick may override any of these (the base class does nothing):

* ``check(objective_name)``: refuse meaningless combinations up front, with the reason;
* ``d_in_shape(shape)``: the discriminator's input shape (PacGAN packs m samples together);
* ``d_inputs(real, fake, step)``: transform what D sees, in the D step and the G step alike
  (``real`` is None in the G step);
* ``augment(x)``: transform real images D classifies outside the game (the semi-supervised
  family's labelled batch), as ``d_inputs`` transforms the real ones in it;
* ``d_loss(objective, real_logits, fake_logits)``: replace the discriminator loss;
* ``g_critic(family, fake, real, ctx)``: the discriminator G plays against in its step (unrolled GAN),
  or None; ``real`` is the G step's real batch (the trainer draws one when ``needs_batch_in_g_step``),
  ``ctx`` the step context, and only the family's public methods are used (``D``, ``opt_d``,
  ``d_inputs``, ``adversarial_d_loss``);
* ``g_loss(fake_out, real_out, adversarial)``: replace the generator loss (feature matching);
* ``extra_loss(net_name, net)``: a term added to that network's loss (historical averaging);
* ``observe(real_logits, fake_logits)``: D's detached outputs after every D loss (ADA steers p by them);
* ``log_values()``: scalars logged as ``tricks/<name>/<key>`` (and plotted in the report);
* ``state_dict()`` / ``load_state_dict()``: state that a checkpoint keeps for exact resume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from gankit.models.base import DOut
from gankit.nn.ada import OPS as ADA_OPS
from gankit.nn.ada import ada_augment
from gankit.nn.augment import POLICIES, diff_augment
from gankit.registry import Registry

TRICKS = Registry("trick")

LOGISTIC = ("minimax", "non-saturating", "maximum-likelihood")


class Trick:
    """Base: every hook is the identity / absent."""

    def check(self, objective: str) -> None:
        pass

    def d_in_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def d_inputs(
        self, real: torch.Tensor | None, fake: torch.Tensor, step: int
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        return real, fake

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def d_loss(self, objective: Any, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        return None

    def g_loss(self, fake_out: DOut, real_out: DOut | None, adversarial: torch.Tensor) -> torch.Tensor | None:
        return None

    def g_critic(
        self, family: Any, fake: torch.Tensor, real: torch.Tensor | None, ctx: Any
    ) -> Callable[[torch.Tensor], DOut] | None:
        return None

    def observe(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        """See D's (detached) outputs on the real and fake batch after every D loss (ADA's controller)."""

    def log_values(self) -> dict[str, torch.Tensor | float]:
        """Scalars to log at logging steps, as ``tricks/<name>/<key>`` (ADA's p and r_t)."""
        return {}

    needs_real_in_g_step = False  # g_loss reads D's outputs on real data (feature matching)
    needs_batch_in_g_step = False  # the G step needs a real batch for itself (the unrolled look-ahead)

    def extra_loss(self, net_name: str, net: nn.Module) -> torch.Tensor | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def smoothed_terms(
    real: torch.Tensor, fake: torch.Tensor, alpha: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(real term, fake term) of the logistic D loss with targets alpha (real) and beta (fake):
    -E_p[alpha log D + (1 - alpha) log(1 - D)] and -E_q[beta log D + (1 - beta) log(1 - D)]."""
    return (
        F.binary_cross_entropy_with_logits(real, torch.full_like(real, alpha)),
        F.binary_cross_entropy_with_logits(fake, torch.full_like(fake, beta)),
    )


@TRICKS.register("label-smoothing")
class LabelSmoothing(Trick):
    """Label smoothing of D's targets (Salimans et al. 2016, Sec. 3.4): real -> alpha, fake -> beta.

    One-sided (beta = 0, the paper's advice) moves the optimal discriminator to
    D*(x) = alpha p(x) / (p(x) + q(x)); two-sided to (alpha p + beta q) / (p + q), which the paper
    warns rewards G for staying where q > 0 and p = 0. Logistic objectives only.
    """

    def __init__(self, alpha: float = 0.9, beta: float = 0.0) -> None:
        if not (0.0 < alpha <= 1.0 and 0.0 <= beta < alpha):
            raise ValueError(f"label-smoothing needs 0 <= beta < alpha <= 1, got alpha={alpha}, beta={beta}")
        self.alpha, self.beta = alpha, beta

    def check(self, objective: str) -> None:
        if objective not in LOGISTIC:
            raise ValueError(
                f"label-smoothing smooths the targets of the logistic D loss ({', '.join(LOGISTIC)}); "
                f"objective {objective!r} has no such targets (for least-squares, set objective.b instead)"
            )

    def d_loss(self, objective: Any, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        r, f = smoothed_terms(real.flatten(), fake.flatten(), self.alpha, self.beta)
        return r + f


@TRICKS.register("instance-noise")
class InstanceNoise(Trick):
    """Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): D sees x + sigma_t * eps,
    eps ~ N(0, I), for real and generated samples alike, so the two distributions overlap.

    sigma_t decays linearly from ``sigma`` to 0 over ``anneal_steps`` generator steps (0: constant).
    The noise comes from the global RNG, which checkpoints keep: resuming stays exact.
    """

    def __init__(self, sigma: float = 0.1, anneal_steps: int = 0) -> None:
        if sigma < 0 or anneal_steps < 0:
            raise ValueError(f"instance-noise needs sigma >= 0 and anneal_steps >= 0, got {sigma}, {anneal_steps}")
        self.sigma, self.anneal_steps = sigma, anneal_steps

    def sigma_at(self, step: int) -> float:
        if not self.anneal_steps:
            return self.sigma
        return self.sigma * max(0.0, 1.0 - step / self.anneal_steps)

    def d_inputs(
        self, real: torch.Tensor | None, fake: torch.Tensor, step: int
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        s = self.sigma_at(step)
        if s == 0.0:
            return real, fake
        noisy = None if real is None else real + s * torch.randn_like(real)
        return noisy, fake + s * torch.randn_like(fake)


class _ImageAugmentation(Trick):
    """What DiffAugment and ADA share: D sees ``augment(x)`` of the real and the fake images alike, in the D
    step and the G step, and only images can be augmented."""

    trick_name = ""

    def d_in_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise ValueError(
                f"{self.trick_name} transforms images (C, H, W); this discriminator judges inputs of shape "
                f"{tuple(shape)}: remove the trick, or use an image dataset and family"
            )
        return shape

    def d_inputs(
        self, real: torch.Tensor | None, fake: torch.Tensor, step: int
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        return (None if real is None else self.augment(real)), self.augment(fake)


@TRICKS.register("diffaugment")
class DiffAugment(_ImageAugmentation):
    """Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
    GAN Training"): D sees T(x) and T(G(z)), with a fresh random T per sample, in the D step and the G
    step alike, so D cannot memorise a small training set and G's gradient flows through T. Augmenting
    the real images only would teach G to produce augmented images; augmenting both does not, since
    T(p) = T(q) when p = q. ``policy``: any of color, translation, cutout (the paper's choice for
    limited data is all three); ``translation`` and ``cutout`` are fractions of the image side.
    Images only: the ops shift and mask pixels.
    """

    trick_name = "diffaugment"

    def __init__(
        self,
        policy: list[str] | tuple[str, ...] = ("color", "translation", "cutout"),
        translation: float = 0.125,
        cutout: float = 0.5,
    ) -> None:
        policy = (policy,) if isinstance(policy, str) else tuple(policy)
        bad = [p for p in policy if p not in POLICIES]
        if bad or not policy:
            raise ValueError(f"diffaugment policy {list(policy)} must be a non-empty list of {', '.join(POLICIES)}")
        if not (0.0 <= translation < 0.5 and 0.0 <= cutout <= 1.0):
            raise ValueError(
                f"diffaugment needs 0 <= translation < 0.5 and 0 <= cutout <= 1, got {translation}, {cutout}"
            )
        self.policy, self.translation, self.cutout = policy, translation, cutout

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy, self.translation, self.cutout)


@TRICKS.register("ada")
class ADA(_ImageAugmentation):
    """Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks
    with Limited Data", Sec. 3): every image D sees, real or fake, in the D step and the G step, goes
    through the non-leaking pipeline of ``gankit.nn.ada`` with probability ``p`` per op, and p is steered
    by the overfitting heuristic r_t = E[sign(D(x_real))] (Eq. 1, the real logits of the last
    ``interval`` D steps): every ``interval`` D steps, p += sign(r_t - target) * (batch * interval) /
    ``speed``, clamped to [0, ``max_p``], so p can go from 0 to 1 in ``speed`` real images (the paper's
    500k; CPU recipes use fewer). ``target`` 0.6 as in the paper; ``p`` is the starting value;
    ``adaptive=false`` keeps p fixed. p and r_t are logged (``tricks/ada/p``, ``tricks/ada/rt``),
    checkpointed and plotted in the report. Images only; logit objectives only (r_t reads the sign).
    """

    trick_name = "ada"

    def __init__(
        self,
        target: float = 0.6,
        p: float = 0.0,
        interval: int = 4,
        speed: int = 500_000,
        max_p: float = 1.0,
        adaptive: bool = True,
        ops: list[str] | tuple[str, ...] = ADA_OPS,
    ) -> None:
        bad = [o for o in ops if o not in ADA_OPS]
        if bad or not ops:
            raise ValueError(f"ada ops {list(ops)} must be a non-empty list of {', '.join(ADA_OPS)}")
        if not (0.0 <= p <= max_p <= 1.0) or not 0.0 < target < 1.0 or interval < 1 or speed < 1:
            raise ValueError(
                f"ada needs 0 <= p <= max_p <= 1, 0 < target < 1, interval >= 1 and speed >= 1; got "
                f"p={p}, max_p={max_p}, target={target}, interval={interval}, speed={speed}"
            )
        self.target, self.interval, self.speed, self.max_p, self.adaptive = target, interval, speed, max_p, adaptive
        self.ops = tuple(ops)
        self.p = torch.tensor(float(p))
        self.rt = torch.tensor(float("nan"))  # the last r_t (NaN until the first adjustment)
        self._signs = torch.zeros(())  # sum of E[sign(real logits)] over the D steps since the last adjustment
        self._seen = 0  # D steps since the last adjustment

    def check(self, objective: str) -> None:
        if objective in ("ebgan", "began"):
            raise ValueError(
                f"ada steers p by the sign of D's real logits; objective {objective!r} scores "
                "reconstruction energies: use diffaugment with it"
            )

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.p.device != x.device:
            self.p, self.rt, self._signs = self.p.to(x.device), self.rt.to(x.device), self._signs.to(x.device)
        return ada_augment(x, self.p, self.ops)

    def observe(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        if not self.adaptive:
            return
        if self._signs.device != real.device:
            self._signs = self._signs.to(real.device)
        self._signs = self._signs + torch.sign(real.float()).mean()
        self._seen += 1
        if self._seen == self.interval:  # on the device: no host sync
            self.rt = self._signs / self.interval
            step = torch.sign(self.rt - self.target) * (real.shape[0] * self.interval / self.speed)
            self.p = (self.p.to(real.device) + step).clamp(0.0, self.max_p)
            self._signs, self._seen = torch.zeros_like(self._signs), 0

    def log_values(self) -> dict[str, torch.Tensor | float]:
        return {"p": self.p, "rt": self.rt}

    def state_dict(self) -> dict[str, Any]:
        return {
            "p": self.p.detach().cpu(),
            "rt": self.rt.detach().cpu(),
            "signs": self._signs.detach().cpu(),
            "seen": self._seen,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.p, self.rt = state["p"].clone(), state["rt"].clone()
            self._signs, self._seen = state["signs"].clone(), int(state["seen"])


@TRICKS.register("feature-matching")
class FeatureMatching(Trick):
    """Feature matching (Salimans et al. 2016, Sec. 3.1): G minimises ||E_x f(x) - E_z f(G(z))||^2
    over the discriminator's features f (its penultimate layer, ``DOut.features``) instead of
    fooling D. ``adversarial_weight > 0`` keeps that much of the usual generator loss as well.
    """

    needs_real_in_g_step = True

    def __init__(self, adversarial_weight: float = 0.0) -> None:
        if adversarial_weight < 0:
            raise ValueError(f"feature-matching adversarial_weight must be >= 0, got {adversarial_weight}")
        self.adversarial_weight = adversarial_weight

    def g_loss(self, fake_out: DOut, real_out: DOut | None, adversarial: torch.Tensor) -> torch.Tensor:
        if fake_out.features is None or real_out is None or real_out.features is None:
            raise ValueError("feature-matching needs a discriminator that returns features (DOut.features)")
        # Real features are a fixed target: G's gradient flows through the generated side only.
        diff = real_out.features.detach().flatten(1).mean(0) - fake_out.features.flatten(1).mean(0)
        return diff.square().sum() + self.adversarial_weight * adversarial


@TRICKS.register("historical-averaging")
class HistoricalAveraging(Trick):
    """Historical averaging (Salimans et al. 2016, Sec. 3.3): each player adds
    weight * ||theta - (1/t) sum_{i<=t} theta_i||^2, the distance of its parameters from their own
    running average (kept in state, so resume is exact). ``networks``: G, D or both.
    """

    def __init__(self, weight: float = 1e-3, networks: Literal["G", "D", "both"] = "both") -> None:
        if weight < 0:
            raise ValueError(f"historical-averaging weight must be >= 0, got {weight}")
        self.weight, self.networks = weight, networks
        self.means: dict[str, list[torch.Tensor]] = {}
        self.counts: dict[str, int] = {}

    def extra_loss(self, net_name: str, net: nn.Module) -> torch.Tensor | None:
        if self.networks not in (net_name, "both"):
            return None
        params = [p for p in net.parameters()]
        if net_name not in self.means:
            self.means[net_name] = [p.detach().clone() for p in params]
            self.counts[net_name] = 1
        else:  # fold the current parameters into the running mean, then measure the distance to it
            self.counts[net_name] += 1
            n = self.counts[net_name]
            for m, p in zip(self.means[net_name], params):
                m.add_(p.detach() - m, alpha=1.0 / n)
        # A tensor: the networks have parameters (sum's type also allows the 0 of an empty sum).
        distance = cast(torch.Tensor, sum((p - m).square().sum() for p, m in zip(params, self.means[net_name])))
        return self.weight * distance

    def state_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "means": {k: [m.cpu() for m in v] for k, v in self.means.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts = dict(state.get("counts", {}))
        self.means = {k: [m.clone() for m in v] for k, v in state.get("means", {}).items()}


@TRICKS.register("pacgan")
class PacGAN(Trick):
    """PacGAN (Lin et al. 2018): the discriminator judges m samples at once, all real or all
    generated, concatenated along channels (images) or features (points). A mode-collapsed G
    produces packs of near-identical samples, which D can tell from real packs. m = 1 is plain D.
    """

    def __init__(self, m: int = 2) -> None:
        if m < 1:
            raise ValueError(f"pacgan m must be >= 1, got {m}")
        self.m = m

    def d_in_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[0] * self.m, *shape[1:])

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n % self.m:
            raise ValueError(
                f"pacgan m={self.m} needs a batch size divisible by m, got {n}; change schedule.batch_size"
            )
        # (N, C, ...) -> (N/m, m*C, ...): consecutive samples form a pack.
        return x.reshape(n // self.m, self.m * x.shape[1], *x.shape[2:])

    def d_inputs(
        self, real: torch.Tensor | None, fake: torch.Tensor, step: int
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        return (None if real is None else self.pack(real)), self.pack(fake)


@TRICKS.register("pulling-away")
class PullingAway(Trick):
    """EBGAN's pulling-away term (Zhao et al. 2017, Sec. 2.4, Eq. 8): G adds
    weight * f_PT(S) = weight / (N (N - 1)) sum_{i != j} (S_i^T S_j / (|S_i| |S_j|))^2 over the codes
    S = Enc(G(z)) of a batch (``DOut.features``), pushing generated codes towards orthogonality so
    the batch does not collapse onto one mode. The paper uses weight 0.1.
    """

    def __init__(self, weight: float = 0.1) -> None:
        if weight < 0:
            raise ValueError(f"pulling-away weight must be >= 0, got {weight}")
        self.weight = weight

    @staticmethod
    def term(s: torch.Tensor) -> torch.Tensor:
        s = F.normalize(s.flatten(1), dim=1)
        n = s.shape[0]
        if n < 2:
            return s.new_zeros(())
        cos2 = (s @ s.T).square()
        return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))

    def g_loss(self, fake_out: DOut, real_out: DOut | None, adversarial: torch.Tensor) -> torch.Tensor:
        if fake_out.features is None:
            raise ValueError(
                "pulling-away needs the discriminator's code (DOut.features): use the "
                "autoencoder or began discriminator"
            )
        return adversarial + self.weight * self.term(fake_out.features)


@TRICKS.register("unrolled")
class Unrolled(Trick):
    """Unrolled GAN (Metz et al. 2017, Eqs. 5-7): G minimises f(theta_G, theta_D^K), the loss against
    the discriminator after K look-ahead updates theta_D^{k+1} = theta_D^k + eta dL_D/dtheta_D^k, and the
    gradient flows through those updates (``second_order``; without it only through the last D).

    The look-ahead continues D's own optimiser: Adam from its current moments (as the paper's code
    does), else SGD; ``lr`` defaults to D's learning rate. D's real weights and buffers never change
    here: the updates act on copies. Uses one fresh real batch and the G step's fake batch; the D
    loss is the objective's (or label smoothing's), without penalties. ``k = 0`` is the plain GAN.
    Adam's denominator is taken as sqrt(v_hat + eps^2), smooth at v = 0, so the second-order path is
    finite; this differs from sqrt(v_hat) + eps by less than eps.
    """

    def __init__(self, k: int = 5, lr: float | None = None, second_order: bool = True) -> None:
        if k < 0:
            raise ValueError(f"unrolled k must be >= 0, got {k}")
        if lr is not None and lr <= 0:
            raise ValueError(f"unrolled lr must be positive, got {lr}")
        self.k, self.lr, self.second_order = k, lr, second_order

    @property
    def needs_batch_in_g_step(self) -> bool:  # type: ignore[override]
        return self.k > 0

    def g_critic(
        self, family: Any, fake: torch.Tensor, real: torch.Tensor | None, ctx: Any
    ) -> Callable[[torch.Tensor], DOut] | None:
        if self.k == 0:
            return None
        if real is None:
            raise ValueError("the unrolled look-ahead needs the G step's real batch (Phase.batch='fresh')")
        D = family.D
        names = [n for n, _ in D.named_parameters()]
        params = [p.detach().requires_grad_(True) for _, p in D.named_parameters()]
        buffers = {n: b.clone() for n, b in D.named_buffers()}  # BN statistics stay untouched
        opt = family.opt_d
        group = opt.param_groups[0] if opt is not None else {}
        lr = self.lr or group.get("lr", 1e-3)
        adam = isinstance(opt, (torch.optim.Adam, torch.optim.AdamW))
        states = [opt.state.get(p, {}) for p in D.parameters()] if adam else []

        def critic_at(ps: list[torch.Tensor]) -> Callable[[torch.Tensor], DOut]:
            return lambda x: functional_call(D, ({**dict(zip(names, ps)), **buffers}), (x,))

        real, fake_in = family.d_inputs(real, fake, ctx.step)
        m = [torch.zeros_like(p) for p in params]
        v = [torch.zeros_like(p) for p in params]
        t0 = 0
        if adam:
            m = [st["exp_avg"].detach() if "exp_avg" in st else mm for st, mm in zip(states, m)]
            v = [st["exp_avg_sq"].detach() if "exp_avg_sq" in st else vv for st, vv in zip(states, v)]
            t0 = int(states[0]["step"]) if states and "step" in states[0] else 0
        for i in range(self.k):
            c = critic_at(params)
            loss = family.adversarial_d_loss(c(real).logits, c(fake_in).logits)
            grads = torch.autograd.grad(loss, params, create_graph=self.second_order)
            if not self.second_order:
                grads = tuple(g.detach() for g in grads)
            if adam:
                b1, b2 = group["betas"]
                eps, t = group["eps"], t0 + i + 1
                m = [b1 * mm + (1 - b1) * g for mm, g in zip(m, grads)]
                v = [b2 * vv + (1 - b2) * g * g for vv, g in zip(v, grads)]
                params = [
                    p - lr * (mm / (1 - b1**t)) / torch.sqrt(vv / (1 - b2**t) + eps * eps)
                    for p, mm, vv in zip(params, m, v)
                ]
            else:
                params = [p - lr * g for p, g in zip(params, grads)]
        return critic_at(params)


def build_tricks(components: list[Any], objective: str) -> list[tuple[str, Trick]]:
    """Recipe components -> built tricks, each checked against the objective. PacGAN goes last, so
    that noise is added per sample before packing."""
    tricks = [(c.name, TRICKS.build(c.name, **c.options)) for c in components]
    names = [n for n, _ in tricks]
    for n in set(names):
        if names.count(n) > 1:
            raise ValueError(f"trick {n!r} is listed twice; give it once with the options you want")
    for _name, t in tricks:
        try:
            t.check(objective)
        except ValueError as err:
            raise ValueError(f"tricks: {err}") from None
    return sorted(tricks, key=lambda nt: isinstance(nt[1], PacGAN))


class ImageHistory:
    """A history of generated images (Shrivastava et al. 2017, Sec. 2.3; CycleGAN's buffer of 50,
    Zhu et al. 2017, Sec. 4): D is shown a mix of fresh fakes and earlier ones, which damps the
    oscillation of G and D chasing each other. Until the buffer is full every fake is stored and
    shown; then each fake, with probability 1/2, is swapped for a stored one (which is shown) and
    otherwise shown itself. Its own seeded generator and its images are kept by checkpoints."""

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"history size must be >= 0, got {size}")
        self.size = size
        self.images: torch.Tensor | None = None  # (n <= size, C, H, W)
        self.rng = torch.Generator().manual_seed(seed)

    def __call__(self, fake: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fake
        fake = fake.detach()
        out = fake.clone()
        for i in range(fake.shape[0]):
            held = 0 if self.images is None else self.images.shape[0]
            if held < self.size:
                item = fake[i : i + 1]
                self.images = item.clone() if self.images is None else torch.cat([self.images, item])
            elif torch.rand((), generator=self.rng) < 0.5:
                assert self.images is not None  # full: held = size > 0
                k = int(torch.randint(0, held, (), generator=self.rng))
                out[i] = self.images[k]
                self.images[k] = fake[i]
        return out

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"rng": self.rng.get_state(), "size": self.size}
        if self.images is not None:
            state["images"] = self.images.detach().cpu().clone()
        return state

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.rng.set_state(state["rng"])
        self.images = state["images"].to(device) if "images" in state else None
