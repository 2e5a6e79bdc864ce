"""Relativistic objectives (issue 21): RpGAN and RaGAN against values computed by hand, their use of
D's real outputs in G's loss, and a short training run in the families that take any objective."""

import math

import pytest
import torch

from gankit.objectives import OBJECTIVES
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer


def sp(t: float) -> float:
    """softplus(t) = log(1 + e^t), written out."""
    return math.log(1.0 + math.exp(t))


R = torch.tensor([1.0, 2.0, -0.5])
F_ = torch.tensor([0.0, 3.0, -1.0])


def test_rpgan_pairs_real_and_fake_samples():
    obj = OBJECTIVES.build("relativistic")
    pairs = list(zip(R.tolist(), F_.tolist()))
    d = sum(sp(-(r - f)) for r, f in pairs) / 3
    g = sum(sp(-(f - r)) for r, f in pairs) / 3
    assert obj.d_loss(R, F_).item() == pytest.approx(d, rel=1e-6)
    assert obj.g_loss(F_, R).item() == pytest.approx(g, rel=1e-6)
    assert obj.g_uses_real


def test_ragan_compares_with_the_other_sides_mean():
    obj = OBJECTIVES.build("relativistic-average")
    mr, mf = sum(R.tolist()) / 3, sum(F_.tolist()) / 3
    d = sum(sp(-(r - mf)) for r in R.tolist()) / 3 + sum(sp(f - mr) for f in F_.tolist()) / 3
    g = sum(sp(r - mf) for r in R.tolist()) / 3 + sum(sp(-(f - mr)) for f in F_.tolist()) / 3
    assert obj.d_loss(R, F_).item() == pytest.approx(d, rel=1e-6)
    assert obj.g_loss(F_, R).item() == pytest.approx(g, rel=1e-6)


@pytest.mark.parametrize("name", ["relativistic", "relativistic-average"])
def test_g_loss_without_real_outputs_is_a_clear_error(name):
    with pytest.raises(ValueError, match="real"):
        OBJECTIVES.build(name).g_loss(F_)


def test_rpgan_shapes_must_pair():
    with pytest.raises(ValueError, match="pairs"):
        OBJECTIVES.build("relativistic").d_loss(R, F_[:2])


def test_relativistic_g_gradient_pushes_fakes_above_reals():
    fake = F_.clone().requires_grad_(True)
    for name in ("relativistic", "relativistic-average"):
        (grad,) = torch.autograd.grad(OBJECTIVES.build(name).g_loss(fake, R), fake)
        assert (grad < 0).all(), name  # raising a fake's score lowers G's loss


@pytest.mark.parametrize("name", ["relativistic", "relativistic-average"])
def test_trains_on_the_ring(name, tmp_path):
    r = load_recipe(
        "gan-ring",
        [
            f"objective.name={name}",
            "schedule.steps=30",
            "log.tensorboard=false",
            "eval.metrics=[]",
            "log.sample_every=0",
        ],
    )
    t = Trainer(r, tmp_path / "run")
    before = [p.clone() for p in t.G.parameters()]
    for _ in range(30):
        terms = t.train_step(want_log=True)
    assert all(torch.isfinite(v).all() for v in terms.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters()))
