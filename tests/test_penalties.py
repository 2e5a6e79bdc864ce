"""Penalties against analytic values on linear discriminators, and the constraint hooks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gankit.models.base import DOut
from gankit.penalties import PENALTIES, Penalty, input_gradients, off_diagonal_gram_sq
from gankit.registry import RegistryError


class LinearD(nn.Module):
    """D(x) = sum(W * x) + b per sample: its input gradient is W everywhere."""

    def __init__(self, w: torch.Tensor, b: float = 0.3) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(b, dtype=w.dtype))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        out = (x * self.w).flatten(1).sum(1) + self.b
        if y is not None:
            out = out + y.to(out.dtype)  # a label shift: no effect on the input gradient
        return DOut(logits=out)


class PatchD(nn.Module):
    """Patch logits (N, 2): sum x * W_k for two patches; the per-sample score gradient is W_0 + W_1."""

    def __init__(self, w0: torch.Tensor, w1: torch.Tensor) -> None:
        super().__init__()
        self.w0, self.w1 = nn.Parameter(w0.clone()), nn.Parameter(w1.clone())

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        return DOut(logits=torch.stack([(x * self.w0).flatten(1).sum(1), (x * self.w1).flatten(1).sum(1)], dim=1))


class Quad(nn.Module):
    """D(x) = ||x||^2 / 2 per sample: its input gradient is x itself."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        return DOut(logits=0.5 * x.pow(2).flatten(1).sum(1))


class MLPD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        return DOut(logits=self.net(x).squeeze(1))


def dbl(xs: list[float]) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64)


def points(n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g, dtype=torch.float64), torch.randn(n, 2, generator=g, dtype=torch.float64)


# -- gradient penalties ----------------------------------------------------------------------------
def test_r1_of_linear_d_is_half_gamma_w_squared() -> None:
    w = dbl([3.0, -4.0])  # ||w||^2 = 25
    real, fake = points()
    val = PENALTIES.build("r1", gamma=2.0)(LinearD(w), real, fake)
    assert_close(val, torch.tensor(0.5 * 2.0 * 25.0, dtype=torch.float64), rtol=1e-12, atol=0.0)


def test_r2_uses_fake_and_is_half_gamma_w_squared() -> None:
    w = dbl([1.0, 2.0])
    real, fake = points()
    fake.requires_grad_(True)
    r2 = PENALTIES.build("r2", gamma=4.0)
    val = r2(LinearD(w), None, fake)  # needs no real batch at all
    assert_close(val, torch.tensor(0.5 * 4.0 * 5.0, dtype=torch.float64), rtol=1e-12, atol=0.0)
    val.backward()
    assert fake.grad is None  # fake was detached: R2 trains D only
    with pytest.raises(ValueError, match="fake"):
        r2(LinearD(w), real, None)


@pytest.mark.parametrize("scale, expected", [(1.0, 0.0), (2.0, 10.0), (0.5, 2.5)])
def test_wgan_gp_of_linear_d(scale: float, expected: float) -> None:
    w = dbl([0.6, 0.8]) * scale  # ||w|| = scale -> lam (scale - 1)^2 with lam = 10
    real, fake = points()
    val = PENALTIES.build("wgan-gp")(LinearD(w), real, fake)
    assert_close(val, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_gradient_norm_spans_all_non_batch_dims() -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 4, 4, generator=g, dtype=torch.float64)
    real = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    fake = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    fro = w.pow(2).sum().sqrt().item()
    per_row = w.pow(2).sum(-1).sqrt()  # what a norm over the last dim only would see
    assert not math.isclose(per_row.mean().item(), fro, rel_tol=1e-3)
    D = LinearD(w)
    grads = input_gradients(D, real)
    assert grads.shape == (2, 48)
    assert_close(grads.norm(dim=1), torch.full((2,), fro, dtype=torch.float64), rtol=1e-12, atol=0.0)
    assert_close(
        PENALTIES.build("r1", gamma=2.0)(D, real, fake), torch.tensor(fro**2, dtype=torch.float64), rtol=1e-12, atol=0.0
    )
    gp = PENALTIES.build("wgan-gp", lam=1.0)(D, real, fake)
    assert_close(gp, torch.tensor((fro - 1.0) ** 2, dtype=torch.float64), rtol=1e-12, atol=0.0)


