"""R3GAN's modernised ResNet (Huang et al. 2024): inverted-bottleneck blocks that start as the identity
(Fix-up), grouped convolutions, no normalisation, shapes and conditioning, and the recipe trains."""

import pytest
import torch
from torch import nn

from gankit.models import DISCRIMINATORS, GENERATORS
from gankit.models.r3gan import InvertedBottleneck
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer


def test_a_block_starts_as_the_identity_and_its_branch_is_fixup_scaled():
    x = torch.randn(2, 32, 8, 8)
    torch.manual_seed(0)
    plain = InvertedBottleneck(32, 2, 16, scale=1.0)
    torch.manual_seed(0)
    scaled = InvertedBottleneck(32, 2, 16, scale=0.5)
    assert torch.equal(plain(x), x) and torch.equal(scaled(x), x)
    assert torch.allclose(scaled.expand.weight, 0.5 * plain.expand.weight)
    assert torch.allclose(scaled.spatial.weight, 0.5 * plain.spatial.weight)
    assert plain.spatial.groups == 64 // 16 and plain.expand.out_channels == 64
    # the identity is only the start: the zero last layer still gets a gradient
    plain(x).square().sum().backward()
    assert plain.project.weight.grad.abs().sum() > 0


def test_weights_start_at_the_authors_he_scale_and_keep_the_signal_scale():
    # the authors' MSR initialiser: N(0, gain^2 / fan_in), leaky ReLU(0.2) gain sqrt(2 / (1 + 0.2^2)),
    # times the Fix-up factor inside residual branches; a grouped conv's fan-in is (in / groups) * 3 * 3
    torch.manual_seed(0)
    block = InvertedBottleneck(64, 2, 16, scale=0.5)
    gain = (2 / 1.04) ** 0.5 * 0.5
    assert block.expand.weight.std().item() == pytest.approx(gain / 64**0.5, rel=0.05)
    assert block.spatial.weight.std().item() == pytest.approx(gain / (16 * 9) ** 0.5, rel=0.05)
    assert block.project.bias is None and not block.project.weight.any()
    assert not block.expand.bias.any()
    # PyTorch's default init would shrink the signal by about 2.4x per layer; at He scale G's output
    # at initialisation keeps the scale of its 4x4 basis (about 1), whatever the depth
    G = GENERATORS.build("r3gan", out_shape=(1, 64, 64), num_classes=0, width=16, max_channels=64)
    with torch.no_grad():
        out = G(torch.randn(256, G.z_dim))
    assert 0.2 < out.std().item() < 5.0
    # the generative basis: a learned 4x4 map per channel, scaled per sample by a linear map of z
    z = torch.randn(3, G.z_dim)
    h = G.basis * G.modulation(z)[:, :, None, None]
    assert torch.allclose(h[1, 5], G.basis[5] * (G.modulation.weight[5] @ z[1]), atol=1e-6)


@pytest.mark.parametrize("res", [8, 16, 32, 64])
def test_shapes_and_no_normalisation(res):
    G = GENERATORS.build("r3gan", out_shape=(3, res, res), num_classes=0, width=16, max_channels=32)
    D = DISCRIMINATORS.build("r3gan", in_shape=(3, res, res), num_classes=0, width=16, max_channels=32)
    x = G(torch.randn(5, G.z_dim))
    out = D(x)
    assert x.shape == (5, 3, res, res) and out.logits.shape == (5,) and out.features.shape == (5, G.widths[0])
    norms = (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)
    assert not any(isinstance(m, norms) for net in (G, D) for m in net.modules())
    # L = (number of stages) blocks in each net; the Fix-up scale is L^(-1/4)
    blocks = [m for m in G.modules() if isinstance(m, InvertedBottleneck)]
    assert len(blocks) == len(G.widths)


def test_conditional_version_embeds_classes_and_projects():
    G = GENERATORS.build("r3gan", out_shape=(1, 16, 16), num_classes=10, width=16)
    D = DISCRIMINATORS.build("r3gan", in_shape=(1, 16, 16), num_classes=10, width=16)
    z = torch.randn(4, G.z_dim)
    y, y2 = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7])
    with torch.no_grad():
        nn.init.normal_(D.projection.weight)
        assert not torch.equal(G(z, y), G(z, y2))
        x = G(z, y)
        assert not torch.equal(D(x, y).logits, D(x, y2).logits)
    with pytest.raises(ValueError, match="G\\(z, y\\)"):
        G(z)
    with pytest.raises(ValueError, match="D\\(x, y\\)"):
        D(x)


