"""Mode-collapse metrics on the 2-D mixtures, against hand-computed answers."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.data import DATASETS, InMemoryImages
from gankit.metrics import METRICS, mixture_metrics
from gankit.registry import RegistryError

GRID = DATASETS.build("grid")
C, STD = GRID.centers, GRID.std


def kl_to_uniform(counts: list[int], k: int) -> float:
    n = sum(counts)
    return sum(c / n * math.log(k * c / n) for c in counts if c)


def test_samples_on_20_of_25_centres():
    x = C[:20].repeat(7, 1)
    m = mixture_metrics(x, C, STD)
    assert m["modes"] == 20 and m["hq_fraction"] == 1.0
    assert m["kl"] == pytest.approx(math.log(25 / 20), abs=1e-12)


def test_unbalanced_histogram_kl():
    counts = [50, 30, 15, 5]
    x = torch.cat([C[i].repeat(c, 1) for i, c in enumerate(counts)])
    m = mixture_metrics(x + 0.5 * STD, C, STD)  # shifted, still well within 3 std
    assert m["modes"] == 4 and m["hq_fraction"] == 1.0
    assert m["kl"] == pytest.approx(kl_to_uniform(counts, 25), abs=1e-12)


def test_samples_far_from_every_centre():
    x = torch.tensor([[100.0, 100.0], [-3.0, -3.0], [1.0, 1.0]])  # (1, 1) is 1.41 = 28 std from (0, 0)
    m = mixture_metrics(x, C, STD)
    assert m == {"modes": 0, "hq_fraction": 0.0, "kl": pytest.approx(math.log(25))}


def test_mixture_of_on_and_off_mode_samples():
    on = torch.cat([C[0].repeat(10, 1), C[7].repeat(10, 1), C[24].repeat(10, 1)])
    off = torch.tensor([[-3.0, -4.0]]).repeat(70, 1)  # halfway between two centres: 20 std away
    m = mixture_metrics(torch.cat([off[:35], on, off[35:]]), C, STD)
    assert m["modes"] == 3 and m["hq_fraction"] == pytest.approx(0.3, abs=1e-12)
    assert m["kl"] == pytest.approx(math.log(25 / 3), abs=1e-12)


def test_threshold_and_min_count():
    inside = C[3] + torch.tensor([2.9 * STD, 0.0])
    outside = C[4] + torch.tensor([0.0, -3.1 * STD])
    m = mixture_metrics(torch.stack([inside, outside]), C, STD)
    assert m["modes"] == 1 and m["hq_fraction"] == 0.5
    assert mixture_metrics(torch.stack([inside, outside]), C, STD, hq_sigmas=4.0)["modes"] == 2
    x = torch.cat([C[0].repeat(25, 1), C[1].repeat(20, 1), C[2].repeat(19, 1), C[3].repeat(1, 1)])
    assert mixture_metrics(x, C, STD)["modes"] == 4
    assert mixture_metrics(x, C, STD, min_count=20)["modes"] == 2
    with pytest.raises(ValueError, match="min_count"):
        mixture_metrics(x, C, STD, min_count=0)


@pytest.mark.parametrize("name,k", [("grid", 25), ("ring", 8)])
def test_toy_mixture_metric_on_real_data(name, k):
    metric = METRICS.build("toy-mixture")
    assert metric.num_samples == 2500
    source = DATASETS.build(name)
    real, _ = source.sample_real(metric.num_samples, seed=0)
    m = metric(real, source)
    # Within 3 std of a 2-D isotropic Gaussian: P = 1 - exp(-9/2) = 0.9889.
    assert m["modes"] == k and m["hq_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert 0 <= m["kl"] < 0.02
    collapsed = source.centers[:1].repeat(100, 1)
    assert metric(collapsed, source)["modes"] == 1 and metric(collapsed, source)["kl"] == pytest.approx(math.log(k))


def test_toy_mixture_metric_rejects_image_data():
    images = InMemoryImages("mnist", torch.zeros(4, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="toy-mixture.*'mnist'"):
        METRICS.build("toy-mixture")(torch.zeros(4, 2), images)
    with pytest.raises(RegistryError, match="num_samples"):
        METRICS.build("toy-mixture", num_samples="lots")
    assert METRICS.build("toy-mixture", num_samples=100).num_samples == 100
