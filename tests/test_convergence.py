"""Does training actually learn? Fixed seeds, small budgets, bounds loose enough for 2 CPU cores."""

import math

import pytest
import torch

from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer

pytestmark = pytest.mark.slow


def train(name: str, steps: int, *overrides: str) -> Trainer:
    t = Trainer(
        load_recipe(name, ["log.tensorboard=false", f"schedule.steps={max(steps, 1)}", *overrides]), "/nonexistent"
    )
    for _ in range(steps):
        t.train_step(want_log=False)
    return t


# Short GAN runs are chaotic: the same seed on another CPU (other SIMD kernels, other rounding) follows
# another course, and some courses collapse early. Measured on seeds 0-5 of one machine: unrolled-ring
# reached 7, 1, 7, 8, 8, 8 modes at 500 steps, hinge-grid 21, 8, 21, 24, 16, 14 at 1500, wgan-gp-grid
# 7, 13, 13, 19, 8, 12 at 600 (the previous CI machine passed seed 0 where the next failed it). So each
# check asks that one of SEEDS learns, trying the next seed only when one falls short; code that does not
# learn fails every seed (an untrained G has at most one mode and KL = log K).
SEEDS = (0, 1, 2)


def first_seed_that_learns(name: str, steps: int, ok, *overrides: str, score=None) -> list[dict[str, float]]:
    """Train ``name`` on SEEDS in turn until ``ok(score(trainer))``; returns every seed's scores tried.
    ``score`` defaults to the toy-mixture scores (``Trainer.evaluate``), whose untrained start is
    checked to be collapsed first."""
    toy, score = score is None, score or Trainer.evaluate
    tried = []
    for seed in SEEDS:
        t = train(name, 0, f"seed={seed}", *overrides)
        if toy and seed == SEEDS[0]:
            before = t.evaluate()
            assert before["modes"] <= 1, before  # the starting point really is collapsed
        for _ in range(steps):
            t.train_step(want_log=False)
        tried.append(score(t))
        if ok(tried[-1]):
            break
    return tried


def test_gan_grid_captures_most_modes():
    def ok(m):
        return m["modes"] >= 20 and m["hq_fraction"] > 0.2

    tried = first_seed_that_learns("gan-grid", 3000, ok)
    assert ok(tried[-1]), tried


@pytest.mark.parametrize(
    "name,steps,min_modes,kl_cut",
    [
        ("gan-ring", 1500, 6, 0.5),
        ("lsgan-grid", 1500, 12, 0.5),
        ("hinge-grid", 1500, 12, 0.5),
        ("wgan-gp-grid", 600, 10, 0.5),
        ("wgan-grid", 600, 12, 0.5),
        ("veegan-grid", 500, 10, 0.5),
        # BiGAN learns the ring slowly: KL 0.73, 1.29, 0.95, 0.51, 1.52, 1.40 for seeds 0-5 at 500 steps
        # and still 0.37, 1.52, 0.31, 1.26, 0.56 at 1000 (log 8 = 2.08 untrained)
        ("bigan-ring", 500, 3, 0.75),
        ("unrolled-ring", 500, 6, 0.5),
        ("pacgan-grid", 500, 8, 0.5),
        ("pacgan-ring", 1000, 3, 0.5),
    ],
)
def test_toy_recipes_spread_over_the_modes(name, steps, min_modes, kl_cut):
    # Training must spread the samples over many modes and cut the KL to uniform (log K untrained, K the
    # number of modes) to below kl_cut * log K.
    log_k = math.log(25 if name.endswith("grid") else 8)

    def ok(m):
        return m["modes"] >= min_modes and m["kl"] < kl_cut * log_k

    tried = first_seed_that_learns(name, steps, ok)
    assert ok(tried[-1]), tried


REFERENCE = None


def digit_scores(x16: torch.Tensor) -> dict[str, float]:
    """Nearest real 16x16 digits (the training set itself) of generated samples.

    ``nn``: median L2 distance to the nearest real digit (0 for a training digit, about 2.8 for one
    with N(0, 0.2^2) pixel noise, about 13.7 for uniform noise); ``agree``: how often the 10 nearest
    real digits share the label of the first (high on the digit manifold, low between digits or on
    noise); ``classes``: digit classes among samples whose neighbours agree.
    """
    from gankit.data import DATASETS
    from gankit.data.base import to_float

    global REFERENCE
    if REFERENCE is None:
        source = DATASETS.build("digits")
        REFERENCE = to_float(source.images).flatten(1), source.labels
    X, Y = REFERENCE
    dist, idx = torch.cdist(x16.flatten(1), X).topk(10, largest=False)
    labels = Y[idx]
    agree = (labels == labels[:, :1]).float().mean(1)
    return {
        "nn": dist[:, 0].median().item(),
        "agree": agree.mean().item(),
        "classes": len(set(labels[:, 0][agree >= 0.8].tolist())),
    }


def test_digit_scores_separate_real_from_noise():
    from gankit.data import DATASETS

    real, _ = DATASETS.build("digits").sample_real(500, seed=1)
    noise = torch.rand(500, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    r, n = digit_scores(real), digit_scores(noise)
    assert r["nn"] < 1e-3 and r["agree"] > 0.9 and r["classes"] == 10  # real digits are in the reference set
    assert n["nn"] > 10 and n["agree"] < 0.7


@pytest.mark.parametrize("name", ["dcgan-digits", "ebgan-digits"])
def test_digit_recipes_learn_recognisable_digits(name):
    t = train(name, 1000)
    gen = torch.Generator().manual_seed(0)
    s = digit_scores(t.generate(torch.randn(1000, t.G.z_dim, generator=gen)))
    assert s["nn"] < 6.0, s
    assert s["agree"] > 0.6, s
    assert s["classes"] >= 9, s


def test_dcgan_mnist_matches_ink_statistics(mnist_dir):
    # EMA off: the averaged G only starts at step 1000 in this recipe, and we look at step 400. At one
    # torch thread seed 0 sits at a moment with ink along the border (centre 0.41, border 0.22) while
    # seeds 1-4 pass (border <= 0.001), so this check also tries the next seed. An untrained G fails
    # every seed: its pixels are above 0 about as often at the border as in the centre (0.69 and 0.64,
    # against 13 % ink for MNIST).
    def ink(t):
        real, _ = t.source.sample_real(500, seed=0)
        fake = t.generate(torch.randn(500, t.G.z_dim, generator=torch.Generator().manual_seed(0)))
        assert fake.shape == (500, 1, 32, 32)
        return {
            "ink_real": (real > 0).float().mean().item(),
            "ink_fake": (fake > 0).float().mean().item(),
            "centre": (fake[..., 8:24, 8:24] > 0).float().mean().item(),
            "border": (fake[..., :4, :] > 0).float().mean().item(),
        }

    def ok(m):
        # the fraction of inked pixels matches MNIST's, and the ink sits in the centre of the frame,
        # not spread uniformly
        return abs(m["ink_fake"] - m["ink_real"]) < 0.1 and m["centre"] > 3 * m["border"] + 0.05

    tried = first_seed_that_learns(
        "dcgan-mnist",
        400,
        ok,
        f"data.path={mnist_dir}",
        "data.split=test",
        "schedule.batch_size=32",
        "generator.width=16",
        "discriminator.width=16",
        "ema.enabled=false",
        score=ink,
    )
    assert ok(tried[-1]), tried
