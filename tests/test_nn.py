"""Layers of gankit/nn checked against direct, loop-by-loop computations of their formulas."""

import pytest
import torch

from gankit.models import DISCRIMINATORS
from gankit.nn import MinibatchDiscrimination, MinibatchStdDev


def test_minibatch_discrimination_matches_the_paper_formula():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(6, num_kernels=4, kernel_dim=3)
    f = torch.randn(5, 6)
    out = layer(f)
    assert out.shape == (5, 6 + 4)
    assert torch.equal(out[:, :6], f)
    M = (f @ layer.T).view(5, 4, 3)
    for i in range(5):
        for b in range(4):
            expected = sum(torch.exp(-(M[i, b] - M[j, b]).abs().sum()) for j in range(5) if j != i)
            assert out[i, 6 + b].item() == pytest.approx(expected.item(), rel=1e-5)


def test_minibatch_discrimination_sees_collapse():
    # Identical samples are all at L1 distance 0: each o_b is N - 1, its maximum.
    layer = MinibatchDiscrimination(3, num_kernels=2, kernel_dim=2)
    out = layer(torch.ones(4, 3))
    assert torch.allclose(out[:, 3:], torch.full((4, 2), 3.0))


def test_minibatch_stddev_vectors_and_images():
    torch.manual_seed(0)
    x = torch.randn(8, 5)
    out = MinibatchStdDev(4)(x)
    assert out.shape == (8, 6) and torch.equal(out[:, :5], x)
    for i in range(8):
        group = x[i % 2 :: 2]  # ProGAN's grouping: sample i is in group i mod (N / G)
        expected = group.std(0, unbiased=False).mean()
        assert out[i, 5].item() == pytest.approx(expected.item(), rel=1e-4)
    img = torch.randn(6, 3, 4, 4)
    out = MinibatchStdDev(3)(img)
    assert out.shape == (6, 4, 4, 4)
    expected = img[0::2].std(0, unbiased=False).mean()
    assert torch.allclose(out[0, 3], torch.full((4, 4), expected.item()), rtol=1e-4)
    assert torch.allclose(out[2, 3], out[0, 3]) and not torch.allclose(out[1, 3], out[0, 3])
    # a channels_last input stays channels_last (an NCHW output slowed every conv after it), same values
    cl = MinibatchStdDev(3)(img.contiguous(memory_format=torch.channels_last))
    assert cl.is_contiguous(memory_format=torch.channels_last) and torch.equal(cl, out)


def test_minibatch_stddev_has_exact_second_derivatives_and_keeps_a_bf16_input_bf16():
    # R1 / R2 differentiate D's output twice; the variance is written out in float32 (faster than
    # torch.var in bf16 on the CPU), so check both orders against finite differences in float64
    torch.manual_seed(0)
    x = torch.randn(4, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    layer = MinibatchStdDev(2)
    assert torch.autograd.gradcheck(layer, (x,)) and torch.autograd.gradgradcheck(layer, (x,))
    low = layer(x.detach().to(torch.bfloat16))
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.double(), layer(x.detach().to(torch.bfloat16).double()), rtol=1e-2)


def test_minibatch_stddev_is_zero_for_a_collapsed_batch_and_rejects_odd_batches():
    out = MinibatchStdDev(4)(torch.ones(8, 3))
    assert out[:, 3].abs().max() < 1e-3
    with pytest.raises(ValueError, match="not divisible"):
        MinibatchStdDev(4)(torch.ones(6, 3))
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStdDev(0)


@pytest.mark.parametrize(
    "name,shape,opts",
    [
        ("mlp", (2,), {"minibatch_discrimination": 8}),
        ("mlp", (2,), {"minibatch_stddev": 4}),
        ("mlp", (1, 8, 8), {"minibatch_stddev": 4, "minibatch_discrimination": 5}),
        ("dcgan", (1, 16, 16), {"minibatch_stddev": 4, "norm": "none"}),
    ],
)
def test_discriminator_options_use_the_batch(name, shape, opts):
    torch.manual_seed(0)
    D = DISCRIMINATORS.build(name, in_shape=shape, num_classes=0, **opts)
    x = torch.randn(8, *shape)
    out = D(x).logits
    assert out.shape == (8,)
    # With a batch layer, a sample's logit depends on the other samples of its batch.
    x2 = x.clone()
    x2[1:] = torch.randn(7, *shape)
    assert D(x2).logits[0].item() != pytest.approx(out[0].item(), abs=1e-7)
    D_plain = DISCRIMINATORS.build(
        name, in_shape=shape, num_classes=0, **{k: v for k, v in opts.items() if not k.startswith("minibatch")}
    )
    assert D_plain(x2).logits[0].item() == pytest.approx(D_plain(x).logits[0].item(), abs=1e-6)


