"""Every shipped recipe trains: a few steps of each on the built-in digits (no files needed), with the
recipe's own networks, objective, penalties, tricks and family. Slow convergence checks live in
tests/test_convergence.py; this one catches a recipe that cannot start or produces NaNs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.recipes import RECIPES
from gankit.recipes.load import load_recipe
from gankit.training.autoperf import cpu_has_bf16
from gankit.training.trainer import Trainer

FILE_DATA = ("mnist", "npz", "cifar10", "image-folder")


def _overrides(name: str, tmp_path: Path) -> list[str]:
    raw = RECIPES.build(name)
    data = raw["data"]
    out = [
        "schedule.steps=2",
        "schedule.decay_start=0",
        "schedule.batch_size=8",
        "eval.metrics=[]",
        "eval.best=null",
        "log.tensorboard=false",
        "ema.start=0",
    ]
    if data["name"] in FILE_DATA:
        # the same resolution and channels from the built-in digits, so the recipe's networks are unchanged
        res = int(data.get("resolution", 28 if data["name"] == "mnist" else 32))
        channels = 3 if data["name"] in ("npz", "cifar10") else 1
        # the semi-supervised split, scaled to the 1797 digits
        split = "".join(f", {k}: {v}" for k, v in (("holdout", 200), ("labels_per_class", 5)) if k in data)
        if channels == 1:
            out.append(f"data={{name: digits, resolution: {res}{split}}}")
        else:  # colour: a small random RGB set in the npz format, labelled like RetinaMNIST (5 classes)
            rng = np.random.default_rng(0)
            np.savez(
                tmp_path / "rgb.npz",
                images=rng.integers(0, 256, (16, res, res, 3), dtype=np.uint8),
                labels=np.arange(16) % 5,
            )
            out.append(f"data={{name: npz, path: {tmp_path / 'rgb.npz'}}}")
    if data["name"] in ("pairs", "unpaired") and data.get("base") == "mnist":  # the same task on the built-in digits
        out += ["data.base=digits", "data.path=null", "data.split=train", "data.holdout=200"]
    return out


IMAGE_RECIPES = [n for n in RECIPES.names() if RECIPES.build(n)["data"]["name"] not in ("ring", "grid")]


# float32, and bf16 autocast where the CPU computes in bf16 (what `perf: auto` picks there; a kernel
# without a bf16 version, R3GAN's antialiased resampling, failed there). Elsewhere bf16 is emulated, some
# 70x slower, and a few steps of the CIFAR-10-sized recipes take minutes: tests/test_perf.py and
# tests/test_r3gan.py check small networks under bf16 on every CPU.
AMPS = ["none", pytest.param("bf16", marks=pytest.mark.skipif(not cpu_has_bf16(), reason="bf16 emulated here"))]


@pytest.mark.parametrize("amp", AMPS)
@pytest.mark.parametrize("name", IMAGE_RECIPES)
def test_every_image_recipe_trains_a_few_steps(name: str, amp: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    t = Trainer(load_recipe(name, [*_overrides(name, tmp_path), f"perf.amp={amp}"]), "/nonexistent")
    assert t.precision.amp == amp
    before = [p.detach().clone() for p in t.G.parameters()]
    for _ in range(2):
        terms = t.train_step(want_log=True)
    assert terms and all(torch.isfinite(v).all() for v in terms.values()), f"{name}: non-finite terms {terms}"
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters())), f"{name}: G did not change"
    if t.family.translates:  # (input, output, target) triples of held-out images
        images, _ = t.family.sample_grid(t.G, t.grid_images(), n=4)
        per_example = 6 if t.family.two_way else 3  # CycleGAN: both ways and both cycles
        assert images.shape == (4 * per_example, *t.shapes.shape) and images.abs().max() <= 1.0
        return
    images = t.generate(torch.randn(4, t.G.z_dim))
    assert images.shape == (4, *t.shapes.shape) and torch.isfinite(images).all()
    # BEGAN's and R3GAN's linear outputs (out_activation none) are saved and scored clamped
    if t.recipe.generator.name != "began" and getattr(t.G, "out_activation", "tanh") != "none":
        assert images.abs().max() <= 1.0
