"""k-NN manifold metrics: precision / recall (Kynkäänniemi et al. 2019) and density / coverage
(Naeem et al. 2020).

Each sample set estimates its manifold as the union of balls around its points, each ball's radius
being the distance to the point's k-th nearest neighbour in the same set (itself excluded):

    precision = 1/M sum_j 1[ y_j in manifold(X) ]          (fake samples that look real)
    recall    = 1/N sum_i 1[ x_i in manifold(Y) ]          (real samples the generator covers)
    density   = 1/(kM) sum_j sum_i 1[ y_j in B(x_i, r_k(x_i)) ]
    coverage  = 1/N sum_i 1[ exists j: y_j in B(x_i, r_k(x_i)) ]

with X = real features (N), Y = generated features (M). Distances are Euclidean, computed in
float64 in row blocks so 10k x 10k never needs a full matrix.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def _blocks(a: torch.Tensor, b: torch.Tensor, chunk: int = 1024) -> Iterator[tuple[int, torch.Tensor]]:
    for i in range(0, a.shape[0], chunk):
        yield i, torch.cdist(a[i : i + chunk], b)


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"k = {k} nearest neighbours need more than k samples; got {x.shape[0]}")
    x = x.to(torch.float64)
    radii = torch.empty(x.shape[0], dtype=torch.float64)
    for i, d in _blocks(x, x):
        # The k+1 smallest include the point itself at distance 0.
        radii[i : i + d.shape[0]] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return radii


def _inside_counts(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For each point, how many balls B(centre_i, radius_i) contain it."""
    points, centres = points.to(torch.float64), centres.to(torch.float64)
    counts = torch.empty(points.shape[0], dtype=torch.long)
    for i, d in _blocks(points, centres):
        counts[i : i + d.shape[0]] = (d <= radii.unsqueeze(0)).sum(1)
    return counts


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, Eqs. 1-3), k = 3 as in the paper."""
    precision = (_inside_counts(fake, real, knn_radii(real, k)) > 0).double().mean()
    recall = (_inside_counts(real, fake, knn_radii(fake, k)) > 0).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020, Eqs. 4-5), k = 5 as in the paper."""
    radii = knn_radii(real, k)
    density = _inside_counts(fake, real, radii).double().sum() / (k * fake.shape[0])
    # coverage: a real ball counts if any fake point falls in it, i.e. its nearest fake is within r.
    nearest_fake = torch.empty(real.shape[0], dtype=torch.float64)
    for i, d in _blocks(real.to(torch.float64), fake.to(torch.float64)):
        nearest_fake[i : i + d.shape[0]] = d.min(1).values
    coverage = (nearest_fake <= radii).double().mean()
    return {"density": float(density), "coverage": float(coverage)}
