"""The maxout discriminator (Goodfellow et al. 2013) against its definition, h_i = max_j (x W_ij + b_ij)."""

from __future__ import annotations

import pytest
import torch

from gankit.models import DISCRIMINATORS, DOut
from gankit.models.maxout import Maxout
from gankit.registry import RegistryError


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("shape", [(2,), (8,), (1, 16, 16), (3, 8, 8)], ids=str)
def test_shapes_and_features(shape: tuple[int, ...]) -> None:
    D = DISCRIMINATORS.build("maxout", in_shape=shape, hidden=16, layers=2, pieces=3)
    out = D(torch.randn(5, *shape))
    assert isinstance(out, DOut)
    assert out.logits.shape == (5,) and out.features.shape == (5, 16)
    torch.testing.assert_close(D.head(out.features).squeeze(1), out.logits)  # features feed the head


def test_maxout_unit_is_the_max_of_its_pieces() -> None:
    layer = Maxout(3, 4, pieces=5)
    x = torch.randn(6, 3)
    W, b = layer.linear.weight.detach(), layer.linear.bias.detach()  # (4 * 5, 3): unit i owns rows 5 i .. 5 i + 4
    expected = torch.empty(6, 4)
    for n in range(6):
        for i in range(4):
            expected[n, i] = max(float(x[n] @ W[5 * i + j] + b[5 * i + j]) for j in range(5))
    torch.testing.assert_close(layer(x), expected)


def test_whole_network_by_hand() -> None:
    D = DISCRIMINATORS.build("maxout", in_shape=(1, 2, 2), hidden=7, layers=3, pieces=2).eval()
    x = torch.randn(4, 1, 2, 2)
    h = x.flatten(1)
    for block in D.blocks:
        z = h @ block.linear.weight.T + block.linear.bias
        h = z.view(4, 7, 2).max(dim=2).values
    out = D(x)
    torch.testing.assert_close(out.features, h)
    torch.testing.assert_close(out.logits, (h @ D.head.weight.T + D.head.bias).squeeze(1))


def test_paper_defaults() -> None:
    # PacGAN / ALI 2-D benchmark D: 3 maxout layers, 200 units, 5 pieces, then one linear logit.
    D = DISCRIMINATORS.build("maxout", in_shape=(2,))
    assert [(b.linear.in_features, b.linear.out_features, b.pieces) for b in D.blocks] == [
        (2, 1000, 5),
        (200, 1000, 5),
        (200, 1000, 5),
    ]
    n = sum(p.numel() for p in D.parameters())
    assert n == (2 * 1000 + 1000) + 2 * (200 * 1000 + 1000) + (200 + 1)


def test_minibatch_discrimination_widens_the_head_and_couples_the_batch() -> None:
    plain = DISCRIMINATORS.build("maxout", in_shape=(2,), hidden=8, layers=2)
    mbd = DISCRIMINATORS.build("maxout", in_shape=(2,), hidden=8, layers=2, minibatch_discrimination=5)
    assert plain.head.in_features == 8 and mbd.head.in_features == 8 + 5
    x = torch.randn(6, 2)
    y = x.clone()
    y[1:] += 3.0  # change every sample but the first
    assert torch.equal(plain(x).logits[0], plain(y).logits[0])  # without MBD each sample stands alone
    assert not torch.allclose(mbd(x).logits[0], mbd(y).logits[0])  # with MBD the others matter
    assert torch.equal(mbd(x).features[0], mbd(y).features[0])  # features stay per-sample (before MBD)


def test_dropout_only_in_training() -> None:
    D = DISCRIMINATORS.build("maxout", in_shape=(2,), hidden=32, layers=2, dropout=0.5)
    x = torch.randn(16, 2)
    D.train()
    assert not torch.equal(D(x).logits, D(x).logits)
    D.eval()
    assert torch.equal(D(x).logits, D(x).logits)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match=r"'maxout' is unconditional.*num_classes=10"):
        DISCRIMINATORS.build("maxout", in_shape=(2,), num_classes=10)
    with pytest.raises(ValueError, match=r"pieces=0"):
        DISCRIMINATORS.build("maxout", in_shape=(2,), pieces=0)
    with pytest.raises(ValueError, match=r"dropout=1.0"):
        DISCRIMINATORS.build("maxout", in_shape=(2,), dropout=1.0)
    with pytest.raises(ValueError, match=r"minibatch_discrimination=-1"):
        DISCRIMINATORS.build("maxout", in_shape=(2,), minibatch_discrimination=-1)
    with pytest.raises(RegistryError, match=r"'hiden'.*valid options"):
        DISCRIMINATORS.build("maxout", in_shape=(2,), hiden=3)
    with pytest.raises(ValueError, match=r"x has shape"):
        DISCRIMINATORS.build("maxout", in_shape=(2,))(torch.randn(4, 3))


@pytest.mark.parametrize(
    "kind,name,kwargs",
    [
        ("D", "maxout", {"in_shape": (2,)}),
        ("G", "mlp", {"out_shape": (2,), "z_dim": 2, "batch_norm": True}),
        ("E", "mlp-encoder", {"in_shape": (2,), "z_dim": 2}),
    ],
)
def test_paper_initialisation_draws_linear_weights_from_n_0_std(kind, name, kwargs) -> None:
    # PacGAN's code draws every weight from N(0, 0.02) with zero biases; PyTorch's default draws the
    # first layer (fan-in 2) from U(-1/sqrt(2), 1/sqrt(2)), std 0.41, and non-zero biases.
    from gankit.models import ENCODERS, GENERATORS

    registry = {"D": DISCRIMINATORS, "G": GENERATORS, "E": ENCODERS}[kind]
    torch.manual_seed(0)
    net = registry.build(name, init_std=0.02, **kwargs)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) >= 3
    weights = torch.cat([m.weight.flatten() for m in linears])
    assert weights.std().item() == pytest.approx(0.02, rel=0.05) and abs(weights.mean().item()) < 1e-3
    assert all(m.bias is None or not m.bias.any() for m in linears)
    default = registry.build(name, **kwargs)
    first = next(m for m in default.modules() if isinstance(m, torch.nn.Linear))
    assert first.weight.std().item() > 0.2


def test_negative_init_std_is_refused() -> None:
    with pytest.raises(ValueError, match=r"init_std=-0.1 must be >= 0"):
        DISCRIMINATORS.build("maxout", in_shape=(2,), init_std=-0.1)