def test_tanh_and_clamp_output_options_bring_the_linear_output_into_the_image_range():
    torch.manual_seed(0)
    linear = GENERATORS.build("r3gan", out_shape=(1, 16, 16), num_classes=0, width=8, max_channels=32)
    torch.manual_seed(0)
    squashed = GENERATORS.build(
        "r3gan", out_shape=(1, 16, 16), num_classes=0, width=8, max_channels=32, out_activation="tanh"
    )
    z = torch.randn(64, linear.z_dim)
    with torch.no_grad():
        a, b = linear(z), squashed(z)
    assert a.abs().max() > 1  # the paper's linear output leaves the image range at initialisation
    assert torch.allclose(b, torch.tanh(a), atol=1e-6) and b.abs().max() < 1
    torch.manual_seed(0)
    clamped = GENERATORS.build(
        "r3gan", out_shape=(1, 16, 16), num_classes=0, width=8, max_channels=32, out_activation="clamp"
    )
    with torch.no_grad():
        assert torch.allclose(clamped(z), a.clamp(-1, 1), atol=1e-6)
    with pytest.raises(ValueError, match="out_activation"):
        GENERATORS.build("r3gan", out_shape=(1, 16, 16), num_classes=0, out_activation="sigmoid")


def test_minibatch_stddev_lets_each_logit_see_its_group_and_only_its_group():
    torch.manual_seed(0)
    D = DISCRIMINATORS.build("r3gan", in_shape=(1, 16, 16), num_classes=0, width=8, minibatch_stddev=4)
    torch.manual_seed(0)
    plain = DISCRIMINATORS.build("r3gan", in_shape=(1, 16, 16), num_classes=0, width=8)
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    moved = x.clone()
    moved[2] = -moved[2]  # groups of 4 out of 8: sample i sits with i mod 2, so 2 shares a group with 0, not 1
    with torch.no_grad():
        a, b = D(x).logits, D(moved).logits
        assert a[0] != b[0] and a[1] == b[1]
        assert torch.equal(plain(x).logits[[0, 1]], plain(moved).logits[[0, 1]])
        assert D(x).features.shape == (8, plain(x).features.shape[1] + 1)
    with pytest.raises(ValueError, match="minibatch_stddev"):
        DISCRIMINATORS.build("r3gan", in_shape=(1, 16, 16), num_classes=0, minibatch_stddev=-1)


def test_refuses_shapes_it_cannot_build():
    with pytest.raises(ValueError, match="power of 2"):
        GENERATORS.build("r3gan", out_shape=(1, 28, 28), num_classes=0)
    with pytest.raises(ValueError, match="square"):
        DISCRIMINATORS.build("r3gan", in_shape=(1, 16, 32), num_classes=0)
    with pytest.raises(ValueError, match="group_size"):
        InvertedBottleneck(24, 1, 16, scale=1.0)


def test_the_recipe_trains_with_rpgan_r1_r2(tmp_path):
    r = load_recipe(
        "r3gan-mnist",
        [
            "data={name: digits, resolution: 16}",
            "generator.width=16",
            "discriminator.width=16",
            "generator.max_channels=32",
            "discriminator.max_channels=32",
            "schedule.batch_size=16",
            "log.tensorboard=false",
            "eval.metrics=[]",
            "eval.best=null",
        ],
    )
    assert r.objective.name == "relativistic" and [p.name for p in r.penalties] == ["r1", "r2"]
    t = Trainer(r, tmp_path / "run")
    before = [p.clone() for p in t.G.parameters()]
    for _ in range(5):
        terms = t.train_step(want_log=True)
    assert "d/pen/r1" in terms and "d/pen/r2" in terms
    assert all(torch.isfinite(v).all() for v in terms.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters()))


def test_the_discriminator_runs_under_cpu_bf16_autocast_as_in_float32():
    # what `perf: auto` does on a CPU with AVX512-BF16 or AMX; PyTorch's antialiased resampling has no
    # bf16 CPU kernel, and D's /2 steps used to raise NotImplementedError there
    torch.manual_seed(0)
    D = DISCRIMINATORS.build("r3gan", in_shape=(1, 16, 16), width=8, max_channels=16, minibatch_stddev=2)
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = D(x).logits
    assert low.dtype == torch.bfloat16
    low.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
    full = D(x).logits.detach()
    assert torch.allclose(low.float(), full, rtol=0.05, atol=0.05 * full.abs().max().item())


def test_the_basis_is_the_depthwise_4x4_convolution_and_an_nhwc_d_keeps_nhwc_from_its_first_stage():
    # D computes its 4x4 depthwise basis as a weighted sum (faster on the CPU): the same numbers as the
    # convolution it holds the weights of; and in an NHWC network (perf.channels_last) a 1-channel image's
    # first feature map, which the convolution returns in NCHW, is made NHWC before the residual stream
    torch.manual_seed(0)
    D = DISCRIMINATORS.build("r3gan", in_shape=(1, 16, 16), width=8, max_channels=16, minibatch_stddev=2)
    seen: dict[str, torch.Tensor] = {}
    D.stddev.register_forward_hook(lambda m, i, o: seen.update(last=o))
    D.stages[0].register_forward_hook(lambda m, i, o: seen.update(first=o))
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        features = D(x).features
        assert torch.allclose(features, D.basis(seen["last"]).flatten(1), atol=1e-5)
        assert seen["first"].is_contiguous()
        D = D.to(memory_format=torch.channels_last)
        nhwc = D(x).features
    first = seen["first"]
    assert first.is_contiguous(memory_format=torch.channels_last) and not first.is_contiguous()
    assert torch.allclose(nhwc, features, atol=1e-5)
