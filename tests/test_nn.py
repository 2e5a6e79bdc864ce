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
        group = x[i % 2::2]  # ProGAN's grouping: sample i is in group i mod (N / G)
        expected = group.std(0, unbiased=False).mean()
        assert out[i, 5].item() == pytest.approx(expected.item(), rel=1e-4)
    img = torch.randn(6, 3, 4, 4)
    out = MinibatchStdDev(3)(img)
    assert out.shape == (6, 4, 4, 4)
    expected = img[0::2].std(0, unbiased=False).mean()
    assert torch.allclose(out[0, 3], torch.full((4, 4), expected.item()), rtol=1e-4)
    assert torch.allclose(out[2, 3], out[0, 3]) and not torch.allclose(out[1, 3], out[0, 3])


def test_minibatch_stddev_is_zero_for_a_collapsed_batch_and_rejects_odd_batches():
    out = MinibatchStdDev(4)(torch.ones(8, 3))
    assert out[:, 3].abs().max() < 1e-3
    with pytest.raises(ValueError, match="not divisible"):
        MinibatchStdDev(4)(torch.ones(6, 3))
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStdDev(0)


@pytest.mark.parametrize("name,shape,opts", [
    ("mlp", (2,), {"minibatch_discrimination": 8}),
    ("mlp", (2,), {"minibatch_stddev": 4}),
    ("mlp", (1, 8, 8), {"minibatch_stddev": 4, "minibatch_discrimination": 5}),
    ("dcgan", (1, 16, 16), {"minibatch_stddev": 4, "norm": "none"}),
])
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
    D_plain = DISCRIMINATORS.build(name, in_shape=shape, num_classes=0,
                                   **{k: v for k, v in opts.items() if not k.startswith("minibatch")})
    assert D_plain(x2).logits[0].item() == pytest.approx(D_plain(x).logits[0].item(), abs=1e-6)
