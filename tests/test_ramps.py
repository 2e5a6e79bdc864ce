"""Ramps as recipe data (issue 21): cosine and linear values against the formula, every kind of target
set at every step, bad targets refused with the valid ones named, and exact resume."""

import math

import pytest
import torch

from gankit.config import ConfigError, Ramp
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer

FAST = ["log.tensorboard=false", "eval.metrics=[]", "log.sample_every=0"]


def test_values_follow_the_formula():
    cos = Ramp(target="optim.g.lr", start=1.0, end=0.0, begin=10, steps=100)
    assert cos.value(0, 1000) == 1.0 and cos.value(10, 1000) == 1.0
    assert cos.value(35, 1000) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert cos.value(60, 1000) == pytest.approx(0.5) and cos.value(110, 1000) == 0.0 and cos.value(999, 1000) == 0.0
    lin = Ramp(target="ema.decay", start=0.9, end=0.99, kind="linear")  # over the whole run by default
    assert lin.value(250, 1000) == pytest.approx(0.9225) and lin.value(1000, 1000) == pytest.approx(0.99)


def trainer(tmp_path, *extra, steps=6):
    ramps = (
        "ramps=[{target: optim.g.lr, start: 0.001, end: 0.0001}, "
        "{target: optim.d.beta2, start: 0.9, end: 0.99, kind: linear}, "
        "{target: penalty.r1.gamma, start: 1.0, end: 0.1}, "
        "{target: ema.decay, start: 0.5, end: 0.9, kind: linear}]"
    )
    over = [*FAST, f"schedule.steps={steps}", "penalties=[{name: r1, gamma: 1.0}]", "ema.enabled=true", ramps, *extra]
    return Trainer(load_recipe("gan-ring", over), tmp_path)


def test_every_target_is_set_before_each_step(tmp_path):
    t = trainer(tmp_path / "run")
    r = t.recipe.ramps
    for step in range(4):
        ema_before = [p.clone() for p in t.ema.module.parameters()]
        t.train_step(want_log=False)
        assert t.opt_g.param_groups[0]["lr"] == pytest.approx(r[0].value(step, 6))
        assert t.opt_d.param_groups[0]["betas"][1] == pytest.approx(r[1].value(step, 6))
        assert t.penalties[0][1].gamma == pytest.approx(r[2].value(step, 6))
        decay = r[3].value(step, 6)
        assert t.ema_decay == pytest.approx(decay)
        if step:  # the first update copies G (n_averaged 0); later ones lerp with the ramped decay
            for e0, e1, g in zip(ema_before, t.ema.module.parameters(), t.G.parameters()):
                torch.testing.assert_close(e1, e0 * decay + g.detach() * (1 - decay))


def test_bad_targets_are_refused_with_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="valid: optim.g.lr"):
        trainer(tmp_path / "a", "ramps=[{target: optim.g.momentum, start: 0, end: 1}]")
    with pytest.raises(ConfigError, match="no penalty 'r2'.*r1"):
        trainer(tmp_path / "b", "ramps=[{target: penalty.r2.gamma, start: 0, end: 1}]")
    with pytest.raises(ConfigError, match="no numeric option 'sigma'"):
        trainer(tmp_path / "c", "ramps=[{target: penalty.r1.sigma, start: 0, end: 1}]")
    with pytest.raises(ConfigError, match="ema.decay needs ema.enabled"):
        trainer(tmp_path / "d", "ema.enabled=false")
    with pytest.raises(ConfigError, match="keep one"):
        trainer(tmp_path / "e", "schedule.decay_start=2")


def test_a_trick_state_tensor_can_ramp():
    t = Trainer(
        load_recipe(
            "dcgan-digits",
            [
                *FAST,
                "schedule.batch_size=16",
                "tricks=[{name: ada, adaptive: false}]",
                "ramps=[{target: trick.ada.p, start: 0.0, end: 0.8, kind: linear, steps: 4}]",
            ],
        ),
        "/nonexistent",
    )
    ada = t.tricks[0][1]
    for _ in range(5):
        t.train_step(want_log=False)
    assert ada.p.item() == pytest.approx(0.8)


def test_resume_with_ramps_is_exact(tmp_path):
    a = trainer(tmp_path / "run", "log.checkpoint_every=3")
    for _ in range(3):
        a.train_step(want_log=False)
    ckpt = a.save_checkpoint()
    for _ in range(3):
        a.train_step(want_log=False)
    b = trainer(tmp_path / "run", "log.checkpoint_every=3")
    b.load_checkpoint(ckpt)
    for _ in range(3):
        b.train_step(want_log=False)
    for x, y in zip([*a.G.parameters(), *a.ema.module.parameters()], [*b.G.parameters(), *b.ema.module.parameters()]):
        assert torch.equal(x, y)


def test_an_ema_half_life_in_images_sets_the_decay(tmp_path):
    t = trainer(
        tmp_path / "run",
        "schedule.batch_size=64",
        "ramps=[{target: ema.half_life, start: 0, end: 6400, kind: linear}]",
    )
    t.train_step(want_log=False)
    assert t.ema_decay == 0.0  # a half-life of 0 images copies G
    for _ in range(5):
        t.train_step(want_log=False)
    # step 5 of 6: half-life 6400 * 5/6 images, 64 a step
    assert t.ema_decay == pytest.approx(0.5 ** (64 / (6400 * 5 / 6)))
