"""Latent-space tools against their closed forms."""

import math

import pytest
import torch

from gankit.latent import interpolation_grid, lerp, slerp, truncated_normal, vector_arithmetic


def test_slerp_endpoints_norm_and_angle():
    torch.manual_seed(0)
    z1, z2 = torch.randn(64, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
    z2 = z2 / z2.norm() * z1.norm()  # equal norms: slerp stays on the sphere
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    path = slerp(z1, z2, t)
    assert torch.allclose(path[0], z1) and torch.allclose(path[-1], z2)
    assert torch.allclose(path.norm(dim=1), z1.norm().expand(9), rtol=1e-10)
    omega = math.acos(float(z1 @ z2 / (z1.norm() * z2.norm())))
    angles = [math.acos(min(1.0, float(p @ z1 / (p.norm() * z1.norm())))) for p in path]
    assert angles == pytest.approx([float(ti) * omega for ti in t], abs=1e-6)  # constant angular speed
    # lerp through the middle shrinks the norm; slerp does not.
    assert lerp(z1, z2, torch.tensor([0.5], dtype=torch.float64))[0].norm() < 0.95 * z1.norm()


def test_slerp_of_parallel_vectors_is_lerp_and_grid_shape():
    z = torch.ones(4)
    assert torch.allclose(slerp(z, 2 * z, torch.tensor([0.5])), torch.full((1, 4), 1.5))
    pairs = torch.randn(3, 2, 5)
    grid = interpolation_grid(pairs, 6, "lerp")
    assert grid.shape == (18, 5) and torch.allclose(grid[6], pairs[1, 0]) and torch.allclose(grid[11], pairs[1, 1])
    with pytest.raises(ValueError, match="lerp, slerp"):
        interpolation_grid(pairs, 6, "cubic")


def test_vector_arithmetic_is_mean_a_minus_mean_b_plus_mean_c():
    a = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 3.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    c = torch.tensor([[5.0, 5.0]])
    assert torch.allclose(vector_arithmetic(a, b, c), torch.tensor([2 + 5, 1 - 1 + 5.0]))


def test_truncation_redraws_large_entries():
    z = truncated_normal(20000, 8, 0.5, generator=torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.5
    # A truncated standard normal on [-a, a] has variance 1 - 2 a phi(a) / (2 Phi(a) - 1).
    a = 0.5
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    big_phi = 0.5 * (1 + math.erf(a / math.sqrt(2)))
    assert z.var().item() == pytest.approx(1 - 2 * a * phi / (2 * big_phi - 1), rel=0.02)
    assert truncated_normal(5, 3, math.inf).shape == (5, 3)
