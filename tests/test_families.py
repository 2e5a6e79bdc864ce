"""The bidirectional families (BiGAN / ALI, VEEGAN): losses as the papers write them, composition
rules, checkpoints with the encoder, and `gankit encode`."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from family_steps import batch, context

from gankit.config import ConfigError
from gankit.families import FAMILIES
from gankit.families.bidirectional import pair
from gankit.models import DISCRIMINATORS, ENCODERS, GENERATORS
from gankit.objectives import OBJECTIVES
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer

ENC = "encoder={name: mlp-encoder, hidden: [32]}"


def trainer(family, *overrides, steps=10):
    return Trainer(
        load_recipe(
            "gan-grid", ["log.tensorboard=false", f"schedule.steps={steps}", f"family={family}", ENC, *overrides]
        ),
        "/nonexistent",
    )


def _family(name, objective="non-saturating"):
    torch.manual_seed(0)
    G = GENERATORS.build("mlp", out_shape=(2,), num_classes=0, z_dim=3, hidden=[8])
    E = ENCODERS.build("mlp-encoder", in_shape=(2,), z_dim=3, hidden=[8])
    D = DISCRIMINATORS.build("mlp", in_shape=FAMILIES.get(name).d_in_shape((2,), 3), num_classes=0, hidden=[8])
    real = torch.randn(16, 2)
    z = torch.randn(16, 3)
    fam = FAMILIES.get(name)(G, D, OBJECTIVES.build(objective), [], torch.device("cpu"), encoder=E)
    fam.test_args = (batch(real), context(16, z=z))
    return fam, real, z


def test_pair_joins_flattened_x_and_z():
    x, z = torch.arange(8.0).view(2, 1, 2, 2), torch.tensor([[9.0], [10.0]])
    assert torch.equal(pair(x, z), torch.tensor([[0.0, 1, 2, 3, 9], [4, 5, 6, 7, 10]]))
    assert FAMILIES.get("bigan").d_in_shape((1, 2, 2), 1) == (5,)


def test_bigan_losses_follow_donahue_eq3():
    fam, x, z = _family("bigan")
    d = lambda v: fam.D(v).logits
    real_pair, fake_pair = pair(x, fam.E(x)), pair(fam.G(z), z)
    # D: -E log D(x, E(x)) - E log(1 - D(G(z), z)); G and E: the same with the pair labels swapped.
    d_expected = F.softplus(-d(real_pair)).mean() + F.softplus(d(fake_pair)).mean()
    g_expected = F.softplus(-d(fake_pair)).mean() + F.softplus(d(real_pair)).mean()
    assert fam.d_terms(*fam.test_args)["loss"].item() == pytest.approx(d_expected.item(), rel=1e-6)
    g = fam.g_terms(*fam.test_args)["loss"]
    assert g.item() == pytest.approx(g_expected.item(), rel=1e-6)
    # E learns from the adversarial loss (through the real pairs), unlike VEEGAN's F.
    assert torch.autograd.grad(g, list(fam.E.parameters()))[0].abs().sum() > 0
    mm, *_ = _family("bigan", "minimax")
    assert mm.g_terms(*mm.test_args)["loss"].item() == pytest.approx(-d_expected.item(), rel=1e-6)


def test_veegan_losses_follow_algorithm_1():
    fam, x, z = _family("veegan")
    gz = fam.G(z)
    logit = fam.D(pair(gz, z)).logits
    recon = (z - fam.E(gz)).square().sum(1).mean()
    terms = fam.g_terms(*fam.test_args)
    assert terms["recon"].item() == pytest.approx(recon.item(), rel=1e-6)
    assert terms["loss"].item() == pytest.approx((-logit.mean() + recon).item(), rel=1e-6)
    # F (the encoder) learns from the reconstruction alone; G from both terms.
    e_grad = torch.autograd.grad(terms["loss"], list(fam.E.parameters()), retain_graph=True)
    e_recon = torch.autograd.grad(terms["recon"], list(fam.E.parameters()), retain_graph=True)
    assert all(torch.allclose(a, b) for a, b in zip(e_grad, e_recon))
    g_grad = torch.autograd.grad(terms["loss"], list(fam.G.parameters()), retain_graph=True)
    g_recon = torch.autograd.grad(terms["recon"], list(fam.G.parameters()))
    assert not all(torch.allclose(a, b) for a, b in zip(g_grad, g_recon))
    d_expected = F.softplus(-fam.D(pair(x, fam.E(x))).logits).mean() + F.softplus(logit).mean()
    assert fam.d_terms(*fam.test_args)["loss"].item() == pytest.approx(d_expected.item(), rel=1e-6)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ((), None),
        (("objective.name=hinge",), "veegan"),
        (("tricks=[{name: unrolled}]",), "unrolled"),
        (("tricks=[{name: feature-matching}]",), "feature-matching"),
    ],
)
def test_veegan_composition_rules(overrides, match):
    if match is None:
        trainer("veegan", "tricks=[{name: pacgan, m: 2}, {name: instance-noise}]").train_step(False)
        return
    with pytest.raises(ConfigError, match=match):
        trainer("veegan", *overrides)


def test_encoder_is_required_exactly_by_the_bidirectional_families():
    with pytest.raises(ConfigError, match="needs an encoder"):
        Trainer(load_recipe("gan-grid", ["family=bigan", "log.tensorboard=false"]), "/nonexistent")
    with pytest.raises(ConfigError, match="has no encoder"):
        Trainer(load_recipe("gan-grid", [ENC, "log.tensorboard=false"]), "/nonexistent")
    with pytest.raises(ConfigError, match="hinge|objectives"):
        trainer("bigan", "objective.name=ebgan")


def test_bigan_checkpoints_keep_the_encoder_and_resume_exactly(tmp_path):
    from gankit.runlog.checkpoint import load_weights
    from gankit.training.run import resume_run, start_run

    over = ["log.tensorboard=false", "log.checkpoint_every=3", "family=bigan", ENC, "eval.every=0"]
    full = start_run(load_recipe("gan-grid", [*over, "schedule.steps=6"]), out=tmp_path / "full")
    start_run(load_recipe("gan-grid", [*over, "schedule.steps=3"]), out=tmp_path / "half")
    resumed = resume_run(tmp_path / "half", ["schedule.steps=6"])
    a, _ = load_weights(full["checkpoint"])
    b, _ = load_weights(resumed["checkpoint"])
    assert any(k.startswith("E.") for k in a)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_bigan_learns_an_inverse_and_encode_writes_it(tmp_path):
    from gankit.cli import main
    from gankit.training.run import start_run

    torch.set_num_threads(1)
    res = start_run(
        load_recipe(
            "bigan-ring",
            [
                "log.tensorboard=false",
                "schedule.steps=1500",
                "eval.every=0",
                "log.sample_every=0",
                "log.checkpoint_every=0",
            ],
        ),
        out=tmp_path / "run",
    )
    out = tmp_path / "z.npz"
    assert main(["encode", str(res["run_dir"]), "--out", str(out), "--num", "2000"]) == 0
    z = torch.from_numpy(np.load(out)["z"])
    assert z.shape == (2000, 2)
    # E approximately inverts G: G(E(x)) lands much nearer x than G of a random latent does.
    from gankit.sampling import load_generator

    G, recipe, *_ = load_generator(res["run_dir"], device="cpu")
    from gankit.training.build import build_data

    x, _ = build_data(recipe).sample_real(2000, seed=0)
    with torch.no_grad():
        recon = (G(z) - x).norm(dim=1).median()
        shuffled = (G(z[torch.randperm(2000)]) - x).norm(dim=1).median()
    assert recon < 0.6 * shuffled, (recon, shuffled)
    assert main(["encode", str(res["run_dir"]), "--out", str(tmp_path / "z.png")]) == 2