# -- virtual batch norm ---------------------------------------------------------------------------
from gankit.models import GENERATORS  # noqa: E402
from gankit.nn import VirtualBatchNorm, vbn_forward  # noqa: E402


@pytest.mark.parametrize("shape", [(5, 3), (5, 3, 2, 2)])
def test_vbn_matches_the_formula_with_reference_moments(shape):
    torch.manual_seed(0)
    layer = VirtualBatchNorm(3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        layer.bias.copy_(torch.tensor([0.0, -1.0, 1.0]))
    ref, x = torch.randn(*shape) * 2 + 1, torch.randn(4, *shape[1:])
    out = vbn_forward(layer, ref, x)
    n = shape[0]
    for i in range(4):
        for c in range(3):
            r, xi = ref[:, c].flatten(), x[i, c].flatten()
            mu = (xi.mean() + n * r.mean()) / (n + 1)
            mu2 = ((xi**2).mean() + n * (r**2).mean()) / (n + 1)
            expected = (x[i, c] - mu) / torch.sqrt(mu2 - mu**2 + 1e-5) * layer.weight[c] + layer.bias[c]
            assert torch.allclose(out[i, c], expected, atol=1e-5)


def test_vbn_outputs_do_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    G = GENERATORS.build("mlp", out_shape=(2,), num_classes=0, z_dim=4, hidden=[16, 16], virtual_batch_norm=32)
    BN = GENERATORS.build("mlp", out_shape=(2,), num_classes=0, z_dim=4, hidden=[16, 16], batch_norm=True)
    z = torch.randn(8, 4)
    z2 = torch.cat([z[:1], torch.randn(7, 4) * 3])
    assert torch.allclose(G(z)[0], G(z2)[0], atol=1e-6)
    assert not torch.allclose(BN(z)[0], BN(z2)[0], atol=1e-3)  # batch norm (train mode) does depend
    # The reference batch is fixed, saved with the weights, and gradients reach every layer.
    assert "ref_z" in G.state_dict()
    again = GENERATORS.build("mlp", out_shape=(2,), num_classes=0, z_dim=4, hidden=[16, 16], virtual_batch_norm=32)
    assert torch.equal(again.ref_z, G.ref_z)
    G(z).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
    with pytest.raises(ValueError, match="not both"):
        GENERATORS.build("mlp", out_shape=(2,), num_classes=0, batch_norm=True, virtual_batch_norm=8)


def test_dcgan_generator_with_vbn_is_per_sample():
    torch.manual_seed(0)
    G = GENERATORS.build("dcgan", out_shape=(1, 16, 16), num_classes=0, z_dim=8, width=8, virtual_batch_norm=16)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in G.modules())
    z = torch.randn(4, 8)
    a, b = G(z), G(torch.cat([z[:2], torch.randn(2, 8)]))
    assert a.shape == (4, 1, 16, 16) and torch.allclose(a[:2], b[:2], atol=1e-6)


# -- self-attention and residual blocks ------------------------------------------------------------
from gankit.nn.attention import SelfAttention  # noqa: E402
from gankit.nn.resblocks import DBlock, GBlock  # noqa: E402


