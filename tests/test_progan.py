"""Progressive GAN (Karras et al. 2018): the growth schedule, the fade-in of Fig. 2, the stage as a
function of the step alone (state dicts, resume, sampling), and a short run through the trainer.

Networks are tiny (width 4-8) and R = 32 from start 4 unless said otherwise, so every stage exists.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from gankit.models import DISCRIMINATORS, GENERATORS
from gankit.models.progan import ProGANDiscriminator, ProGANGenerator, growth, growth_end, progan_channels
from gankit.recipes.load import load_recipe
from gankit.registry import RegistryError

N = 4
FADE, STABLE = 10, 20  # stage starts: 8x8 fade at 20, 16x16 fade at 50, 32x32 fade at 80; full at 90
SMALL: dict[str, Any] = {"width": 4, "max_channels": 16, "fade_steps": FADE, "stable_steps": STABLE}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def make_g(shape: tuple[int, int, int] = (3, 32, 32), **kw: Any) -> ProGANGenerator:
    return GENERATORS.build("progan", out_shape=shape, **{**SMALL, "z_dim": 8, **kw})


def make_d(shape: tuple[int, int, int] = (3, 32, 32), **kw: Any) -> ProGANDiscriminator:
    return DISCRIMINATORS.build("progan", in_shape=shape, **{**SMALL, **kw})


def up(x: torch.Tensor, f: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=f, mode="nearest")


def pool(x: torch.Tensor, f: int) -> torch.Tensor:
    while f > 1:  # the same repeated 2x2 pooling the model uses, so comparisons can be exact
        x, f = F.avg_pool2d(x, 2), f // 2
    return x


# -- 2. the schedule ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "step,expected",
    [
        (0, (4, 1.0)),
        (STABLE - 1, (4, 1.0)),  # stage 0: start resolution, stable
        (20, (8, 0.0)),
        (25, (8, 0.5)),
        (29, (8, 0.9)),  # 8x8 fades in, alpha = t / fade_steps
        (30, (8, 1.0)),
        (49, (8, 1.0)),  # ... then stabilises
        (50, (16, 0.0)),
        (55, (16, 0.5)),
        (60, (16, 1.0)),
        (80, (32, 0.0)),
        (89, (32, 0.9)),
        (90, (32, 1.0)),
        (10**7, (32, 1.0)),  # final: R, alpha 1 for ever
    ],
)
def test_growth_schedule_at_boundaries(step: int, expected: tuple[int, float]) -> None:
    r, alpha = growth(step, 4, 32, FADE, STABLE)
    assert r == expected[0]
    assert alpha == pytest.approx(expected[1], abs=1e-12)


def test_growth_is_monotonic_and_ends_at_full_resolution() -> None:
    stages = [growth(s, 4, 32, FADE, STABLE) for s in range(200)]
    assert all(b >= a for a, b in zip(stages, stages[1:])), "(resolution, alpha) must never go back"
    assert [r for r in (4, 8, 16, 32) if (r, 1.0) in stages] == [4, 8, 16, 32]
    # alpha rises by exactly 1 / fade_steps per step during a fade: a continuous, linear fade-in
    for (r0, a0), (r1, a1) in zip(stages, stages[1:]):
        if r1 == r0 and a0 < 1.0:
            assert a1 - a0 == pytest.approx(1 / FADE)
    end = growth_end(4, 32, FADE, STABLE)
    assert end == 90 and stages[end] == (32, 1.0) and stages[end - 1][0] == 32 and stages[end - 1][1] < 1.0
    # start > 4: the blocks below start are always on; stage 0 is at start
    assert growth(0, 8, 32, 5, 5) == (8, 1.0) and growth(5, 8, 32, 5, 5) == (16, 0.0)
    assert growth_end(8, 32, 5, 5) == 5 + 10 + 5
    with pytest.raises(ValueError, match=r"step=-1 must be >= 0"):
        growth(-1, 4, 32, FADE, STABLE)
    with pytest.raises(ValueError, match=r"fade_steps=0 .* must be >= 1"):
        growth(3, 4, 32, 0, STABLE)


def test_fresh_model_is_at_final_stage_and_set_step_moves_it() -> None:
    G, D = make_g(), make_d()
    for net in (G, D):
        assert (net.resolution, net.alpha, net.step) == (32, 1.0, None)  # before any set_step: full res
        net.set_step(25)
        assert (net.resolution, net.alpha, net.step) == (8, 0.5, 25)
        net.set_step(10**6)
        assert (net.resolution, net.alpha) == (32, 1.0)
        with pytest.raises(AttributeError):
            net.resolution = 4  # read-only: the stage is a function of the step only
    assert progan_channels(32, width=4, max_channels=16) == {4: 16, 8: 16, 16: 8, 32: 4}
    assert progan_channels(1024, width=16, max_channels=512) == {  # the paper's Table 2
        4: 512,
        8: 512,
        16: 512,
        32: 512,
        64: 256,
        128: 128,
        256: 64,
        512: 32,
        1024: 16,
    }


# -- 1. fade-in (Fig. 2) --------------------------------------------------------------------------
def g_trunk(G: ProGANGenerator, z: torch.Tensor, upto: int) -> torch.Tensor:
    """The feature map at resolution ``upto``, block by block."""
    h = z
    for r in [4 * 2**i for i in range(int(math.log2(upto // 4)) + 1)]:
        h = G.blocks[str(r)](h)
    return h


@pytest.mark.parametrize("r", [8, 16, 32])
def test_generator_fade_in(r: int) -> None:
    G = make_g()
    z = torch.randn(N, G.z_dim)
    fade_start = STABLE + (int(math.log2(r // 4)) - 1) * (FADE + STABLE)
    with torch.no_grad():
        G.set_step(fade_start - 1)
        previous = G(z)  # the last step of the r/2 stage (stable, alpha 1)
        G.set_step(fade_start)
        assert (G.resolution, G.alpha) == (r, 0.0)
        at_zero = G(z)
        G.set_step(fade_start + FADE // 2)
        half = G(z)
        G.set_step(fade_start + FADE)
        assert (G.resolution, G.alpha) == (r, 1.0)
        at_one = G(z)

        h = g_trunk(G, z, r // 2)
        low = up(G.rgb[str(r // 2)](h), 2)  # toRGB_{r/2}, upsampled to r
        high = G.rgb[str(r)](G.blocks[str(r)](h))  # the new block and its toRGB
    # alpha = 0: the new network is the previous stage's output, the low-res path upsampled, exactly
    assert torch.equal(at_zero, previous)
    assert torch.equal(at_zero, up(torch.tanh(low), 32 // r))
    # alpha = 1: the pure high-resolution path; in between, the lerp of Fig. 2 (b)
    assert torch.equal(at_one, up(torch.tanh(high), 32 // r))
    torch.testing.assert_close(half, up(torch.tanh(0.5 * low + 0.5 * high), 32 // r))
    assert (at_one - at_zero).abs().max() > 0.05, "the high-res path should differ from the low-res one"


@pytest.mark.parametrize("r", [8, 16, 32])
def test_discriminator_fade_in(r: int) -> None:
    D = make_d()
    x = torch.rand(N, 3, 32, 32) * 2 - 1
    fade_start = STABLE + (int(math.log2(r // 4)) - 1) * (FADE + STABLE)

    def tail(h: torch.Tensor, below: int) -> tuple[torch.Tensor, torch.Tensor]:
        for res in range(int(math.log2(below)), 2, -1):  # blocks below..8, then the 4x4 block
            h = D.blocks[str(2**res)](h)
        f = D.final(h)
        return D.head(f).squeeze(1), f

    with torch.no_grad():
        D.set_step(fade_start - 1)
        previous = D(x)
        D.set_step(fade_start)
        at_zero = D(x)
        D.set_step(fade_start + FADE // 2)
        half = D(x)
        D.set_step(fade_start + FADE)
        at_one = D(x)

        x_r = pool(x, 32 // r)
        low = D.rgb[str(r // 2)](pool(x_r, 2))  # fromRGB_{r/2} of the input pooled to r/2
        high = D.blocks[str(r)](D.rgb[str(r)](x_r))  # fromRGB_r, then the new block (ends at r/2)
        low_logits, low_features = tail(low, r // 2)
        high_logits, _ = tail(high, r // 2)
        half_logits, _ = tail(0.5 * low + 0.5 * high, r // 2)
    assert torch.equal(at_zero.logits, previous.logits) and torch.equal(at_zero.features, previous.features)
    assert torch.equal(at_zero.logits, low_logits) and torch.equal(at_zero.features, low_features)
    assert torch.equal(at_one.logits, high_logits)
    torch.testing.assert_close(half.logits, half_logits)
    assert (at_one.logits - at_zero.logits).abs().max() > 1e-3


# -- 4. shapes at every stage, gradients only into the active blocks -------------------------------
STAGE_STEPS = [0, 19, 20, 25, 30, 50, 55, 60, 80, 85, 90, 1000]


@pytest.mark.parametrize("shape", [(3, 32, 32), (2, 16, 16)], ids=str)
def test_shapes_at_every_stage(shape: tuple[int, int, int]) -> None:
    G, D = make_g(shape), make_d(shape)
    z = torch.randn(N, G.z_dim)
    for step in STAGE_STEPS:
        G.set_step(step)
        D.set_step(step)
        x = G(z)
        assert x.shape == (N, *shape) and x.abs().max() <= 1.0
        f = shape[1] // G.resolution  # G's r x r output, nearest-upsampled: constant f x f cells
        assert torch.equal(x, up(pool(x, f), f)), f"step {step}: not an upsampled {G.resolution}x{G.resolution} map"
        out = D(x)
        assert out.logits.shape == (N,) and out.features.shape == (N, D.channels[4])
        assert torch.isfinite(out.logits).all()


def _grad_state(net: torch.nn.Module) -> tuple[set[str], set[str]]:
    """(names with no gradient, names with a non-zero gradient)."""
    none = {n for n, p in net.named_parameters() if p.grad is None}
    live = {n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    return none, live


def test_only_active_blocks_receive_gradients() -> None:
    G, D = make_g(), make_d()
    G.set_step(25)  # fading in 8x8
    D.set_step(25)
    (D(G(torch.randn(N, G.z_dim))).logits.sum()).backward()
    g_none, g_live = _grad_state(G)
    prefixes = lambda names: {".".join(n.split(".")[:2]) for n in names}  # noqa: E731
    assert prefixes(g_live) == {"blocks.4", "blocks.8", "rgb.4", "rgb.8"}
    assert prefixes(g_none) == {"blocks.16", "blocks.32", "rgb.16", "rgb.32"}
    assert g_none == G.inactive_parameters() and len(g_none) + len(g_live) == len(list(G.parameters()))
    d_none, d_live = _grad_state(D)
    assert prefixes(d_live) == {"blocks.8", "rgb.4", "rgb.8", "final.1", "final.4", "head.weight", "head.bias"}
    assert prefixes(d_none) == {"blocks.16", "blocks.32", "rgb.16", "rgb.32"}
    assert d_none == D.inactive_parameters()

    # Stable at 16x16: toRGB_8 / fromRGB_8 are out of the graph again; at the final stage only the
    # full-resolution toRGB / fromRGB are used (the registry contract test skips inactive_parameters()).
    for step, used in [(60, {"rgb.16"}), (10**6, {"rgb.32"})]:
        for net in (G, D):
            net.zero_grad(set_to_none=True)
            net.set_step(step)
        D(G(torch.randn(N, G.z_dim))).logits.sum().backward()
        for net in (G, D):
            none, live = _grad_state(net)
            assert {p for p in prefixes(live) if p.startswith("rgb.")} == used
            assert none == net.inactive_parameters()


# -- 3. the stage is a function of the step: state dicts -------------------------------------------
@pytest.mark.parametrize("step", [25, 55, 10**6])
def test_state_dict_round_trip_at_a_stage(step: int, tmp_path: Any) -> None:
    G, D = make_g(), make_d()
    keys = (set(G.state_dict()), set(D.state_dict()))
    for net in (G, D):
        net.set_step(step)
    assert (set(G.state_dict()), set(D.state_dict())) == keys, "the state dict must not depend on the stage"
    save_file(G.state_dict(), tmp_path / "g.safetensors")
    save_file(D.state_dict(), tmp_path / "d.safetensors")
    torch.manual_seed(1)  # different initial weights, overwritten by the load
    G2, D2 = make_g(), make_d()
    G2.set_step(step)
    D2.set_step(step)
    G2.load_state_dict(load_file(tmp_path / "g.safetensors"))
    D2.load_state_dict(load_file(tmp_path / "d.safetensors"))
    z, x = torch.randn(N, G.z_dim), torch.rand(N, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(G(z), G2(z))
        a, b = D(x), D2(x)
        assert torch.equal(a.logits, b.logits) and torch.equal(a.features, b.features)
        if step < growth_end(4, 32, FADE, STABLE):  # without set_step the copy is at the final stage
            G3 = make_g()
            G3.load_state_dict(load_file(tmp_path / "g.safetensors"))
            assert not torch.equal(G(z), G3(z))


# -- 5. errors that teach -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw,message",
    [
        ({"shape": (3, 48, 48)}, r"shape=\(3, 48, 48\) is not supported.*one of \(8, 16, 32, 64"),
        ({"shape": (3, 4, 4)}, r"shape=\(3, 4, 4\) is not supported.*2 \* start"),
        ({"shape": (3, 8, 8), "start": 8}, r"shape=\(3, 8, 8\) is not supported.*one of \(16, 32"),
        ({"shape": (3, 32, 16)}, r"shape=\(3, 32, 16\) is not supported.*\(C, R, R\)"),
        ({"shape": (0, 32, 32)}, r"shape=\(0, 32, 32\) is not supported.*C >= 1"),
        ({"start": 6}, r"start=6 must be a power of two from 4"),
        ({"fade_steps": 0}, r"fade_steps=0 and stable_steps=20 must be >= 1"),
        ({"stable_steps": -3}, r"fade_steps=10 and stable_steps=-3 must be >= 1"),
        ({"width": 0}, r"width=0 and max_channels=16 must be >= 1"),
    ],
)
def test_bad_options_are_refused(kw: dict[str, Any], message: str) -> None:
    kw = dict(kw)
    shape = kw.pop("shape", (3, 32, 32))
    with pytest.raises(ValueError, match=rf"generator 'progan': .*{message}"):
        make_g(shape, **kw)
    with pytest.raises(ValueError, match=rf"discriminator 'progan': .*{message}"):
        make_d(shape, **kw)


def test_conditioning_and_wrong_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"generator 'progan' is unconditional, got num_classes=10"):
        make_g(num_classes=10)
    with pytest.raises(ValueError, match=r"discriminator 'progan' is unconditional, got num_classes=10"):
        make_d(num_classes=10)
    with pytest.raises(ValueError, match=r"mbstd_group=0 must be >= 1"):
        make_d(mbstd_group=0)
    with pytest.raises(RegistryError, match=r"fade_steps"):
        GENERATORS.build("progan", out_shape=(3, 32, 32), fade_steps="soon")
    with pytest.raises(ValueError, match=r"x has shape \(2, 3, 16, 16\), expected \[None, 3, 32, 32\]"):
        make_d()(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"z has shape \(2, 9\)"):
        make_g()(torch.randn(2, 9))


# -- 6. the real trainer: growth across a boundary, resume, sampling --------------------------------
def _digits(steps: int, *extra: str) -> Any:
    # 16x16 from 4: 4x4 for 2 steps, 8x8 fades in over 2 and holds 2, 16x16 fades in from step 6.
    tiny = [
        f"{net}.{k}={v}"
        for net in ("generator", "discriminator")
        for k, v in {"width": 4, "max_channels": 16, "fade_steps": 2, "stable_steps": 2}.items()
    ]
    return load_recipe(
        "progan-digits",
        tiny
        + [
            "generator.z_dim=8",
            "schedule.batch_size=8",
            f"schedule.steps={steps}",
            "log.every=1",
            "log.sample_every=0",
            "log.tensorboard=false",
            "eval.metrics=[]",
            "ema.start=0",
            *extra,
        ],
    )


def test_recipes_use_the_papers_objective_and_matching_growth() -> None:
    # progan-mnist's narrow networks take 4x the paper's lr (docs/recipes.md); the betas stay the paper's
    for name, extra, lr in [("progan-digits", [], 0.001), ("progan-mnist", ["data.path=/somewhere"], 0.004)]:
        r = load_recipe(name, extra)
        g, d = r.generator.options, r.discriminator.options
        assert r.generator.name == r.discriminator.name == "progan"
        assert {k: g[k] for k in ("start", "fade_steps", "stable_steps")} == {
            k: d[k] for k in ("start", "fade_steps", "stable_steps")
        }, "G and D must grow together"
        assert (
            growth_end(g["start"], r.data.options["resolution"], g["fade_steps"], g["stable_steps"]) < r.schedule.steps
        ), "the run must reach the full resolution"
        assert r.objective.name == "wasserstein"
        assert [p.name for p in r.penalties] == ["wgan-gp", "drift"]
        assert (r.optim.g.lr, tuple(r.optim.g.betas)) == (lr, (0.0, 0.99))
        assert (r.optim.d.lr, tuple(r.optim.d.betas)) == (lr, (0.0, 0.99))


def test_training_grows_and_resume_restores_the_stage(tmp_path: Any) -> None:
    from gankit.runlog import checkpoint as ck
    from gankit.runlog import read_metrics
    from gankit.sampling import load_generator
    from gankit.training.run import resume_run, start_run
    from gankit.training.trainer import Trainer

    run, n = tmp_path / "run", 5  # stops at step 5 (8x8, stable), resumes to 10 (16x16, alpha 1)
    start_run(_digits(n, f"log.checkpoint_every={n}"), out=run)
    # Reloading the checkpoint (what --resume does) puts G, D and the averaged G back at step 5's stage;
    # a fresh trainer starts at the final stage, so this fails if load_checkpoint forgot set_step.
    t = Trainer(_digits(2 * n), tmp_path / "unused")
    w0 = t.G.state_dict()["blocks.16.1.weight"].clone()  # the seed's initial weights
    assert (t.G.resolution, t.D.resolution) == (16, 16)
    t.load_checkpoint(ck.find_checkpoint(run))
    for net in (t.G, t.D, t.ema.module):
        assert (net.resolution, net.alpha, net.step) == (8, 1.0, n)
    G_half, *_ = load_generator(run)
    assert (G_half.resolution, G_half.alpha) == (8, 1.0), "sampling must restore the checkpoint's stage"

    res = resume_run(run, [f"schedule.steps={2 * n}"])
    assert res["step"] == 2 * n
    rows = [r for r in read_metrics(run) if "d/loss" in r]
    assert [r["step"] for r in rows] == list(range(1, 2 * n + 1))
    assert all(math.isfinite(r[k]) for r in rows for k in ("d/loss", "g/loss"))
    G_end, *_ = load_generator(run)
    assert (G_end.resolution, G_end.alpha) == (16, 1.0)
    assert G_end(torch.randn(2, 8)).shape == (2, 1, 16, 16)
    # 16x16's block was out of the graph until step 6: untouched at the step-5 checkpoint, trained by 10.
    w_half, w_end = (ck.load_weights(c)[0]["G.blocks.16.1.weight"] for c in ck.list_checkpoints(run / "checkpoints"))
    assert torch.equal(w_half, w0) and not torch.equal(w_end, w0)


def test_mismatched_growth_schedules_are_refused_before_training() -> None:
    from gankit.config import ConfigError
    from gankit.recipes.load import load_recipe
    from gankit.training.trainer import Trainer

    with pytest.raises(ConfigError, match=r"same schedule \(fade_steps: G 300 vs D 200\)"):
        Trainer(
            load_recipe(
                "progan-digits", ["discriminator.fade_steps=200", "generator.fade_steps=300", "log.tensorboard=false"]
            ),
            "/nonexistent",
        )
