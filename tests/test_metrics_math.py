"""The metric formulas against closed forms, naive implementations and torch-fidelity's own functions."""

import itertools
import math

import numpy as np
import pytest
import torch

from gankit.metrics.classes import class_statistics, inception_score
from gankit.metrics.fid import (
    SingularCovarianceError,
    fid,
    fid_infinity,
    frechet_distance,
    gaussian_stats,
    trace_sqrt_product,
)
from gankit.metrics.kernel import gaussian_mmd, kid, mmd2_unbiased, polynomial_kernel, sliced_wasserstein
from gankit.metrics.manifold import density_coverage, knn_radii, precision_recall


def random_spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, 2 * d, generator=g, dtype=torch.float64)
    return a @ a.T / (2 * d) + 0.01 * torch.eye(d, dtype=torch.float64)


def features(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


# -- FID -----------------------------------------------------------------------------------------
def test_fid_of_identical_statistics_is_zero():
    c = random_spd(32, 0)
    mu = torch.randn(32, dtype=torch.float64)
    assert frechet_distance(mu, c, mu, c) == pytest.approx(0.0, abs=1e-9)


def test_fid_between_gaussians_equals_the_closed_form():
    # Commuting (diagonal) covariances: Tr(C1 + C2 - 2 (C1 C2)^1/2) = sum_i (sqrt a_i - sqrt b_i)^2.
    a, b = torch.linspace(0.5, 3.0, 10, dtype=torch.float64), torch.linspace(2.0, 0.1, 10, dtype=torch.float64)
    mu1, mu2 = torch.zeros(10, dtype=torch.float64), torch.arange(10, dtype=torch.float64) / 10
    expected = float((mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum())
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(expected, rel=1e-12)
    # Same covariance, shifted mean: only the mean term remains.
    c = random_spd(16, 3)
    shift = torch.full((16,), 0.5, dtype=torch.float64)
    assert frechet_distance(torch.zeros(16, dtype=torch.float64), c, shift, c) == pytest.approx(4.0, rel=1e-9)


def test_trace_sqrt_matches_scipy_sqrtm():
    from scipy.linalg import sqrtm

    for d, seed in [(8, 0), (200, 1)]:
        c1, c2 = random_spd(d, seed), random_spd(d, seed + 100)
        ref = float(np.trace(sqrtm(c1.numpy() @ c2.numpy())).real)
        assert trace_sqrt_product(c1, c2) == pytest.approx(ref, rel=1e-9, abs=1e-6)
        mu1, mu2 = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
        ref_fid = float((mu1 - mu2) @ (mu1 - mu2) + c1.trace() + c2.trace() - 2 * ref)
        assert abs(frechet_distance(mu1, c1, mu2, c2) - ref_fid) < 1e-6


def test_fid_agrees_with_torch_fidelity():
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    x, y = features(600, 64, 0), features(500, 64, 1, shift=0.3, scale=1.2)
    ours = fid(x, y)
    s1, s2 = fid_features_to_statistics(x), fid_features_to_statistics(y)
    theirs = fid_statistics_to_metric(s1, s2, verbose=False)["frechet_inception_distance"]
    assert ours == pytest.approx(theirs, rel=1e-5)
    mu, cov = gaussian_stats(x)
    assert np.allclose(mu.numpy(), s1["mu"]) and np.allclose(cov.numpy(), s1["sigma"])


def test_too_few_samples_is_a_clear_error():
    with pytest.raises(SingularCovarianceError, match="at least 65"):
        gaussian_stats(features(64, 64, 0))


def test_fid_infinity_removes_the_small_sample_bias():
    # Samples of the reference Gaussian itself: FID_N > 0 is pure bias, FID_inf must be near 0.
    d = 32
    real_stats = (torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64))
    out = fid_infinity(real_stats, features(2000, d, 7), num_points=10, min_samples=200)
    assert out["fid_n"] > 0.1
    assert abs(out["fid_inf"]) < 0.2 * out["fid_n"], out
    assert out["fid_slope"] > 0


# -- KID and MMD ---------------------------------------------------------------------------------
def naive_mmd2(x: torch.Tensor, y: torch.Tensor, k) -> float:
    m, n = len(x), len(y)
    kxx = sum(float(k(x[i : i + 1], x[j : j + 1])) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    kyy = sum(float(k(y[i : i + 1], y[j : j + 1])) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    kxy = sum(float(k(x[i : i + 1], y[j : j + 1])) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_mmd2_unbiased_matches_the_double_sum():
    x, y = features(12, 3, 0), features(9, 3, 1, shift=0.5)
    k = polynomial_kernel()
    assert mmd2_unbiased(x, y, k) == pytest.approx(naive_mmd2(x, y, k), rel=1e-10)
    out = gaussian_mmd(x, y, sigma=1.5)
    ref = naive_mmd2(x, y, lambda a, b: torch.exp(-(a - b).square().sum() / (2 * 1.5**2)))
    assert out["mmd2"] == pytest.approx(ref, rel=1e-10)
    assert out["mmd"] == pytest.approx(math.sqrt(ref))


def test_gaussian_mmd_grows_with_the_shift():
    x = features(400, 4, 0)
    values = [gaussian_mmd(x, features(400, 4, 1, shift=s))["mmd"] for s in (0.0, 0.5, 1.0)]
    assert values[0] < 0.05 < values[1] < values[2]


def test_kid_agrees_with_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric

    x, y = features(300, 32, 0), features(250, 32, 1, shift=0.2)
    ours = kid(x, y, subsets=20, subset_size=100, seed=2020)
    theirs = kid_features_to_metric(x, y, kid_subsets=20, kid_subset_size=100, rng_seed=2020, verbose=False)
    assert ours["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-5)
    assert ours["kid_std"] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-5)


def test_kid_is_unbiased_near_zero_for_equal_distributions():
    same = kid(features(500, 16, 0), features(500, 16, 1), subsets=20, subset_size=200)
    shifted = kid(features(500, 16, 0), features(500, 16, 1, shift=0.3), subsets=20, subset_size=200)
    assert abs(same["kid"]) < 3 * same["kid_std"] + 1e-3
    assert shifted["kid"] > 10 * abs(same["kid"])
    with pytest.raises(ValueError, match="subset_size"):
        kid(features(50, 4, 0), features(50, 4, 1), subset_size=100)


# -- sliced Wasserstein --------------------------------------------------------------------------
def test_sliced_wasserstein_of_a_translation_is_exact():
    x = features(500, 8, 0)
    v = torch.linspace(-1, 1, 8, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    theta = torch.randn(8, 64, generator=g, dtype=torch.float64)
    theta /= theta.norm(dim=0, keepdim=True)
    expected = float((v @ theta).square().mean().sqrt())  # each 1-D W2 is |<theta, v>|
    assert sliced_wasserstein(x, x + v, num_projections=64, seed=3) == pytest.approx(expected, rel=1e-10)
    assert sliced_wasserstein(x, x[torch.randperm(500)], seed=1) == pytest.approx(0.0, abs=1e-12)
    # Unequal sizes go through quantiles and still see the shift (|v| / sqrt(d) in expectation).
    assert sliced_wasserstein(x, features(300, 8, 2) + v) == pytest.approx(float(v.norm()) / math.sqrt(8), rel=0.35)


# -- precision / recall / density / coverage -----------------------------------------------------
def naive_manifold(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    def radius(s, i):
        return sorted(float((s[i] - s[j]).norm()) for j in range(len(s)) if j != i)[k - 1]

    rr = [radius(real, i) for i in range(len(real))]
    rf = [radius(fake, j) for j in range(len(fake))]
    inside = [[float((fake[j] - real[i]).norm()) <= rr[i] for i in range(len(real))] for j in range(len(fake))]
    precision = sum(any(row) for row in inside) / len(fake)
    recall = sum(
        any(float((real[i] - fake[j]).norm()) <= rf[j] for j in range(len(fake))) for i in range(len(real))
    ) / len(real)
    density = sum(sum(row) for row in inside) / (k * len(fake))
    coverage = sum(any(inside[j][i] for j in range(len(fake))) for i in range(len(real))) / len(real)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("shift", [0.0, 0.7, 3.0])
def test_manifold_metrics_match_the_papers_definitions(shift):
    real, fake = features(60, 5, 0), features(45, 5, 1, shift=shift, scale=0.8)
    ref3, ref5 = naive_manifold(real, fake, 3), naive_manifold(real, fake, 5)
    pr, dc = precision_recall(real, fake, k=3), density_coverage(real, fake, k=5)
    assert pr == pytest.approx({"precision": ref3["precision"], "recall": ref3["recall"]}, abs=1e-12)
    assert dc == pytest.approx({"density": ref5["density"], "coverage": ref5["coverage"]}, abs=1e-12)


def test_manifold_metrics_on_identical_and_disjoint_sets():
    x = features(200, 4, 0)
    assert precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}
    assert density_coverage(x, x)["coverage"] == 1.0
    far = precision_recall(x, x + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0}
    with pytest.raises(ValueError, match="nearest neighbours"):
        knn_radii(x[:3], k=3)


# -- Inception Score and class statistics -------------------------------------------------------
def test_inception_score_bounds():
    assert inception_score(torch.zeros(100, 10))["is"] == pytest.approx(1.0, abs=1e-12)
    confident = torch.full((100, 10), -1e4)
    confident[torch.arange(100), torch.arange(100) % 10] = 0.0
    out = inception_score(confident, splits=10)
    assert out["is"] == pytest.approx(10.0, rel=1e-9) and out["is_std"] == pytest.approx(0.0, abs=1e-9)
    # all samples confidently one class: no diversity, IS = 1
    one = torch.full((100, 10), -1e4)
    one[:, 3] = 0.0
    assert inception_score(one)["is"] == pytest.approx(1.0, abs=1e-9)


def test_inception_score_agrees_with_torch_fidelity():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = features(1000, 20, 0, scale=3.0).float()
    ours = inception_score(logits, splits=10)
    theirs = isc_features_to_metric(logits, splits=10, shuffle=False)
    assert ours["is"] == pytest.approx(theirs["inception_score_mean"], rel=1e-5)
    assert ours["is_std"] == pytest.approx(theirs["inception_score_std"], rel=1e-5)


def test_class_statistics():
    balanced = torch.eye(10).repeat(5, 1)
    s = class_statistics(balanced)
    assert s["classes_covered"] == 10 and s["class_kl"] == pytest.approx(0.0, abs=1e-12)
    collapsed = torch.zeros(50, 10)
    collapsed[:, 2] = 1
    s = class_statistics(collapsed)
    assert s["classes_covered"] == 1 and s["class_coverage"] == 0.1
    assert s["class_kl"] == pytest.approx(math.log(10))
    assert class_statistics(balanced, min_count=6)["classes_covered"] == 0


def test_class_agreement_scores_against_labels_cycled_in_turn():
    from gankit.metrics.classes import class_agreement, requested_labels

    assert requested_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    want = requested_labels(20, 4)
    logits = torch.nn.functional.one_hot(want, 4).double()
    assert class_agreement(logits)["class_agreement"] == 1.0
    logits[:5] = torch.nn.functional.one_hot((want[:5] + 1) % 4, 4).double()  # 5 of 20 wrong
    assert class_agreement(logits)["class_agreement"] == pytest.approx(0.75)