@pytest.mark.parametrize("pool", [False, True])
def test_self_attention_matches_the_sagan_formula(pool):
    torch.manual_seed(0)
    sa = SelfAttention(16, pool=pool)
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(sa(x), x)  # gamma = 0: the identity at initialisation
    with torch.no_grad():
        sa.gamma.fill_(0.7)
    out = sa(x)
    pool_fn = (lambda t: torch.nn.functional.max_pool2d(t, 2)) if pool else (lambda t: t)
    keys, values = pool_fn(sa.f(x)).flatten(2), pool_fn(sa.h(x)).flatten(2)
    q = sa.g(x).flatten(2)
    for n in range(2):
        for j in range(16):  # output position j attends over key positions i
            s = torch.stack([q[n, :, j] @ keys[n, :, i] for i in range(keys.shape[2])])
            beta = torch.softmax(s, 0)
            o_j = (values[n] * beta).sum(1)
            expected = x[n, :, j // 4, j % 4] + 0.7 * (sa.v.weight[:, :, 0, 0] @ o_j)
            assert torch.allclose(out[n, :, j // 4, j % 4], expected, atol=1e-5)
    out.square().sum().backward()
    assert all(p.grad.abs().sum() > 0 for p in sa.parameters())


def test_residual_blocks_resample_and_keep_the_shortcut():
    torch.manual_seed(0)
    g = GBlock(8, 4)
    assert g(torch.randn(2, 8, 4, 4)).shape == (2, 4, 8, 8)
    d = DBlock(3, 8, down=True, first=True)
    x = torch.randn(2, 3, 8, 8)
    assert d(x).shape == (2, 8, 4, 4)
    # With the residual branch zeroed, the block is its shortcut: pool, then 1x1 conv (optimized block).
    with torch.no_grad():
        d.conv2.weight.zero_()
        d.conv2.bias.zero_()
    expected = d.shortcut(torch.nn.functional.avg_pool2d(x, 2))
    assert torch.allclose(d(x), expected, atol=1e-6)
    same = DBlock(8, 8, down=False)
    assert same.shortcut is None and same(torch.randn(2, 8, 4, 4)).shape == (2, 8, 4, 4)


# -- autoencoder discriminator and the pulling-away term ---------------------------------------------
@pytest.mark.parametrize("energy", ["mse", "l1"])
def test_autoencoder_energy_is_the_reconstruction_error(energy):
    torch.manual_seed(0)
    D = DISCRIMINATORS.build("autoencoder", in_shape=(1, 16, 16), num_classes=0, width=8, code_dim=5, energy=energy)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    out = D(x)
    assert out.recon.shape == x.shape and out.features.shape == (3, 5)
    diff = out.recon - x
    expected = diff.square().mean((1, 2, 3)) if energy == "mse" else diff.abs().mean((1, 2, 3))
    assert torch.allclose(out.logits, expected, atol=1e-6)


def test_linear_decoder_keeps_the_energy_gradient_where_tanh_saturates():
    """With a tanh output saturated at -1 (a decoder collapsed onto a black background) the energy has
    no gradient; out_activation=none keeps one."""
    torch.manual_seed(0)
    x = -torch.ones(2, 1, 16, 16)
    x[:, :, 6:10, 6:10] = 1.0  # a little ink on black
    grads = {}
    for act in ("tanh", "none"):
        D = DISCRIMINATORS.build("autoencoder", in_shape=(1, 16, 16), width=8, code_dim=5, out_activation=act)
        last = [m for m in D.decoder if isinstance(m, torch.nn.ConvTranspose2d)][-1]
        with torch.no_grad():
            last.bias.fill_(-20.0)  # drive every output pixel far below -1
        D(x).logits.sum().backward()
        grads[act] = last.bias.grad.abs().item()
    assert grads["tanh"] < 1e-8 < grads["none"]
    with pytest.raises(ValueError, match="out_activation"):
        DISCRIMINATORS.build("autoencoder", in_shape=(1, 16, 16), out_activation="relu")


def test_batch_normalised_code_judges_a_batch_by_its_own_statistics():
    """code_norm=batch (BEGAN's working MNIST D): in training the code of a sample is normalised over
    the batch D judges, so the same image gets another energy beside other images; without it, not."""
    torch.manual_seed(0)
    x = torch.rand(6, 1, 16, 16) * 2 - 1
    energies = {}
    for norm in ("none", "batch"):
        torch.manual_seed(1)
        D = DISCRIMINATORS.build("autoencoder", in_shape=(1, 16, 16), width=8, code_dim=4, code_norm=norm)
        bn = [m for m in D.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        assert [m.num_features for m in bn] == ([4, 8 * 2 * 16] if norm == "batch" else [])
        energies[norm] = (D(x[:3]).logits, D(torch.cat([x[:3], -x[3:]])).logits[:3])
    alone, in_company = energies["none"]
    assert torch.allclose(alone, in_company, atol=1e-6)
    alone, in_company = energies["batch"]
    assert (alone - in_company).abs().min() > 1e-4
    with pytest.raises(ValueError, match="code_norm"):
        DISCRIMINATORS.build("autoencoder", in_shape=(1, 16, 16), code_norm="layer")


def test_levels_set_where_the_code_is_taken():
    """levels=1: one stride-2 convolution, then the fully connected code (the shallow BEGAN MNIST D);
    0 (the default) goes down to 4x4. The energy stays the reconstruction error at every depth."""
    torch.manual_seed(0)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    convs = {}
    for levels in (0, 1, 2):
        D = DISCRIMINATORS.build("autoencoder", in_shape=(1, 32, 32), width=8, code_dim=6, levels=levels)
        down = [m for m in D.encoder if isinstance(m, torch.nn.Conv2d)]
        up = [m for m in D.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
        code = [m for m in D.encoder if isinstance(m, torch.nn.Linear)][0]
        side = 32 // 2 ** len(down)
        assert len(up) == len(down) and code.in_features == down[-1].out_channels * side * side
        out = D(x)
        assert out.recon.shape == x.shape and out.features.shape == (2, 6)
        assert torch.allclose(out.logits, (out.recon - x).square().mean((1, 2, 3)), atol=1e-6)
        convs[levels] = len(down)
    assert convs == {0: 3, 1: 1, 2: 2}
    with pytest.raises(ValueError, match="levels=4"):
        DISCRIMINATORS.build("autoencoder", in_shape=(1, 32, 32), levels=4)


def test_pulling_away_term_matches_its_definition():
    from gankit.tricks import PullingAway

    torch.manual_seed(0)
    s = torch.randn(5, 4)
    n = 5
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                total += (float(s[i] @ s[j]) / float(s[i].norm() * s[j].norm())) ** 2
    assert PullingAway.term(s).item() == pytest.approx(total / (n * (n - 1)), rel=1e-5)
    assert PullingAway.term(torch.eye(4)).item() == pytest.approx(0.0, abs=1e-7)  # orthogonal codes
    assert PullingAway.term(torch.ones(3, 4)).item() == pytest.approx(1.0, rel=1e-6)  # collapsed codes


def test_pixel_norm_gives_unit_mean_square_per_pixel() -> None:
    from gankit.nn.equalized import PixelNorm

    x = torch.randn(4, 16, 5, 5) * 7 + 3
    y = PixelNorm()(x)
    torch.testing.assert_close(y.pow(2).mean(dim=1), torch.ones(4, 5, 5), atol=1e-5, rtol=0)
    v = PixelNorm()(torch.randn(6, 32) * 5)
    torch.testing.assert_close(v.pow(2).mean(dim=1), torch.ones(6), atol=1e-5, rtol=0)


def test_equalized_layers_scale_weights_by_he_constant() -> None:
    """ProGAN Sec. 4.1: the layer computes with c*w, c = gain/sqrt(fan_in); stored w ~ N(0, 1)."""
    import math

    import torch.nn.functional as F

    from gankit.nn.equalized import EqualizedConv2d, EqualizedLinear

    torch.manual_seed(0)
    lin = EqualizedLinear(400, 300, lr_mul=0.01)
    assert abs(float(lin.weight.detach().std()) * 0.01 - 1.0) < 0.02  # stored N(0, 1/lr_mul^2)
    x = torch.randn(5, 400)
    ref = F.linear(x, lin.weight * math.sqrt(2) * 0.01 / math.sqrt(400), lin.bias * 0.01)
    torch.testing.assert_close(lin(x), ref)
    conv = EqualizedConv2d(8, 4, 3, padding=1, gain=1.0)
    assert conv.scale == pytest.approx(1 / math.sqrt(72))
    xi = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(conv(xi), F.conv2d(xi, conv.weight / math.sqrt(72), conv.bias, padding=1))
    # unit-variance input, N(0, 1) weights scaled by 1/sqrt(fan_in): output variance ~ gain^2 = 1
    big = EqualizedConv2d(64, 64, 3, padding=1, gain=1.0)
    with torch.no_grad():
        assert 0.8 < float(big(torch.randn(8, 64, 16, 16))[:, :, 1:-1, 1:-1].var()) < 1.2


def test_inward_clamp_passes_only_gradients_that_lead_back_into_the_range() -> None:
    from gankit.nn.clamp import inward_clamp

    x = torch.tensor([-3.0, -3.0, -0.5, 0.5, 2.0, 2.0], requires_grad=True)
    upstream = torch.tensor([1.0, -1.0, 2.0, -2.0, 1.0, -1.0])  # d loss / d output
    y = inward_clamp(x)
    assert torch.equal(y.detach(), x.detach().clamp(-1, 1))
    (y * upstream).sum().backward()
    # below -1: descent (x - lr * grad) moves up only for grad < 0; above 1: down only for grad > 0;
    # inside: the identity
    assert x.grad is not None
    assert x.grad.tolist() == [0.0, -1.0, 2.0, -2.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="below"):
        inward_clamp(x, 1.0, -1.0)


def test_inward_clamp_stops_the_drift_a_tanh_keeps_under_adam() -> None:
    """A value pushed towards the background under Adam: through tanh it keeps sliding out (Adam rescales
    the vanishing gradient), through inward_clamp it stops at the edge and comes back at once."""
    from gankit.nn.clamp import inward_clamp

    def train(squash, target_sign: float, x0: float, steps: int) -> float:
        x = torch.tensor([x0], requires_grad=True)
        opt = torch.optim.Adam([x], lr=0.05, betas=(0.0, 0.9))
        for _ in range(steps):
            opt.zero_grad()
            (-target_sign * squash(x)).sum().backward()  # ask for ever darker (-1) or brighter (+1) output
            opt.step()
        return x.item()

    assert train(torch.tanh, -1.0, 0.0, 200) < -4  # tanh: past where the image changes (uint8: tanh(-4) -> 0)
    edge = train(inward_clamp, -1.0, 0.0, 200)
    assert -1.1 < edge <= -1.0 + 1e-6  # the clamp: held at the edge
    assert train(inward_clamp, 1.0, -1.05, 3) > -1.0  # and back in range within a few steps
