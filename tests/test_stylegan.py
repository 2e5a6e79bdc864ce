"""StyleGAN (Karras et al. 2019) and StyleGAN2's modulated convolution (Karras et al. 2020): each layer
against its equation or an independent reference, the generator's truncation / style mixing / w_avg,
the refusals, and a short run through the real trainer."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from gankit.models import DISCRIMINATORS, GENERATORS
from gankit.models.stylegan import StyleGANGenerator, style_mixing_grid, stylegan_channels
from gankit.nn.style import AdaIN, MappingNetwork, ModulatedConv2d, NoiseInjection
from gankit.recipes.load import load_recipe
from gankit.registry import RegistryError
from gankit.runlog import RunLog, read_metrics
from gankit.sampling import load_generator
from gankit.training.trainer import Trainer

CONVS = ["adain", "modulated"]
SMALL = {"z_dim": 8, "w_dim": 8, "mapping_layers": 2, "width": 4, "max_channels": 8}


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Any:
    # Tensors this small gain nothing from a second thread, and on a busy machine the thread handshake
    # of every tiny op costs more than the op itself (a 16-step run: ~1 s on one thread, ~40 s on two).
    torch.manual_seed(0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small_g(conv: str, shape: tuple[int, int, int] = (1, 16, 16), **kw: Any) -> StyleGANGenerator:
    return GENERATORS.build("stylegan", out_shape=shape, conv=conv, **{**SMALL, **kw})


# -- 1-2. modulated convolution (StyleGAN2 Eqs. 1-3) ---------------------------------------------------
def _reference_var(conv: ModulatedConv2d, s: torch.Tensor) -> torch.Tensor:
    """Without demodulation, for i.i.d. unit-variance input: var(out_j) = sum_{i,k} (c s_i w_ijk)^2 (Eq. 2)."""
    w = conv.weight / math.sqrt(conv.weight.shape[1] * 9)  # equalised lr: 1 / sqrt(fan_in)
    return (w[None] * s[:, None, :, None, None]).pow(2).sum(dim=(2, 3, 4))  # (N, out)


@pytest.mark.parametrize("fused", [True, False])
def test_demodulation_keeps_unit_output_variance(fused: bool) -> None:
    """The issue's contract: unit-variance input and random styles give unit-variance output (Eq. 3);
    without demodulation the output variance is the style-scaled weight norm of Eq. 2, far from 1."""
    conv = ModulatedConv2d(64, 32, 3, w_dim=16, fused=fused)
    x = torch.randn(8, 64, 34, 34)
    w = 3.0 * torch.randn(8, 16)  # styles s = 1 + A(w) with std ~ 3: strongly scaled channels
    with torch.no_grad():
        s = conv.affine(w)
        assert s.std() > 2
        inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # no zero padding in the window
        var = conv(x, w)[inner].var(dim=(2, 3))  # (N, out): per sample and output channel
        assert abs(var.mean().item() - 1.0) < 0.03
        assert (var - 1.0).abs().max() < 0.3
        conv.demodulate = False
        raw = conv(x, w)[inner].var(dim=(2, 3))
    expected = _reference_var(conv, s).detach()
    assert raw.mean() > 4  # not unit variance without demodulation
    torch.testing.assert_close(raw.mean(1), expected.mean(1), rtol=0.1, atol=0)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("kernel,demodulate", [(3, True), (3, False), (1, False)])
def test_modulated_conv_matches_a_per_sample_loop(fused: bool, kernel: int, demodulate: bool) -> None:
    conv = ModulatedConv2d(5, 7, kernel, w_dim=6, demodulate=demodulate, fused=fused)
    with torch.no_grad():
        torch.testing.assert_close(conv.affine(torch.zeros(1, 6)), torch.ones(1, 5))  # s starts at 1
        conv.affine.bias.normal_()  # move off the init so the styles are arbitrary
    x, w = torch.randn(4, 5, 9, 9), torch.randn(4, 6)
    s = conv.affine(w)
    ref = []
    for n in range(4):  # explicit Eq. 1 (and Eq. 3) weights, one ordinary convolution per sample
        wt = conv.weight / math.sqrt(5 * kernel * kernel) * s[n].view(1, 5, 1, 1)
        if demodulate:
            wt = wt / torch.sqrt(wt.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        ref.append(F.conv2d(x[n : n + 1], wt, padding=kernel // 2))
    torch.testing.assert_close(conv(x, w), torch.cat(ref), rtol=1e-5, atol=1e-5)


# -- 3. AdaIN (StyleGAN Eq. 1) ---------------------------------------------------------------------------
def test_adain_output_statistics_are_the_style() -> None:
    adain = AdaIN(6, w_dim=5)
    with torch.no_grad():
        y_s, y_b = adain.styles(torch.zeros(1, 5))
        torch.testing.assert_close(y_s, torch.ones(1, 6))  # y_s bias-initialised to 1, y_b to 0
        torch.testing.assert_close(y_b, torch.zeros(1, 6))
        adain.shift.bias.normal_()
    x = 3.0 * torch.randn(4, 6, 8, 8) + torch.randn(4, 6, 1, 1) * 5  # arbitrary per-channel mean / std
    w = torch.randn(4, 5)
    out = adain(x, w)
    y_s, y_b = adain.styles(w)
    torch.testing.assert_close(out.mean(dim=(2, 3)), y_b, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.std(dim=(2, 3), unbiased=False), y_s.abs(), rtol=1e-4, atol=1e-4)
    # The input's own channel statistics are gone: a per-channel affine change of x changes nothing.
    torch.testing.assert_close(adain(x * torch.rand(1, 6, 1, 1).add(0.5) - 7, w), out, rtol=1e-4, atol=1e-4)


def test_mapping_network_normalises_z_and_slows_its_layers() -> None:
    f = MappingNetwork(z_dim=6, w_dim=5, num_layers=3)
    z = torch.randn(4, 6)
    torch.testing.assert_close(f(z), f(z * 7.0))  # PixelNorm: only the direction of z matters
    linears = [m for m in f.modules() if hasattr(m, "lr_mul")]
    assert len(linears) == 3 and all(m.lr_mul == 0.01 for m in linears)  # StyleGAN App. C
    assert f(z).shape == (4, 5)


# -- 4. noise injection ----------------------------------------------------------------------------------
def test_noise_injection() -> None:
    layer = NoiseInjection(4, 8)
    x = torch.randn(3, 4, 8, 8)
    assert torch.equal(layer(x), x)  # zero-initialised weight: the noise changes nothing
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.0, 0.5, -2.0, 3.0]))
    noise = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(layer(x, noise) - x, layer.weight.view(1, 4, 1, 1) * noise)
    a, b = layer(x), layer(x)  # training mode: fresh noise, one image per sample shared by the channels
    assert not torch.equal(a, b)
    shared = (a - x)[:, 1:] / layer.weight[1:].view(1, 3, 1, 1)
    torch.testing.assert_close(shared, shared[:, :1].expand(-1, 3, -1, -1))
    assert not torch.allclose(shared[0], shared[1])
    layer.eval()  # eval mode: the stored constant noise, deterministic
    torch.testing.assert_close(layer(x), x + layer.weight.view(1, 4, 1, 1) * layer.fixed)
    assert torch.equal(layer(x, mode="none"), x)


# -- 5. truncation and w_avg ------------------------------------------------------------------------
@pytest.mark.parametrize("conv", CONVS)
def test_truncation(conv: str) -> None:
    G = small_g(conv).eval()
    with torch.no_grad():
        G.w_avg.copy_(torch.randn(G.w_dim))
        z = torch.randn(5, G.z_dim)
        plain = G(z)
        assert torch.equal(G(z, psi=1.0), plain)
        avg = G.synthesis(G.w_avg.expand(1, G.num_ws, -1))
        torch.testing.assert_close(G(z, psi=0.0), avg.expand(5, -1, -1, -1))  # every z -> image of w_avg
        w = G.mapping(z)
        ws = (G.w_avg + 0.7 * (w - G.w_avg))[:, None].expand(-1, G.num_ws, -1)
        torch.testing.assert_close(G(z, psi=0.7), G.synthesis(ws))
        ws = torch.cat([G.w_avg.expand(5, 2, -1), w[:, None].expand(-1, G.num_ws - 2, -1)], dim=1)
        torch.testing.assert_close(G(z, psi=0.0, truncation_cutoff=2), G.synthesis(ws))  # coarse layers only
        assert torch.equal(G.synthesis(w[:, None].repeat(1, G.num_ws, 1)), plain)  # forward = g(f(z))


@pytest.mark.parametrize("conv", CONVS)
def test_w_avg_is_an_ema_of_w_in_training_only(conv: str) -> None:
    G = small_g(conv, mixing_prob=0.0)
    z1, z2 = torch.randn(6, G.z_dim), torch.randn(6, G.z_dim)
    with torch.no_grad():
        m1, m2 = G.mapping(z1).mean(0), G.mapping(z2).mean(0)
        G(z1)
        torch.testing.assert_close(G.w_avg, 0.005 * m1)
        G(z2)
        torch.testing.assert_close(G.w_avg, 0.995 * 0.005 * m1 + 0.005 * m2)
        before = G.w_avg.clone()
        G.eval()(z1)
        assert torch.equal(G.w_avg, before)


# -- 6. style mixing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("conv", CONVS)
def test_every_style_drives_the_image(conv: str) -> None:
    G = small_g(conv, shape=(1, 32, 32))
    assert G.num_ws == 2 * 5 - 2
    ws = torch.randn(2, G.num_ws, G.w_dim, requires_grad=True)
    G.synthesis(ws, noise_mode="const").sum().backward()
    assert (ws.grad.abs().sum(dim=(0, 2)) > 0).all(), "a style is never used"


@pytest.mark.parametrize("conv", CONVS)
def test_style_mixing_crossover(conv: str) -> None:
    G = small_g(conv, mixing_prob=1.0)
    z = torch.randn(4, G.z_dim)
    with torch.no_grad():
        torch.manual_seed(5)
        mixed = G(z, noise_mode="const")
        # Replay the draws of forward(): the coin, the crossover, then z2.
        torch.manual_seed(5)
        assert torch.rand(()) < 1.0
        cutoff = int(torch.randint(1, G.num_ws, ()))
        z2 = torch.randn_like(z)
        w1, w2 = G.mapping(z), G.mapping(z2)
        ws = torch.cat([w1[:, None].expand(-1, cutoff, -1), w2[:, None].expand(-1, G.num_ws - cutoff, -1)], 1)
        torch.testing.assert_close(mixed, G.synthesis(ws, noise_mode="const"))
        assert not torch.allclose(mixed, G.synthesis(w1[:, None].expand(-1, G.num_ws, -1), noise_mode="const"))

        # mixing_prob = 0 in training mode is exactly no mixing, and draws no extra random numbers.
        G.mixing_prob = 0.0
        torch.manual_seed(7)
        a = G(z)
        torch.manual_seed(7)
        torch.testing.assert_close(a, G.synthesis(G.truncate(G.mapping(z))), rtol=0, atol=0)

        # Eval mode never mixes (even at probability 1) and uses no randomness at all.
        G.mixing_prob = 1.0
        G.eval()
        state = torch.get_rng_state()
        assert torch.equal(G(z), G.synthesis(w1[:, None].repeat(1, G.num_ws, 1)))
        assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("conv", CONVS)
def test_style_mixing_grid_layout(conv: str) -> None:
    G = small_g(conv)
    zr, zc = torch.randn(2, G.z_dim), torch.randn(3, G.z_dim)
    grid = style_mixing_grid(G, zr, zc, crossover=2)
    assert grid.shape == (3 * 4, 1, 16, 16) and G.training  # mode restored
    cells = grid.view(3, 4, 1, 16, 16)
    G.eval()
    with torch.no_grad():
        wr, wc = G.mapping(zr), G.mapping(zc)
        assert torch.equal(cells[0, 0], torch.ones(1, 16, 16))  # blank corner
        torch.testing.assert_close(cells[0, 1:], G(zc))  # column sources
        torch.testing.assert_close(cells[1:, 0], G(zr))  # row sources
        for i in range(2):
            for j in range(3):
                ws = torch.cat([wr[i].expand(1, 2, -1), wc[j].expand(1, G.num_ws - 2, -1)], dim=1)
                torch.testing.assert_close(cells[1 + i, 1 + j], G.synthesis(ws)[0])
        # crossover 0: nothing from the rows; crossover num_ws: everything from the rows
        torch.testing.assert_close(
            style_mixing_grid(G, zr, zc, 0).view(3, 4, 1, 16, 16)[1:, 1:], G(zc)[None].expand(2, -1, -1, -1, -1)
        )
        torch.testing.assert_close(
            style_mixing_grid(G, zr, zc, G.num_ws).view(3, 4, 1, 16, 16)[1:, 1:],
            G(zr)[:, None].expand(-1, 3, -1, -1, -1),
        )


# -- the discriminator ----------------------------------------------------------------------------------
def test_discriminator_sees_the_minibatch_through_its_stddev_layer() -> None:
    D = DISCRIMINATORS.build("stylegan", in_shape=(3, 32, 32), width=4, max_channels=8, mbstd_group=4)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    out = D(x)
    assert out.logits.shape == (8,) and out.features.shape == (8, 8)
    torch.testing.assert_close(D.head(out.features).squeeze(1), out.logits)
    x2 = x.clone()
    x2[4] = 0.0  # sample 4 shares a stddev group with sample 0 (groups interleave: i mod N/4), not with 1
    out2 = D(x2)
    assert not torch.allclose(out2.logits[0], out.logits[0])
    torch.testing.assert_close(out2.logits[1], out.logits[1])
    # residual blocks: (main + skip) / sqrt(2) on the avg-pooled skip path
    block = D.blocks[0]
    h = torch.randn(2, 4, 32, 32)
    main = F.leaky_relu(block.conv1(F.avg_pool2d(F.leaky_relu(block.conv0(h), 0.2), 2)), 0.2)
    torch.testing.assert_close(block(h), (main + block.skip(F.avg_pool2d(h, 2))) / math.sqrt(2))


# -- 7. refusals and the width table ------------------------------------------------------------------
def test_width_table() -> None:
    assert stylegan_channels(32, width=16, max_channels=64) == {4: 64, 8: 64, 16: 32, 32: 16}
    assert stylegan_channels(1024, width=32, max_channels=512) == {
        4: 512,
        8: 512,
        16: 512,
        32: 512,
        64: 512,
        128: 256,
        256: 128,
        512: 64,
        1024: 32,
    }  # the paper's


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 16), (3, 4, 4), (0, 16, 16), (16,)], ids=str)
def test_bad_resolution_is_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"generator 'stylegan': out_shape=.* is not supported.*power of two"):
        GENERATORS.build("stylegan", out_shape=shape)
    with pytest.raises(ValueError, match=r"discriminator 'stylegan': in_shape=.* is not supported"):
        DISCRIMINATORS.build("stylegan", in_shape=shape)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match=r"'stylegan' is unconditional.*num_classes=10"):
        GENERATORS.build("stylegan", out_shape=(1, 16, 16), num_classes=10)
    with pytest.raises(ValueError, match=r"'stylegan' is unconditional.*num_classes=10"):
        DISCRIMINATORS.build("stylegan", in_shape=(1, 16, 16), num_classes=10)
    with pytest.raises(RegistryError, match=r"conv.*'adain' or 'modulated'"):
        GENERATORS.build("stylegan", out_shape=(1, 16, 16), conv="adaptive")
    with pytest.raises(ValueError, match=r"conv='adaptive'; valid choices: adain, modulated"):
        StyleGANGenerator((1, 16, 16), conv="adaptive")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"mixing_prob=1.5"):
        GENERATORS.build("stylegan", out_shape=(1, 16, 16), mixing_prob=1.5)
    G = small_g("adain")
    with pytest.raises(ValueError, match=r"ws has shape \(2, 5, 8\), expected \[None, 6, 8\]"):
        G.synthesis(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match=r"z has shape \(2, 3\)"):
        G(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"crossover=7 must be in \[0, num_ws=6\]"):
        style_mixing_grid(G, torch.randn(1, 8), torch.randn(1, 8), 7)


# -- 8. a short run through the real trainer ---------------------------------------------------------
TINY = [
    "generator.width=4",
    "generator.max_channels=8",
    "generator.z_dim=8",
    "generator.w_dim=8",
    "generator.mapping_layers=2",
    "discriminator.width=4",
    "discriminator.max_channels=8",
    "schedule.batch_size=8",
    "schedule.steps=16",
    "penalties=[{name: r1, gamma: 1.0, every: 4}]",
    "log.every=1",
    "log.sample_every=0",
    "log.checkpoint_every=0",
    "log.tensorboard=false",
    "log.grid_size=16",
    "eval.metrics=[]",
    "ema.start=0",
]


@pytest.mark.parametrize("conv", CONVS)
def test_short_training_run(tmp_path: Any, conv: str) -> None:
    recipe = load_recipe("stylegan-digits", TINY + [f"generator.conv={conv}"])
    run = tmp_path / "run"
    t = Trainer(recipe, run)
    run.mkdir(parents=True)
    log = RunLog(run, tensorboard=False)
    try:
        res = t.train(log)
    finally:
        log.close()
    assert res["finished"] and res["step"] == 16
    rows = [r for r in read_metrics(run) if "d/loss" in r]
    assert len(rows) == 16
    for r in rows:
        assert all(isinstance(r[k], float) and math.isfinite(r[k]) for k in ("d/loss", "g/loss", "d/adv", "g/adv"))
        # lazy R1: only on generator steps 0, 4, 8, ... (the row of step s is written as s + 1)
        assert ("d/pen/r1" in r) == ((r["step"] - 1) % 4 == 0)
    assert all(r["d/pen/r1"] > 0 for r in rows if "d/pen/r1" in r)
    assert t.G.w_avg.abs().sum() > 0 and torch.isfinite(t.G.w_avg).all()  # tracked during training
    assert t.sampling_generator().w_avg.abs().sum() > 0  # and carried into the EMA generator
    G, _, _, meta = load_generator(run, device="cpu")
    assert meta["weights"] == "G_ema"
    assert torch.equal(G.w_avg, t.sampling_generator().w_avg)
    z = torch.randn(16, G.z_dim)
    with torch.no_grad():
        assert torch.equal(G(z), t.generate(z))  # the reloaded G draws the same samples
        assert torch.equal(G(z, psi=0.5), G(z, psi=0.5))


def test_psi_sampling_and_style_mixing_from_the_command_line(tmp_path: Any) -> None:
    """`gankit sample --psi` truncates in w space (psi = 0: every sample is the image of w_avg);
    `gankit latent --mixing L` writes the Fig. 3 grid of (rows + 1) x (cols + 1) cells."""
    import numpy as np
    from PIL import Image

    from gankit.cli import main

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "stylegan-digits",
                *TINY[:7],
                "schedule.steps=2",
                "log.tensorboard=false",
                "eval.metrics=[]",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    assert main(["sample", str(run), "--num", "6", "--psi", "0", "--out", str(tmp_path / "p0.npz")]) == 0
    p0 = np.load(tmp_path / "p0.npz")["images"]
    assert (p0 == p0[:1]).all()  # all collapse onto the average style
    assert main(["sample", str(run), "--num", "6", "--out", str(tmp_path / "p1.npz")]) == 0
    assert not (np.load(tmp_path / "p1.npz")["images"] == p0).all()
    assert (
        main(["latent", str(run), "--mixing", "2", "--rows", "2", "--steps", "3", "--out", str(tmp_path / "mix.png")])
        == 0
    )
    w, h = Image.open(tmp_path / "mix.png").size
    assert w > h and abs(w / h - 4 / 3) < 0.05  # 4 columns (blank + 3 sources) by 3 rows
    assert main(["latent", str(run), "--mixing", "99", "--out", str(tmp_path / "bad.png")]) == 2
    dc = tmp_path / "dc"
    assert (
        main(
            [
                "train",
                "dcgan-digits",
                "schedule.steps=1",
                "generator.width=4",
                "discriminator.width=4",
                "eval.metrics=[]",
                "log.tensorboard=false",
                "--out",
                str(dc),
            ]
        )
        == 0
    )
    assert main(["sample", str(dc), "--psi", "0.5", "--out", str(tmp_path / "x.npz")]) == 2
    assert main(["latent", str(dc), "--mixing", "1", "--out", str(tmp_path / "x.png")]) == 2
