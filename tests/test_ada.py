"""ADA (Karras et al. 2020): the non-leaking pipeline's ops are exact where they should be and
differentiable, the controller steers p by sign(D(real)) as Eq. 1 says, and a run logs, checkpoints and
resumes p exactly."""

import pytest
import torch

from gankit.config import ConfigError
from gankit.nn.ada import ada_augment
from gankit.recipes.load import load_recipe
from gankit.runlog import read_metrics
from gankit.training.trainer import Trainer
from gankit.tricks import TRICKS


def images(n=16, c=1, size=8, seed=0):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_p_zero_is_the_identity_and_p_one_flips_every_image():
    x = images()
    assert torch.equal(ada_augment(x, 0.0), x)
    torch.manual_seed(0)
    assert torch.allclose(ada_augment(x, 1.0, ("xflip",)), x.flip(3), atol=1e-6)


def test_rotations_are_exact_multiples_of_90_degrees():
    x = images(32)
    torch.manual_seed(1)
    y = ada_augment(x, 1.0, ("rot90",))
    seen = set()
    for xi, yi in zip(x, y):
        k = [k for k in range(4) if torch.allclose(torch.rot90(xi, k, (1, 2)), yi, atol=1e-6)]
        assert len(k) == 1, "every output is one rotation of its input"
        seen.add(k[0])
    assert seen == {0, 1, 2, 3}


def test_translations_move_whole_pixels():
    x = images(24, size=16)
    torch.manual_seed(2)
    y = ada_augment(x, 1.0, ("translation",))
    shifted = 0
    for xi, yi in zip(x, y):
        # some integer shift (at most 2 px = 0.125 x 16) makes the central 8x8 windows agree exactly
        match = [
            (dx, dy)
            for dx in range(-2, 3)
            for dy in range(-2, 3)
            if torch.allclose(xi[:, 4 + dy : 12 + dy, 4 + dx : 12 + dx], yi[:, 4:12, 4:12], atol=1e-5)
        ]
        assert match, "the output is the input shifted by whole pixels"
        shifted += match[0] != (0, 0)
    assert shifted >= 12


def test_each_op_applies_with_probability_p():
    x = images(400)
    torch.manual_seed(3)
    y = ada_augment(x, 0.3, ("xflip",))
    flipped = sum(not torch.equal(a, b) for a, b in zip(x, y))
    assert 90 <= flipped <= 150  # 400 x 0.3 = 120; 3.2 sigma either side


def test_the_pipeline_is_differentiable_in_the_pixels():
    x = images(8, c=3).requires_grad_(True)
    torch.manual_seed(4)
    (grad,) = torch.autograd.grad(ada_augment(x, 0.8).square().sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_controller_follows_eq_1():
    ada = TRICKS.build("ada", target=0.6, interval=2, speed=1000)
    over = torch.ones(10)  # D says "real" to every real image: r_t = 1 > 0.6, D overfits, p rises
    for i in range(4):
        ada.observe(over, -over)
    # two adjustments of batch * interval / speed = 10 * 2 / 1000
    assert ada.p.item() == pytest.approx(0.04) and ada.rt.item() == 1.0
    for _ in range(20):
        ada.observe(-over, over)  # r_t = -1 < 0.6: p falls, and stops at 0
    assert ada.p.item() == 0.0 and ada.rt.item() == -1.0
    fixed = TRICKS.build("ada", p=0.25, adaptive=False)
    for _ in range(8):
        fixed.observe(over, -over)
    assert fixed.p.item() == 0.25


def test_ada_refuses_points_energies_and_bad_options():
    with pytest.raises(ConfigError, match="ada transforms images"):
        Trainer(load_recipe("gan-ring", ["tricks=[{name: ada}]", "log.tensorboard=false"]), "/nonexistent")
    with pytest.raises(ConfigError, match="energies"):
        Trainer(load_recipe("ebgan-digits", ["tricks=[{name: ada}]", "log.tensorboard=false"]), "/nonexistent")
    with pytest.raises(ValueError, match="max_p"):
        TRICKS.build("ada", p=0.9, max_p=0.5)


def test_a_run_logs_checkpoints_and_resumes_p(tmp_path):
    overrides = [
        "tricks=[{name: ada, speed: 2000, interval: 1}]",
        "schedule.steps=8",
        "schedule.batch_size=16",
        "log.every=2",
        "log.tensorboard=false",
        "eval.metrics=[]",
        "eval.best=null",
        "log.sample_every=0",
        "log.checkpoint_every=4",
    ]
    from gankit.runlog import RunLog

    run = tmp_path / "run"
    run.mkdir()
    t = Trainer(load_recipe("dcgan-digits", overrides), run)
    log = RunLog(run, tensorboard=False)
    t.train(log)
    log.close()
    ps = [r["tricks/ada/p"] for r in read_metrics(run) if "tricks/ada/p" in r]
    assert len(ps) == 4 and ps[-1] > 0  # D separates real from fake early on: p rose
    ada = t.tricks[0][1]
    final_p = ada.p.clone()
    resumed = Trainer(load_recipe("dcgan-digits", overrides), run)
    resumed.load_checkpoint(run / "checkpoints" / "step-0000004")
    for _ in range(4):
        resumed.train_step(want_log=False)
    assert torch.equal(resumed.tricks[0][1].p, final_p)
    for a, b in zip(t.G.parameters(), resumed.G.parameters()):
        assert torch.equal(a, b)
