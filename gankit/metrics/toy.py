"""Mode-collapse metrics for the 2-D Gaussian mixtures (``ring``, ``grid``).

As defined by VEEGAN (Srivastava et al. 2017, Sec. 5.1) and reused by PacGAN (Lin et al. 2018,
Sec. 5.1, Table 1):

* a generated sample is **high quality** (HQ) if it lies within three standard deviations of the
  nearest mixture centre: ``min_k ||x - mu_k|| <= hq_sigmas * std``;
* the **number of modes captured** is the number of mixture components whose centre is nearest to
  at least one HQ sample. VEEGAN's words: "the number of mixture components whose mean is nearest
  to at least one high quality sample" (project page akashgit/VEEGAN, mirroring the paper), and
  PacGAN's reference code (fjxmlzn/PacGAN, ``pacgan/extensions.py``, ``MetricLogger``) counts the
  modes with a nonzero HQ count. So ``min_count`` defaults to 1; other papers use stricter
  thresholds (e.g. 20 samples per mode for Stacked MNIST), which ``min_count`` allows;
* **kl** is the KL divergence of the histogram of HQ samples over modes from the uniform one,
  ``KL(p || u) = sum_k p_k log(K p_k)`` (0 for perfect balance, ``log K`` when all HQ samples sit
  on one mode); PacGAN reports it as "reverse KL".

Edge case: when no sample is high quality the histogram is undefined; we report ``modes = 0``,
``hq_fraction = 0`` and ``kl = log K``, the largest value the KL can take, so the number stays
finite (JSON-safe) and "worse" than any run that hits at least one mode.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from gankit.metrics import METRICS


def mixture_metrics(
    samples: torch.Tensor,
    centers: torch.Tensor,
    std: float,
    hq_sigmas: float = 3.0,
    min_count: int = 1,
) -> dict[str, float]:
    """``modes``, ``hq_fraction`` and ``kl`` of ``samples`` (N, 2) against ``centers`` (K, 2)."""
    if samples.ndim != 2 or centers.ndim != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(f"samples {tuple(samples.shape)} and centers {tuple(centers.shape)} must be (N, D) and (K, D)")
    if samples.shape[0] == 0:
        raise ValueError("mixture_metrics needs at least one sample")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    x = samples.detach().to("cpu", torch.float64)
    mu = centers.detach().to("cpu", torch.float64)
    k = mu.shape[0]
    dist, nearest = torch.cdist(x, mu).min(dim=1)
    hq = dist <= hq_sigmas * std
    counts = torch.bincount(nearest[hq], minlength=k)
    total = int(counts.sum())
    if total == 0:
        return {"modes": 0, "hq_fraction": 0.0, "kl": math.log(k)}
    p = counts[counts > 0].to(torch.float64) / total
    return {
        "modes": int((counts >= min_count).sum()),
        "hq_fraction": total / x.shape[0],
        "kl": float((p * torch.log(k * p)).sum()),
    }


@METRICS.register("toy-mixture")
class ToyMixtureMetric:
    """Modes captured, high-quality fraction and KL to uniform on a ring/grid (VEEGAN; PacGAN).

    ``num_samples`` is how many generated points the caller should pass (2500 in VEEGAN and
    PacGAN); ``__call__`` scores all the points it is given.
    """

    scores = ("modes", "hq_fraction", "kl")

    def __init__(self, num_samples: int = 2500, hq_sigmas: float = 3.0, min_count: int = 1) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.num_samples, self.hq_sigmas, self.min_count = num_samples, hq_sigmas, min_count

    def source_problem(self, source: Any) -> str | None:
        """Why ``source`` cannot be scored (the evaluator asks at start-up), or None."""
        centers, std = getattr(source, "centers", None), getattr(source, "std", None)
        if not isinstance(centers, torch.Tensor) or std is None:
            name = getattr(source, "name", type(source).__name__)
            return (
                f"it needs a toy mixture dataset with known centres (ring, grid), and the dataset is {name!r}; "
                f"image data is scored by the image metrics (fid, kid, ...)"
            )
        return None

    def __call__(self, fake: torch.Tensor, source: Any) -> dict[str, float]:
        problem = self.source_problem(source)
        if problem:
            raise TypeError(f"metric 'toy-mixture': {problem}")
        return mixture_metrics(fake, source.centers, float(source.std), self.hq_sigmas, self.min_count)