def test_patch_logits_are_summed_per_sample() -> None:
    w0, w1 = dbl([1.0, 0.0]), dbl([0.0, 2.0])  # score gradient (1, 2): ||.||^2 = 5
    real, fake = points()
    val = PENALTIES.build("r1", gamma=2.0)(PatchD(w0, w1), real, fake)
    assert_close(val, torch.tensor(5.0, dtype=torch.float64), rtol=1e-12, atol=0.0)


def test_labels_are_passed_to_the_net() -> None:
    seen: list[torch.Tensor | None] = []

    class Spy(LinearD):
        def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
            seen.append(y)
            return super().forward(x, y)

    real, fake = points(4)
    y = torch.tensor([0, 1, 2, 3])
    for name in ("r1", "r2", "wgan-gp"):
        PENALTIES.build(name)(Spy(dbl([1.0, 1.0])), real, fake, y)
    assert len(seen) == 3 and all(s is y for s in seen)


@pytest.mark.parametrize("name", ["r1", "r2", "wgan-gp"])
def test_gradient_penalty_trains_d(name: str) -> None:
    # D(x) = w . tanh(A x): the input gradient depends on A and w, so the penalty must reach both
    torch.manual_seed(0)
    D = MLPD()
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    PENALTIES.build(name)(D, real, fake).backward()
    for p in (D.net[0].weight, D.net[2].weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_wgan_gp_draws_eps_from_global_rng() -> None:
    # with the quadratic D the gradient is x_hat itself, so the value reveals eps
    real = torch.tensor([[2.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    fake = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(123)
    val = PENALTIES.build("wgan-gp", lam=1.0)(Quad(), real, fake)
    torch.manual_seed(123)
    eps = torch.rand(2, 1, dtype=torch.float64)
    expected = ((eps[:, 0] * torch.tensor([2.0, 4.0], dtype=torch.float64) - 1.0) ** 2).mean()
    assert_close(val, expected, rtol=1e-12, atol=0.0)
    val.backward()
    assert fake.grad is None  # G(z) is detached: the penalty trains D only


@pytest.mark.parametrize("name, side", [("r1", "real"), ("r2", "fake")])
def test_zero_centred_penalties_use_their_batch(name: str, side: str) -> None:
    # quadratic D: grad = x, so R = gamma/2 E ||x||^2 over the penalised batch only
    real = dbl([[1.0, 2.0], [3.0, 0.0]]).requires_grad_(True)  # E ||x||^2 = (5 + 9) / 2 = 7
    fake = dbl([[0.0, 1.0], [1.0, 1.0]]).requires_grad_(True)  # E ||x||^2 = (1 + 2) / 2 = 1.5
    val = PENALTIES.build(name, gamma=4.0)(Quad(), real, fake)
    assert_close(val, torch.tensor(2.0 * (7.0 if side == "real" else 1.5), dtype=torch.float64), rtol=1e-12, atol=0.0)
    val.backward()
    assert real.grad is None and fake.grad is None  # inputs are detached: only D is trained


# -- constraints -----------------------------------------------------------------------------------
def test_weight_clipping_bounds_every_parameter() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Conv1d(1, 2, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(10.0)
    clip = PENALTIES.build("weight-clipping", c=0.05)
    assert not clip.adds_loss and clip(net, None, None) is None
    before = [p.detach().clone() for p in net.parameters()]
    clip.post_step(net)
    for b, p in zip(before, net.parameters()):
        assert_close(p.detach(), b.clamp(-0.05, 0.05), rtol=0, atol=0)
    assert max(p.abs().max().item() for p in net.parameters()) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="c must be > 0"):
        PENALTIES.build("weight-clipping", c=-0.1)


def _sn_sigma(m: nn.Module) -> float:
    w = m.weight.detach()
    return torch.linalg.svdvals(w.reshape(w.shape[0], -1)).max().item()


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_spectral_norm_makes_sigma_one(kind: str) -> None:
    torch.manual_seed(0)
    if kind == "linear":
        layer: nn.Module = nn.Linear(12, 7)
        x = torch.randn(4, 12)
    else:
        layer = nn.Conv2d(3, 6, 3)
        x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        layer.weight.mul_(5.0)  # sigma well away from 1 before normalisation
    net = nn.Sequential(layer)
    assert _sn_sigma(layer) > 2.0
    sn = PENALTIES.build("spectral-norm")
    assert not sn.adds_loss and sn.target == "D"
    sn.on_build(net)
    net.train()
    for _ in range(50):
        net(x)
    with torch.no_grad():
        assert _sn_sigma(layer) == pytest.approx(1.0, rel=1e-2)


def test_spectral_norm_covers_layer_types_and_is_idempotent() -> None:
    net = nn.Sequential(
        nn.Linear(4, 4),
        nn.Conv1d(2, 2, 1),
        nn.Conv2d(2, 2, 1),
        nn.Conv3d(2, 2, 1),
        nn.ConvTranspose1d(2, 3, 1),
        nn.ConvTranspose2d(2, 3, 1),
        nn.ConvTranspose3d(2, 3, 1),
        nn.Embedding(5, 4),
        nn.LayerNorm(4),
    )
    sn = PENALTIES.build("spectral-norm", target="G")
    assert sn.target == "G"
    sn.on_build(net)
    sn.on_build(net)  # a second call must not stack a second normalisation
    from torch.nn.utils import parametrize

    for m in list(net)[:8]:
        assert parametrize.is_parametrized(m, "weight")
        assert len(m.parametrizations["weight"]) == 1
        dim = m.parametrizations["weight"][0].dim
        assert dim == (1 if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0)
    assert not parametrize.is_parametrized(net[8])


def test_orthogonal_hand_computed() -> None:
    w = dbl([[1.0, 2.0], [0.0, 1.0], [3.0, -1.0]])  # 3 x 2: a tall matrix
    # W W^T off-diagonal: (r0.r1, r0.r2, r1.r2) = (2, 1, -1), each twice: 2 * (4 + 1 + 1) = 12
    assert_close(off_diagonal_gram_sq(w), torch.tensor(12.0, dtype=torch.float64), rtol=1e-12, atol=0.0)
    # W^T (2 x 3, wide): rows (1, 0, 3) and (2, 1, -1), dot -1, counted twice -> 2
    assert_close(off_diagonal_gram_sq(w.T), torch.tensor(2.0, dtype=torch.float64), rtol=1e-12, atol=0.0)
    lin = nn.Linear(2, 3).double()
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.fill_(100.0)  # biases are excluded
    pen = PENALTIES.build("orthogonal", beta=0.5)
    assert pen.target == "G" and pen.adds_loss
    val = pen(lin, None, None)
    assert_close(val, torch.tensor(6.0, dtype=torch.float64), rtol=1e-12, atol=0.0)
    val.backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0 and lin.bias.grad is None


def test_orthogonal_zero_for_orthonormal_rows_and_conv_reshape() -> None:
    q, _ = torch.linalg.qr(torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    lin = nn.Linear(6, 4, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(q.T * 3.0)  # orthogonal rows of norm 3: the diagonal is not penalised
    assert_close(
        PENALTIES.build("orthogonal")(lin, None, None), torch.tensor(0.0, dtype=torch.float64), rtol=0, atol=1e-14
    )
    conv = nn.Conv2d(2, 3, 2, bias=False).double()
    rows = conv.weight.detach().reshape(3, -1)
    gram = rows @ rows.T
    expected = 1e-4 * (gram.pow(2).sum() - gram.diagonal().pow(2).sum())
    assert_close(PENALTIES.build("orthogonal")(conv, None, None), expected, rtol=1e-12, atol=0.0)


# -- registry-wide ---------------------------------------------------------------------------------
def test_registered_names() -> None:
    assert PENALTIES.names() == sorted(
        ["wgan-gp", "r1", "r2", "weight-clipping", "spectral-norm", "orthogonal", "drift"]
    )


@pytest.mark.parametrize("name", PENALTIES.names())
def test_every_penalty(name: str) -> None:
    pen = PENALTIES.build(name)
    assert isinstance(pen, Penalty) and pen.target in ("D", "G")
    torch.manual_seed(0)
    D = MLPD()
    pen.on_build(D)
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    out = pen(D, real, fake)
    if pen.adds_loss:
        assert out is not None and out.ndim == 0 and torch.isfinite(out).item() and out.item() > 0
    else:
        assert out is None
    pen.post_step(D)


def test_bad_options() -> None:
    with pytest.raises(RegistryError, match="valid options: every, gamma"):
        PENALTIES.build("r1", lam=1.0)
    with pytest.raises(RegistryError, match="target"):
        PENALTIES.build("orthogonal", target="E")
    with pytest.raises(RegistryError, match="valid choices: .*wgan-gp"):
        PENALTIES.build("wgangp")
    with pytest.raises(ValueError, match="lam"):
        PENALTIES.build("wgan-gp", lam=-1.0)


def test_lazy_r1_is_added_every_kth_step_scaled_by_k() -> None:
    """StyleGAN2's lazy regularisation: with every=k the R1 term appears on steps 0, k, 2k ... only,
    multiplied by k, so that its weight averaged over steps equals the eager one's."""
    from gankit.families import FAMILIES, StepContext
    from gankit.objectives import OBJECTIVES

    torch.manual_seed(0)
    D = nn.Sequential(nn.Flatten(), nn.Linear(2, 1))
    x = torch.randn(8, 2)
    G = nn.Linear(2, 2)
    G.z_dim = 2
    eager, lazy = PENALTIES.build("r1", gamma=2.0), PENALTIES.build("r1", gamma=2.0, every=4)

    def d_fn(v: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        return DOut(logits=D(v).squeeze(1))

    values = {}
    for name, pen in (("eager", eager), ("lazy", lazy)):
        fam = FAMILIES.get("unconditional")(
            G, d_fn, OBJECTIVES.build("non-saturating"), [("r1", pen)], torch.device("cpu")
        )
        for step in range(6):
            terms = fam.d_loss_terms(x, x.flip(0), StepContext(torch.device("cpu"), 8, step=step))
            values[name, step] = terms.get("pen/r1")
    for step in range(6):
        assert values["eager", step] is not None
        if step % 4:
            assert values["lazy", step] is None
        else:
            torch.testing.assert_close(values["lazy", step], 4 * values["eager", step])
    with pytest.raises(ValueError, match="every must be >= 1"):
        PENALTIES.build("r1", every=0)


def test_drift_is_eps_times_mean_squared_real_logit() -> None:
    torch.manual_seed(0)
    D = nn.Linear(3, 1)
    x = torch.randn(10, 3)

    def d_fn(v: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        return DOut(logits=D(v).squeeze(1))

    pen = PENALTIES.build("drift", eps=0.01)
    expected = 0.01 * (x @ D.weight.T + D.bias).squeeze(1).pow(2).mean()
    assert_close(pen(d_fn, x, None), expected)
    pen(d_fn, x, None).backward()
    assert D.weight.grad is not None and D.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="drift eps"):
        PENALTIES.build("drift", eps=-1)


def test_refresh_spectral_norm_restores_the_singular_vectors_after_averaging() -> None:
    """An EMA averages SN's u and v buffers with the weights: they end up shorter than unit length and
    the eval-mode sigma = u^T W v is underestimated. refresh_spectral_norm re-estimates them from W."""
    from gankit.penalties import refresh_spectral_norm

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.ConvTranspose2d(5, 3, 4))
    PENALTIES.build("spectral-norm").on_build(net)
    lin, conv = net[0], net[2]
    with torch.no_grad():  # what averaging two different estimates does to u and v
        for m in (lin, conv):
            sn = m.parametrizations.weight[0]
            sn._u.mul_(0.7).add_(0.3 * torch.randn_like(sn._u) / sn._u.numel() ** 0.5)
            sn._v.mul_(0.6)
    net.eval()
    stale = torch.linalg.matrix_norm(lin.weight, 2)  # W / sigma_estimate with the stale vectors
    assert stale > 1.3
    assert refresh_spectral_norm(net, iterations=50) == 2
    assert torch.linalg.matrix_norm(lin.weight, 2).item() == pytest.approx(1.0, abs=1e-3)
    # a transposed conv is normalised along dim 1, its output channels
    assert torch.linalg.matrix_norm(conv.weight.movedim(1, 0).flatten(1), 2).item() == pytest.approx(1.0, abs=1e-3)


def test_ema_of_a_spectrally_normalised_generator_keeps_unit_vectors() -> None:
    from gankit.recipes.load import load_recipe
    from gankit.training.trainer import Trainer

    t = Trainer(
        load_recipe(
            "dcgan-digits",
            [
                "log.tensorboard=false",
                "schedule.steps=6",
                "eval.metrics=[]",
                "eval.best=null",
                "ema={enabled: true, decay: 0.5, start: 0}",
                "penalties=[{name: spectral-norm, target: G}]",
            ],
        ),
        "/nonexistent",
    )
    for _ in range(6):
        t.train_step(want_log=False)
    G = t.ema.module.eval()
    for m in G.modules():
        if hasattr(m, "parametrizations"):
            sn = m.parametrizations.weight[0]
            assert sn._u.norm().item() == pytest.approx(1.0, abs=1e-5)
            assert sn._v.norm().item() == pytest.approx(1.0, abs=1e-5)
