"""Autoencoders trained alone (family ``autoencoder``): plain, denoising and sparse."""

import pytest
import torch

from gankit.config import ConfigError
from gankit.recipes.load import load_recipe
from gankit.runlog import checkpoint as ck
from gankit.training.run import start_run
from gankit.training.trainer import Trainer

AE_DIGITS = [
    "data={name: digits, resolution: 16, holdout: 297}",
    "generator.width=16",
    "generator.max_channels=32",
    "generator.code_dim=16",
    "schedule.batch_size=32",
    "log.tensorboard=false",
]


def _family(tmp_path, *extra):
    return Trainer(load_recipe("dae-mnist", AE_DIGITS + list(extra)), tmp_path / "run").family


def test_corruptions(tmp_path):
    x = torch.rand(64, 1, 16, 16) * 2 - 1
    mask = _family(tmp_path, "family.noise=0.3")
    inp, target = mask.example(x)
    hit = inp != x
    assert torch.equal(target, x) and (inp[hit] == -1).all()
    assert 0.25 < hit.float().mean() < 0.35
    gauss = _family(tmp_path, "family.corruption=gaussian", "family.noise=0.5")
    inp, _ = gauss.example(x)
    assert (inp - x).std().item() == pytest.approx(0.5, rel=0.05)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(gauss.example(x, g1)[0], gauss.example(x, g2)[0])  # held-out corruption is fixed
    plain = _family(tmp_path, "family.corruption=none")
    assert torch.equal(plain.example(x)[0], x)


@pytest.mark.parametrize(
    "extra,match",
    [
        (["discriminator={name: dcgan}"], "trains no discriminator"),
        (["penalties=[{name: r1}]"], "no discriminator for a D penalty"),
        (["tricks=[{name: instance-noise}]"], "do not apply"),
        (["generator={name: unet}"], "needs generator=autoencoder"),
    ],
)
def test_autoencoder_refusals(tmp_path, extra, match):
    with pytest.raises(ConfigError, match=match):
        Trainer(load_recipe("dae-mnist", AE_DIGITS + extra), tmp_path / "run")


def test_a_gan_family_without_discriminator_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="needs a discriminator"):
        Trainer(load_recipe("dcgan-digits", ["discriminator=null"]), tmp_path / "run")


@pytest.mark.slow
def test_denoising_and_sparse_autoencoders_learn(tmp_path):
    dense = start_run(load_recipe("dae-mnist", AE_DIGITS + ["schedule.steps=300", "eval.every=0"]), out=tmp_path / "d")
    s = dense["eval"]
    assert s["l1"] < s["baseline_l1"] and s["psnr"] > s["baseline_psnr"], s  # it removes the corruption
    sparse = start_run(
        load_recipe(
            "dae-mnist",
            AE_DIGITS + ["schedule.steps=300", "eval.every=0", "family.sparsity=1.0", "generator.code_activation=relu"],
        ),
        out=tmp_path / "s",
    )
    assert sparse["eval"]["code_zero"] > s["code_zero"] + 0.3, (sparse["eval"], s)
    tensors, _ = ck.load_weights(ck.find_checkpoint(tmp_path / "d"))
    assert tensors and all(k.startswith("G.") for k in tensors)  # no discriminator anywhere
