"""Tricks that change the game's players: PacGAN's packed D (Lin et al. 2018), the unrolled G (Metz et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.func import functional_call

from gankit.models.base import DOut
from gankit.tricks.base import TRICKS, Trick


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

    def d_rows(self, rows: int) -> int:
        return rows // self.m

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
