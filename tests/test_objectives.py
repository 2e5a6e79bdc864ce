"""Objectives against hand-computed values (math.log / math.exp), gradients and BEGAN state."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from gankit.objectives import BEGAN, OBJECTIVES, Objective
from gankit.registry import RegistryError

R = [2.0, -1.0, 0.5]
F_ = [-3.0, 0.0, 1.0]


def t(xs: list[float], grad: bool = False) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64, requires_grad=grad)


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def close(actual: torch.Tensor, expected: float) -> None:
    assert_close(actual, torch.tensor(expected, dtype=actual.dtype), rtol=1e-10, atol=1e-12)


# Hand-derived values, written from the papers' equations in probability space.
BCE_D = mean([-math.log(sig(r)) for r in R]) + mean([-math.log(1 - sig(f)) for f in F_])
EXPECTED = {
    "minimax": (BCE_D, mean([math.log(1 - sig(f)) for f in F_])),
    "non-saturating": (BCE_D, mean([-math.log(sig(f)) for f in F_])),
    # exp(sigma^-1(p)) = p / (1 - p): the odds of D(G(z))
    "maximum-likelihood": (BCE_D, -0.5 * mean([sig(f) / (1 - sig(f)) for f in F_])),
    "wasserstein": (mean(F_) - mean(R), -mean(F_)),
    "least-squares": (
        0.5 * mean([(r - 1) ** 2 for r in R]) + 0.5 * mean([f**2 for f in F_]),
        0.5 * mean([(f - 1) ** 2 for f in F_]),
    ),
    "hinge": (mean([max(0.0, 1 - r) for r in R]) + mean([max(0.0, 1 + f) for f in F_]), -mean(F_)),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_losses_on_fixed_logits(name: str) -> None:
    obj = OBJECTIVES.build(name)
    d_exp, g_exp = EXPECTED[name]
    close(obj.d_loss(t(R), t(F_)), d_exp)
    close(obj.g_loss(t(F_)), g_exp)
    close(obj.g_loss(t(F_), t(R)), g_exp)  # real is accepted and ignored


def test_hand_values_spot_check() -> None:
    # guards the reference table itself: minimax D at r=f=0 is 2 log 2, hinge D at r=f=0 is 2
    close(OBJECTIVES.build("minimax").d_loss(t([0.0]), t([0.0])), 2 * math.log(2))
    close(OBJECTIVES.build("hinge").d_loss(t([0.0]), t([0.0])), 2.0)


def test_patch_logits_take_mean_over_all_elements() -> None:
    r = torch.tensor([[[1.0, -2.0], [0.5, 3.0]], [[0.0, 0.0], [-1.0, 2.0]]], dtype=torch.float64)
    f = -r.flip(0)
    obj = OBJECTIVES.build("least-squares")
    expected = 0.5 * mean([(v - 1) ** 2 for v in r.flatten().tolist()])
    expected += 0.5 * mean([v**2 for v in f.flatten().tolist()])
    close(obj.d_loss(r, f), expected)


def test_logistic_losses_are_stable_for_huge_logits() -> None:
    # log(sigmoid(-1e4)) is -inf in float32 when computed naively; the softplus form gives 1e4
    obj = OBJECTIVES.build("non-saturating")
    big = torch.tensor([1e4, -1e4], dtype=torch.float32)
    # each side: one confidently right (loss 0) and one confidently wrong (loss 1e4), mean 5e3
    assert_close(obj.d_loss(big, -big), torch.tensor(1e4), rtol=1e-6, atol=0.0)
    assert_close(obj.g_loss(big), torch.tensor(5e3), rtol=1e-6, atol=0.0)


def grad_of(obj: Objective, fake: list[float]) -> torch.Tensor:
    f = t(fake, grad=True)
    obj.g_loss(f).backward()
    assert f.grad is not None
    return f.grad


def test_minimax_saturates_non_saturating_does_not() -> None:
    n = 4
    fake = [-10.0] * n  # D(G(z)) = sigmoid(-10) ~ 4.5e-5: D confidently rejects the fakes
    g_mm = grad_of(OBJECTIVES.build("minimax"), fake)
    g_ns = grad_of(OBJECTIVES.build("non-saturating"), fake)
    # d/df [-softplus(f)/N] = -sigmoid(f)/N -> 0; d/df [softplus(-f)/N] = -(1 - sigmoid(f))/N -> -1/N
    assert (g_mm.abs() * n < 1e-3).all()
    assert_close(g_mm, torch.full((n,), -sig(-10.0) / n, dtype=torch.float64), rtol=1e-9, atol=0.0)
    assert_close(g_ns, torch.full((n,), -(1 - sig(-10.0)) / n, dtype=torch.float64), rtol=1e-9, atol=0.0)
    assert_close(g_ns * n, torch.full((n,), -1.0, dtype=torch.float64), rtol=0.0, atol=1e-4)


def test_maximum_likelihood_gradient() -> None:
    fake = [-2.0, 0.0, 1.5]
    g = grad_of(OBJECTIVES.build("maximum-likelihood"), fake)
    assert_close(g, t([-0.5 * math.exp(f) / 3 for f in fake]), rtol=1e-10, atol=0.0)


def test_least_squares_custom_targets() -> None:
    obj = OBJECTIVES.build("least-squares", a=-1.0, b=1.0, c=0.0)
    d_exp = 0.5 * mean([(r - 1) ** 2 for r in R]) + 0.5 * mean([(f + 1) ** 2 for f in F_])
    close(obj.d_loss(t(R), t(F_)), d_exp)
    close(obj.g_loss(t(F_)), 0.5 * mean([f**2 for f in F_]))
    # at its targets the D loss is exactly zero
    close(obj.d_loss(t([1.0, 1.0]), t([-1.0, -1.0])), 0.0)
    with pytest.raises(ValueError, match="distinct"):
        OBJECTIVES.build("least-squares", a=1.0, b=1.0)


def test_hinge_zero_when_margins_satisfied() -> None:
    obj = OBJECTIVES.build("hinge")
    r, f = t([1.0, 3.0], grad=True), t([-1.0, -5.0], grad=True)
    loss = obj.d_loss(r, f)
    close(loss, 0.0)
    loss.backward()
    assert r.grad is not None and f.grad is not None
    assert_close(r.grad, torch.zeros(2, dtype=torch.float64), rtol=0, atol=0)
    assert_close(f.grad, torch.zeros(2, dtype=torch.float64), rtol=0, atol=0)
    # one margin violated by 0.5 on each side -> (0.5/2) + (0.5/2)
    close(obj.d_loss(t([0.5, 3.0]), t([-0.5, -5.0])), 0.5)


def test_ebgan_margin() -> None:
    m = 2.0
    obj = OBJECTIVES.build("ebgan", m=m)
    assert obj.energy
    real = t([0.5, 1.5], grad=True)
    fake = t([3.0, 0.5], grad=True)  # 3.0 above the margin, 0.5 below it
    loss = obj.d_loss(real, fake)
    close(loss, mean([0.5, 1.5]) + mean([0.0, m - 0.5]))
    loss.backward()
    assert fake.grad is not None and real.grad is not None
    assert_close(fake.grad, t([0.0, -0.5]), rtol=0, atol=0)  # above m: zero gradient
    assert_close(real.grad, t([0.5, 0.5]), rtol=0, atol=0)
    close(obj.g_loss(t([3.0, 0.5])), 1.75)
    with pytest.raises(ValueError, match="margin"):
        OBJECTIVES.build("ebgan", m=-1.0)


def test_began_k_update_sequence_and_clamp() -> None:
    gamma, lam = 0.5, 0.1
    obj = OBJECTIVES.build("began", gamma=gamma, lambda_k=lam, k_init=0.2)
    assert obj.energy
    steps = [([1.0, 3.0], [0.2, 0.2]), ([2.0, 2.0], [0.0, 0.4]), ([0.0, 0.0], [4.0, 6.0])]
    k = 0.2
    for real, fake in steps:
        lr, lf = mean(real), mean(fake)
        # the D loss uses the k *before* this step's update (k_t is float32)
        assert_close(obj.d_loss(t(real), t(fake)), torch.tensor(lr - k * lf, dtype=torch.float64), rtol=1e-6, atol=1e-7)
        obj.update(torch.tensor(real), torch.tensor(fake))
        k = min(1.0, max(0.0, k + lam * (gamma * lr - lf)))
        assert_close(obj.k_t, torch.tensor(k, dtype=torch.float32), rtol=1e-6, atol=1e-7)
        assert_close(obj.log_values()["m_global"], torch.tensor(lr + abs(gamma * lr - lf)), rtol=1e-6, atol=1e-7)
    # step 1: 0.2 + 0.1*(1.0 - 0.2) = 0.28; step 2: 0.28 + 0.1*(1.0 - 0.2) = 0.36; step 3: 0.36 - 0.5 -> 0
    assert obj.k_t.item() == 0.0
    hi = OBJECTIVES.build("began", gamma=1.0, lambda_k=1.0, k_init=0.9)
    hi.update(torch.tensor([5.0]), torch.tensor([0.0]))
    assert hi.k_t.item() == 1.0  # 0.9 + 5 clamped
    close(hi.g_loss(t([0.25, 0.75])), 0.5)


def test_began_state_round_trip_and_logs() -> None:
    a = BEGAN(gamma=0.7, lambda_k=0.01, k_init=0.0)
    assert a.k_t.ndim == 0 and a.k_t.dtype == torch.float32
    assert set(a.log_values()) == {"k_t"}  # M_global unknown before the first update
    for i in range(5):
        a.update(torch.rand(8) + i, torch.rand(8))
    assert set(a.log_values()) == {"k_t", "m_global"}
    sd = a.state_dict()
    assert set(sd) == {"k_t"} and sd["k_t"].ndim == 0
    b = BEGAN(gamma=0.7, lambda_k=0.01)
    b.load_state_dict(sd)
    assert torch.equal(b.k_t, a.k_t) and b.k_t.item() > 0.0
    real, fake = torch.rand(8), torch.rand(8)
    a.update(real, fake)
    b.update(real, fake)
    assert torch.equal(a.k_t, b.k_t)  # bit-exact continuation
    live = a.k_t.clone()
    a.state_dict()["k_t"].add_(1.0)  # editing a saved state must not move the live k_t
    assert torch.equal(a.k_t, live)
    with pytest.raises(ValueError, match="k_t"):
        b.load_state_dict({"k": torch.tensor(0.0)})
    assert b.to("cpu") is b


@pytest.mark.parametrize(
    "kw, match", [({"gamma": 0.0}, "gamma"), ({"lambda_k": -1.0}, "lambda_k"), ({"k_init": 1.5}, "k_init")]
)
def test_began_rejects_bad_arguments(kw: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OBJECTIVES.build("began", **kw)


def test_stateless_objectives_reject_state() -> None:
    obj = OBJECTIVES.build("hinge")
    assert obj.state_dict() == {} and obj.log_values() == {}
    obj.load_state_dict({})
    with pytest.raises(ValueError):
        obj.load_state_dict({"k_t": torch.tensor(0.0)})


# -- registry-wide ---------------------------------------------------------------------------------
def test_registered_names() -> None:
    assert OBJECTIVES.names() == sorted(
        [
            "minimax",
            "non-saturating",
            "maximum-likelihood",
            "wasserstein",
            "least-squares",
            "hinge",
            "relativistic",
            "relativistic-average",
            "ebgan",
            "began",
        ]
    )


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_every_objective(name: str) -> None:
    obj = OBJECTIVES.build(name)
    assert isinstance(obj, Objective) and obj.to("cpu") is obj
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(6, generator=gen)
    fake = torch.randn(6, generator=gen)
    if obj.energy:  # energies are >= 0
        real, fake = real.abs(), fake.abs()
    real.requires_grad_(True)
    fake.requires_grad_(True)
    if name == "began":  # with k_t = 0 the fake term of D's loss is switched off
        obj.load_state_dict({"k_t": torch.tensor(0.5)})
    d, g = obj.d_loss(real, fake), obj.g_loss(fake, real)  # every family passes D's real outputs
    for loss in (d, g):
        assert loss.ndim == 0 and torch.isfinite(loss).item()
    (d_real, d_fake) = torch.autograd.grad(d, (real, fake))
    (g_fake,) = torch.autograd.grad(g, fake)
    assert d_real.abs().sum() > 0 and d_fake.abs().sum() > 0 and g_fake.abs().sum() > 0
    obj.update(real.detach(), fake.detach())


def test_indexing_builds_with_defaults() -> None:
    h = OBJECTIVES["hinge"]
    assert callable(h.d_loss) and callable(h.g_loss)
    ls = OBJECTIVES["least-squares"]
    assert (ls.a, ls.b, ls.c) == (0.0, 1.0, 1.0)


def test_unknown_option_names_valid_ones() -> None:
    with pytest.raises(RegistryError, match=r"valid options: a, b, c"):
        OBJECTIVES.build("least-squares", margin=1.0)
    with pytest.raises(RegistryError, match=r"valid choices: .*hinge"):
        OBJECTIVES.build("hinge-loss")
    with pytest.raises(RegistryError, match="m"):
        OBJECTIVES.build("ebgan", m="wide")
