"""Every registered architecture against the model contract (DESIGN.md, Conventions), then the
DCGAN paper's guidelines (Radford et al., 2016, Sec. 3-4) checked on the built modules.

Registry-wide in the style of timm's tests/test_models.py: a new model only needs a row in the
case tables below, and a registered model without a row fails ``test_every_model_has_cases``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from gankit.models import DISCRIMINATORS, GENERATORS, DOut
from gankit.models.dcgan import dcgan_channels
from gankit.registry import RegistryError

N = 4  # batch size: > 1 so BatchNorm can normalise in train mode

# name -> the data shapes the architecture must support (registry defaults for the options).
GEN_CASES: dict[str, list[tuple[int, ...]]] = {
    "mlp": [(2,), (1, 16, 16)],
    "dcgan": [(1, 16, 16), (3, 32, 32), (3, 64, 64), (4, 16, 16)],
    "resnet": [(1, 16, 16), (3, 32, 32), (3, 48, 48), (3, 64, 64)],
    "biggan": [(1, 16, 16), (3, 32, 32), (3, 48, 48), (3, 64, 64)],  # G only: its D is resnet (projection)
    "progan": [(1, 16, 16), (3, 32, 32), (4, 8, 8)],  # default: built at its final stage
    "stylegan": [(1, 16, 16), (3, 32, 32), (4, 16, 16)],
    "began": [(1, 16, 16), (3, 32, 32), (1, 8, 8)],
    "r3gan": [(1, 16, 16), (3, 32, 32), (3, 64, 64), (4, 8, 8)],
}
DISC_CASES: dict[str, list[tuple[int, ...]]] = {
    "mlp": [(2,), (1, 16, 16)],
    "dcgan": [(1, 16, 16), (3, 32, 32), (3, 64, 64), (4, 16, 16)],
    "maxout": [(2,), (1, 16, 16)],
    "resnet": [(1, 16, 16), (3, 32, 32), (3, 48, 48), (3, 64, 64)],
    "autoencoder": [(1, 16, 16), (3, 32, 32)],
    "began": [(1, 16, 16), (3, 32, 32), (1, 8, 8)],
    "progan": [(1, 16, 16), (3, 32, 32), (4, 8, 8)],
    "stylegan": [(1, 16, 16), (3, 32, 32), (4, 16, 16)],
    "patchgan": [(3, 64, 64), (6, 64, 64)],  # logits: one per 70x70 patch
    "srgan": [(3, 32, 32), (1, 16, 16)],
    "r3gan": [(1, 16, 16), (3, 32, 32), (3, 64, 64), (4, 8, 8)],
}
PATCH_DISCRIMINATORS = {"patchgan"}  # logits (N, h, w) rather than (N,)
# Generators whose last layer is linear by design (BEGAN's, R3GAN's: no tanh); the data range is learned.
LINEAR_OUTPUT = {"began", "r3gan"}
# Image-to-image generators (the translation families): name -> (in_shape, out_shape) pairs.
IMAGE_GEN_CASES: dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {
    "unet": [((1, 32, 32), (3, 32, 32)), ((4, 16, 16), (3, 16, 16)), ((1, 28, 28), (1, 28, 28))],
    "srresnet": [((3, 8, 8), (3, 32, 32)), ((1, 16, 16), (1, 32, 32))],
    "cyclegan": [((1, 16, 16), (3, 16, 16)), ((3, 32, 32), (3, 32, 32))],
    "autoencoder": [((1, 16, 16), (1, 16, 16)), ((3, 32, 32), (3, 32, 32))],
}
# Non-default options that change the graph, run through the same contract tests.
GEN_VARIANTS: list[tuple[str, tuple[int, ...], dict[str, Any]]] = [
    ("mlp", (2,), {"batch_norm": True, "activation": "elu", "hidden": [32, 32]}),
    ("mlp", (3, 8, 8), {"activation": "leaky-relu", "out_activation": "none", "z_dim": 4}),
    ("mlp", (5,), {"activation": "tanh", "hidden": []}),
    ("dcgan", (3, 8, 8), {"width": 16, "z_dim": 8, "init": "default"}),
    ("mlp", (2,), {"virtual_batch_norm": 16}),
    ("resnet", (3, 32, 32), {"width": 8, "attention": 16, "init": "default"}),
    ("dcgan", (1, 16, 16), {"virtual_batch_norm": 8, "width": 8}),
    ("biggan", (3, 32, 32), {"width": 8, "attention": 16, "z_dim": 40, "shared_dim": 8, "init": "default"}),
    ("progan", (3, 32, 32), {"width": 8, "max_channels": 32, "start": 8, "z_dim": 16}),
    ("stylegan", (1, 16, 16), {"conv": "modulated"}),
    ("stylegan", (3, 16, 16), {"conv": "modulated", "fused": False}),
    ("stylegan", (1, 16, 16), {"width": 8, "mixing_prob": 0.0}),
]
DISC_VARIANTS: list[tuple[str, tuple[int, ...], dict[str, Any]]] = [
    ("mlp", (2,), {"dropout": 0.5, "activation": "tanh"}),
    ("mlp", (2,), {"hidden": [], "activation": "relu"}),
    ("mlp", (1, 16, 16), {"noise": [0.3, 0.5], "weight_norm": True, "hidden": [32, 16]}),
    ("dcgan", (3, 32, 32), {"norm": "layer", "width": 16}),
    ("dcgan", (3, 16, 16), {"norm": "none", "init": "default"}),
    ("dcgan", (3, 8, 8), {"max_channels": 32}),
    ("mlp", (2,), {"minibatch_discrimination": 5, "minibatch_stddev": 2}),
    ("dcgan", (3, 16, 16), {"minibatch_stddev": 2}),
    ("r3gan", (1, 16, 16), {"width": 8, "minibatch_stddev": 2}),
    ("resnet", (3, 32, 32), {"width": 8, "attention": 16}),
    ("progan", (3, 32, 32), {"width": 8, "max_channels": 32, "start": 8, "mbstd_group": 2}),
    ("stylegan", (1, 16, 16), {"width": 8, "mbstd_group": 2}),
    ("patchgan", (2, 32, 32), {"receptive_field": 16, "width": 8}),
    ("patchgan", (2, 32, 32), {"receptive_field": 1, "norm": "instance"}),
    ("patchgan", (4, 16, 16), {"receptive_field": "full", "norm": "none", "width": 8}),
]


def _params(cases: dict[str, list[tuple[int, ...]]], variants: list[Any]) -> list[Any]:
    rows = [(name, shape, {}) for name, shapes in cases.items() for shape in shapes] + variants
    ids = [f"{n}-{'x'.join(map(str, s))}-{i}" for i, (n, s, _) in enumerate(rows)]
    return [pytest.param(*row, id=i) for row, i in zip(rows, ids)]


G_PARAMS = _params(GEN_CASES, GEN_VARIANTS)
D_PARAMS = _params(DISC_CASES, DISC_VARIANTS)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _data(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(N, *shape) * 2 - 1 if len(shape) == 3 else torch.randn(N, *shape)


def _assert_all_grads(module: nn.Module) -> None:
    from gankit.models.r3gan import InvertedBottleneck
    from gankit.nn.attention import SelfAttention

    # SAGAN's attention starts gated off (gamma = 0, Zhang et al. 2019), so its projections get exactly
    # zero gradient at initialisation by design; gamma itself must still learn (tests/test_nn.py
    # checks the projections once gamma != 0).
    gated = {
        f"{n}.{q}"
        for n, m in module.named_modules()
        if isinstance(m, SelfAttention) and m.gamma == 0
        for q, _ in m.named_parameters()
        if q != "gamma"
    }
    # R3GAN's residual branches start at zero (Fix-up: the last layer of each branch is zero), so the
    # layers before it get exactly zero gradient at initialisation, by design (tests/test_r3gan.py).
    gated |= {
        f"{n}.{q}"
        for n, m in module.named_modules()
        if isinstance(m, InvertedBottleneck) and not m.project.weight.any()
        for q, _ in m.named_parameters()
        if not q.startswith("project.")
    }
    # A growing network (ProGAN) keeps the toRGB / fromRGB layers of its earlier stages for resume
    # and sampling; its current stage does not use them, so they must get no gradient at all.
    idle = set(getattr(module, "inactive_parameters", set)())
    for pname, p in module.named_parameters():
        if pname in idle:
            assert p.grad is None, f"{pname} is unused at this stage yet received a gradient"
            continue
        assert p.grad is not None, f"{pname} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        if pname not in gated:
            assert p.grad.abs().sum() > 0, f"{pname} received an all-zero gradient"


# -- registry coverage --------------------------------------------------------------------------
def test_every_model_has_cases() -> None:
    assert set(GENERATORS.names()) <= set(GEN_CASES) | set(IMAGE_GEN_CASES), "add the new generator to GEN_CASES"
    assert set(DISCRIMINATORS.names()) <= set(DISC_CASES), "add the new discriminator to DISC_CASES"
    assert {"mlp", "dcgan"} <= set(GENERATORS.names()) & set(DISCRIMINATORS.names())


# -- generator contract -------------------------------------------------------------------------
@pytest.mark.parametrize("name,shape,kw", G_PARAMS)
def test_generator_contract(name: str, shape: tuple[int, ...], kw: dict[str, Any], tmp_path: Any) -> None:
    G = GENERATORS.build(name, out_shape=shape, **kw)
    z = torch.randn(N, G.z_dim)
    out = G(z)
    assert out.shape == (N, *shape)
    assert torch.isfinite(out).all()
    if len(shape) == 3 and kw.get("out_activation", "auto") != "none" and name not in LINEAR_OUTPUT:
        assert out.abs().max() <= 1.0, "images must come out in [-1, 1]"

    G.zero_grad()
    (out * torch.randn_like(out)).sum().backward()
    _assert_all_grads(G)

    # Rebuild from the same options + safetensors; eval mode also checks BN running buffers travel.
    G.eval()
    save_file(G.state_dict(), tmp_path / "g.safetensors")
    G2 = GENERATORS.build(name, out_shape=shape, **kw).eval()
    G2.load_state_dict(load_file(tmp_path / "g.safetensors"))
    with torch.no_grad():
        assert torch.equal(G(z), G2(z))


@pytest.mark.parametrize(
    "name,in_shape,out_shape",
    [
        pytest.param(n, i, o, id=f"{n}-{'x'.join(map(str, i))}-{k}")
        for n, rows in IMAGE_GEN_CASES.items()
        for k, (i, o) in enumerate(rows)
    ],
)
def test_image_to_image_generator_contract(
    name: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...], tmp_path: Any
) -> None:
    G = GENERATORS.build(name, in_shape=in_shape, out_shape=out_shape, num_classes=0)
    x = _data(in_shape)
    out = G(x)
    assert out.shape == (N, *out_shape) and torch.isfinite(out).all() and out.abs().max() <= 1.0
    assert G.z_dim == 0  # the trainer draws no noise for it
    G.zero_grad()
    (out * torch.randn_like(out)).sum().backward()
    _assert_all_grads(G)
    G.eval()
    save_file(G.state_dict(), tmp_path / "g.safetensors")
    G2 = GENERATORS.build(name, in_shape=in_shape, out_shape=out_shape, num_classes=0).eval()
    G2.load_state_dict(load_file(tmp_path / "g.safetensors"))
    with torch.no_grad():
        assert torch.equal(G(x), G2(x))
    with pytest.raises(ValueError, match="input image has shape"):
        G(torch.zeros(N, in_shape[0] + 1, *in_shape[1:]))


@pytest.mark.parametrize("name,shape,kw", D_PARAMS)
def test_discriminator_contract(name: str, shape: tuple[int, ...], kw: dict[str, Any], tmp_path: Any) -> None:
    D = DISCRIMINATORS.build(name, in_shape=shape, **kw)
    x = _data(shape)
    out = D(x)
    assert isinstance(out, DOut)
    assert out.logits.shape[0] == N and (out.logits.ndim == 1 or name in PATCH_DISCRIMINATORS)
    assert out.features is not None and out.features.ndim == 2 and out.features.shape[0] == N
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.features).all()

    D.zero_grad()
    (out.logits * torch.randn_like(out.logits)).sum().backward()
    _assert_all_grads(D)

    D.eval()
    save_file(D.state_dict(), tmp_path / "d.safetensors")
    D2 = DISCRIMINATORS.build(name, in_shape=shape, **kw).eval()
    D2.load_state_dict(load_file(tmp_path / "d.safetensors"))
    with torch.no_grad():
        a, b = D(x), D2(x)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.features, b.features)


@pytest.mark.parametrize("name", sorted(GEN_CASES))
def test_options_are_validated(name: str) -> None:
    shape = GEN_CASES[name][-1]
    with pytest.raises(RegistryError, match=r"'widht'.*valid options: .*z_dim"):
        GENERATORS.build(name, out_shape=shape, widht=3)
    if name in DISC_CASES:
        with pytest.raises(RegistryError, match=r"'widht'.*valid options"):
            DISCRIMINATORS.build(name, in_shape=DISC_CASES[name][-1], widht=3)


# resnet: conditional BN + projection; mlp, dcgan: one-hot cGAN; biggan: shared embedding (tests/test_conditional.py);
# r3gan: class embedding into G, projection in D (tests/test_r3gan.py)
CONDITIONAL = {"resnet", "mlp", "biggan", "dcgan", "r3gan"}


@pytest.mark.parametrize("name", sorted(set(GEN_CASES) - CONDITIONAL))
def test_conditioning_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=rf"'{name}' is unconditional.*num_classes=10"):
        GENERATORS.build(name, out_shape=GEN_CASES[name][-1], num_classes=10)
    with pytest.raises(ValueError, match=rf"'{name}' is unconditional.*num_classes=10"):
        DISCRIMINATORS.build(name, in_shape=DISC_CASES[name][-1], num_classes=10)


def test_wrong_option_types_are_rejected() -> None:
    with pytest.raises(RegistryError, match=r"norm.*'batch', 'layer' or 'none'"):
        DISCRIMINATORS.build("dcgan", in_shape=(3, 32, 32), norm="spectral")
    with pytest.raises(RegistryError, match=r"width"):
        GENERATORS.build("dcgan", out_shape=(3, 32, 32), width="wide")
    with pytest.raises(RegistryError, match=r"activation"):
        GENERATORS.build("mlp", out_shape=(2,), activation="gelu")
    # pydantic coerces YAML-ish values, and lists stay lists (they round-trip through YAML).
    assert GENERATORS.build("mlp", out_shape=(2,), hidden=["8", 4]).hidden == [8, 4]


# -- mlp specifics --------------------------------------------------------------------------------
def test_mlp_output_activation_and_shapes() -> None:
    assert isinstance(GENERATORS.build("mlp", out_shape=(2,)).net[-1], nn.Identity)
    assert isinstance(GENERATORS.build("mlp", out_shape=(1, 16, 16)).net[-1], nn.Tanh)
    assert isinstance(GENERATORS.build("mlp", out_shape=(2,), out_activation="tanh").net[-1], nn.Tanh)
    with pytest.raises(ValueError, match=r"out_shape=\(3, 4\).*\(D,\).*\(C, H, W\)"):
        GENERATORS.build("mlp", out_shape=(3, 4))
    with pytest.raises(ValueError, match=r"hidden=\[8, 0\]"):
        DISCRIMINATORS.build("mlp", in_shape=(2,), hidden=[8, 0])
    with pytest.raises(ValueError, match=r"z has shape \(4, 3\)"):
        GENERATORS.build("mlp", out_shape=(2,))(torch.randn(4, 3))


def test_mlp_discriminator_features_feed_the_head() -> None:
    D = DISCRIMINATORS.build("mlp", in_shape=(2,), hidden=[16, 8]).eval()
    out = D(torch.randn(N, 2))
    assert out.features.shape == (N, 8)
    torch.testing.assert_close(D.head(out.features).squeeze(1), out.logits)


# -- DCGAN: the paper's guidelines --------------------------------------------------------------
IMAGE_SHAPES = [(1, 16, 16), (3, 32, 32), (3, 64, 64)]


def _leaves(m: nn.Module) -> list[nn.Module]:
    return [c for c in m.modules() if not list(c.children())]


def test_dcgan_width_table() -> None:
    assert dcgan_channels(16) == {4: 128, 8: 64}
    assert dcgan_channels(32) == {4: 256, 8: 128, 16: 64}
    assert dcgan_channels(64, width=64) == {4: 512, 8: 256, 16: 128, 32: 64}
    assert dcgan_channels(64, width=128, max_channels=1024) == {4: 1024, 8: 512, 16: 256, 32: 128}
    assert dcgan_channels(256)[4] == 512 and dcgan_channels(256)[128] == 64  # max_channels caps


@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=str)
def test_dcgan_generator_guidelines(shape: tuple[int, int, int]) -> None:
    G = GENERATORS.build("dcgan", out_shape=shape)
    leaves = _leaves(G)
    convs = [m for m in leaves if isinstance(m, nn.ConvTranspose2d)]
    ch = dcgan_channels(shape[1])
    assert [c.out_channels for c in convs] == [ch[r] for r in sorted(ch)] + [shape[0]]
    assert [c.stride for c in convs] == [(1, 1)] + [(2, 2)] * (len(convs) - 1)  # fractional-strided
    assert {type(m) for m in leaves} == {nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.Tanh}
    assert isinstance(leaves[-1], nn.Tanh) and leaves[-2] is convs[-1]  # no BN on the output layer
    for i, m in enumerate(leaves[:-2]):  # every hidden conv: bias-free -> BN -> ReLU
        if isinstance(m, nn.ConvTranspose2d):
            assert m.bias is None and isinstance(leaves[i + 1], nn.BatchNorm2d)
            assert type(leaves[i + 2]) is nn.ReLU


@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=str)
def test_dcgan_discriminator_guidelines(shape: tuple[int, int, int]) -> None:
    D = DISCRIMINATORS.build("dcgan", in_shape=shape)
    leaves = _leaves(D)
    convs = [m for m in leaves if isinstance(m, nn.Conv2d)]
    ch = dcgan_channels(shape[1])
    assert [c.out_channels for c in convs] == [ch[r] for r in sorted(ch, reverse=True)] + [1]
    assert all(c.stride == (2, 2) for c in convs[:-1]) and convs[-1].kernel_size == (4, 4)
    assert {type(m) for m in leaves} == {nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU}  # no ReLU/Linear/pool
    assert all(m.negative_slope == 0.2 for m in leaves if isinstance(m, nn.LeakyReLU))
    assert isinstance(leaves[1], nn.LeakyReLU)  # no BN on the input layer
    assert sum(isinstance(m, nn.BatchNorm2d) for m in leaves) == len(convs) - 2
    out = D(_data(shape))
    assert out.features.shape == (N, ch[4] * 16)  # the flattened 4x4 map
    torch.testing.assert_close(D.head(out.features.view(N, ch[4], 4, 4)).view(N), out.logits)


def test_dcgan_layer_norm_critic_has_no_batch_norm() -> None:
    D = DISCRIMINATORS.build("dcgan", in_shape=(3, 32, 32), norm="layer")
    leaves = _leaves(D)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in leaves)
    norms = [m for m in leaves if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 2 and all(m.num_groups == 1 for m in norms)
    # Without batch coupling, each sample's logit is independent of the rest of the batch.
    x = _data((3, 32, 32))
    torch.testing.assert_close(D(x).logits[:1], D(x[:1]).logits)


def test_dcgan_init_statistics() -> None:
    G = GENERATORS.build("dcgan", out_shape=(3, 64, 64))
    w = G.net[0].weight  # 100 x 512 x 4 x 4 = 819k values
    assert abs(w.std().item() - 0.02) < 5e-4 and abs(w.mean().item()) < 5e-4
    bn = torch.cat([m.weight for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 5e-3 and abs(bn.std().item() - 0.02) < 5e-3
    D = DISCRIMINATORS.build("dcgan", in_shape=(3, 64, 64))
    biases = [m.bias for m in [*G.modules(), *D.modules()] if hasattr(m, "bias") and m.bias is not None]
    assert biases and all(torch.all(b == 0) for b in biases)
    wide = max((m for m in D.modules() if isinstance(m, nn.Conv2d)), key=lambda m: m.weight.numel())
    assert abs(wide.weight.std().item() - 0.02) < 5e-4
    # init="default" keeps PyTorch's fan-in scaled init, which is far from 0.02 on a wide layer.
    Gd = GENERATORS.build("dcgan", out_shape=(3, 64, 64), init="default")
    assert abs(Gd.net[0].weight.std().item() - 0.02) > 5e-3


@pytest.mark.parametrize(
    "shape,message",
    [
        ((3, 48, 48), r"\(3, 48, 48\) is not supported.*\(8, 16, 32, 64, 128, 256\)"),
        ((3, 4, 4), r"\(3, 4, 4\) is not supported.*\(8, 16, 32, 64, 128, 256\)"),
        ((3, 512, 512), r"\(3, 512, 512\) is not supported"),
        ((3, 32, 16), r"\(3, 32, 16\) is not square \(H=32, W=16\); DCGAN needs H == W"),
        ((2,), r"\(2,\) is not an image.*\(C, H, W\)"),
        ((0, 32, 32), r"\(0, 32, 32\) is not supported; C must be >= 1"),
    ],
)
def test_dcgan_bad_shapes(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=rf"generator 'dcgan': out_shape={message}"):
        GENERATORS.build("dcgan", out_shape=shape)
    with pytest.raises(ValueError, match=rf"discriminator 'dcgan': in_shape={message}"):
        DISCRIMINATORS.build("dcgan", in_shape=shape)


def test_dcgan_rejects_wrong_inputs() -> None:
    G = GENERATORS.build("dcgan", out_shape=(1, 16, 16), z_dim=8)
    with pytest.raises(ValueError, match=r"z has shape \(2, 8, 1, 1\)"):
        G(torch.randn(2, 8, 1, 1))
    D = DISCRIMINATORS.build("dcgan", in_shape=(1, 16, 16))
    with pytest.raises(ValueError, match=r"x has shape \(2, 3, 16, 16\), expected \[None, 1, 16, 16\]"):
        D(torch.randn(2, 3, 16, 16))
