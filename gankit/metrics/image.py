"""The feature-space metrics as recipe/CLI entries in ``METRICS``.

Each entry names its feature extractor (``features``: ``inception`` for the papers' numbers,
``classifier`` for offline domain features, ``pixels`` / ``random-projection`` for toy checks), how
many generated (``num_samples``) and real (``num_real``, default the same) samples it uses, and
scores extracted features with a pure function from fid.py, kernel.py, manifold.py or classes.py.
``gankit.metrics.evaluate.Evaluator`` extracts features once per extractor and caches the real ones.
"""

from __future__ import annotations

from typing import Any

import torch

from gankit.metrics import METRICS
from gankit.metrics.classes import class_agreement, class_statistics, inception_score
from gankit.metrics.fid import fid, fid_infinity, gaussian_stats
from gankit.metrics.kernel import gaussian_mmd, kid, sliced_wasserstein
from gankit.metrics.manifold import density_coverage, precision_recall

Feats = dict[str, torch.Tensor]


class FeatureMetric:
    """A score on extracted features of generated images (and of real ones, when ``needs_real``)."""

    uses_features = True
    scores: tuple[str, ...] = ()  # the keys score() returns
    needs_real = True
    needs_logits = False

    def __init__(self, features: str, num_samples: int, num_real: int | None,
                 feature_options: dict[str, Any] | None) -> None:
        if num_samples < 2 or (num_real is not None and num_real < 2):
            raise ValueError(f"num_samples and num_real must be >= 2, got {num_samples} and {num_real}")
        self.features, self.num_samples = features, num_samples
        self.num_real = num_real if num_real is not None else num_samples
        self.feature_options = dict(feature_options or {})

    def feature_spec(self) -> tuple[str, tuple[tuple[str, Any], ...]]:
        return self.features, tuple(sorted(self.feature_options.items()))

    def options(self) -> dict[str, Any]:
        """Metric settings recorded in the protocol beside the number."""
        return {}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        raise NotImplementedError

    @staticmethod
    def _logits(f: Feats, metric: str) -> torch.Tensor:
        if "logits" not in f:
            raise ValueError(f"metric {metric!r} needs class probabilities; use features=classifier or inception")
        return f["logits"]


@METRICS.register("fid")
class FID(FeatureMetric):
    """Fréchet Inception Distance (Heusel et al. 2017, Eq. 6): ||m - m_w||^2 + Tr(C + C_w - 2(C C_w)^1/2)."""

    scores = ("fid",)

    def __init__(self, features: str = "inception", num_samples: int = 10000, num_real: int | None = None,
                 feature_options: dict[str, Any] | None = None) -> None:
        super().__init__(features, num_samples, num_real, feature_options)

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return {"fid": fid(real["features"], fake["features"])}


@METRICS.register("fid-infinity")
class FIDInfinity(FeatureMetric):
    """Bias-free FID extrapolated to infinitely many samples (Chong & Forsyth 2020): FID_N = FID_inf + k/N."""

    scores = ("fid_inf", "fid_slope", "fid_n")

    def __init__(self, features: str = "inception", num_samples: int = 10000, num_real: int | None = None,
                 feature_options: dict[str, Any] | None = None, num_points: int = 15,
                 min_samples: int | None = None) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.num_points, self.min_samples = num_points, min_samples

    def options(self) -> dict[str, Any]:
        return {"num_points": self.num_points, "min_samples": self.min_samples}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return fid_infinity(gaussian_stats(real["features"]), fake["features"], self.num_points, self.min_samples)


@METRICS.register("kid")
class KID(FeatureMetric):
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2, cubic kernel, over random subsets."""

    scores = ("kid", "kid_std")

    def __init__(self, features: str = "inception", num_samples: int = 10000, num_real: int | None = None,
                 feature_options: dict[str, Any] | None = None, subsets: int = 100, subset_size: int = 1000,
                 seed: int = 2020) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed

    def options(self) -> dict[str, Any]:
        size = min(self.subset_size, self.num_samples, self.num_real)
        return {"subsets": self.subsets, "subset_size": size, "kid_seed": self.seed}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        # Fewer samples than the standard subset of 1000: use them all, and say so in the protocol.
        size = min(self.subset_size, len(fake["features"]), len(real["features"]))
        return kid(fake["features"], real["features"], self.subsets, size, seed=self.seed)


@METRICS.register("inception-score")
class InceptionScore(FeatureMetric):
    """Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) over splits; classifier score with a domain classifier."""

    scores = ("is", "is_std")

    needs_real = False
    needs_logits = True

    def __init__(self, features: str = "inception", num_samples: int = 10000, num_real: int | None = None,
                 feature_options: dict[str, Any] | None = None, splits: int = 10) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.splits = splits

    def options(self) -> dict[str, Any]:
        return {"splits": self.splits}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return inception_score(self._logits(fake, "inception-score"), self.splits)


@METRICS.register("precision-recall")
class PrecisionRecall(FeatureMetric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls, k = 3."""

    scores = ("precision", "recall")

    def __init__(self, features: str = "inception", num_samples: int = 10000, num_real: int | None = None,
                 feature_options: dict[str, Any] | None = None, k: int = 3) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.k = k

    def options(self) -> dict[str, Any]:
        return {"k": self.k}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return precision_recall(real["features"], fake["features"], self.k)


@METRICS.register("density-coverage")
class DensityCoverage(FeatureMetric):
    """Density and coverage (Naeem et al. 2020) with k-NN balls around real samples, k = 5."""

    scores = ("density", "coverage")

    def __init__(self, features: str = "inception", num_samples: int = 10000, num_real: int | None = None,
                 feature_options: dict[str, Any] | None = None, k: int = 5) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.k = k

    def options(self) -> dict[str, Any]:
        return {"k": self.k}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return density_coverage(real["features"], fake["features"], self.k)


@METRICS.register("mmd")
class MMD(FeatureMetric):
    """Kernel MMD with a Gaussian kernel (lecture notes; Gretton et al. 2012), sigma by the median heuristic."""

    scores = ("mmd", "mmd2", "mmd_sigma")

    def __init__(self, features: str = "inception", num_samples: int = 2000, num_real: int | None = None,
                 feature_options: dict[str, Any] | None = None, sigma: float | None = None) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.sigma = sigma

    def options(self) -> dict[str, Any]:
        return {"sigma": self.sigma if self.sigma is not None else "median-heuristic"}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return gaussian_mmd(real["features"], fake["features"], self.sigma)


@METRICS.register("sliced-wasserstein")
class SlicedWasserstein(FeatureMetric):
    """Sliced 2-Wasserstein distance over random 1-D projections (Rabin et al. 2011; Deshpande et al. 2018)."""

    scores = ("swd",)

    def __init__(self, features: str = "inception", num_samples: int = 10000, num_real: int | None = None,
                 feature_options: dict[str, Any] | None = None, num_projections: int = 128, seed: int = 0) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.num_projections, self.seed = num_projections, seed

    def options(self) -> dict[str, Any]:
        return {"num_projections": self.num_projections, "swd_seed": self.seed}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return {"swd": sliced_wasserstein(real["features"], fake["features"], self.num_projections, self.seed)}


@METRICS.register("class-coverage")
class ClassCoverage(FeatureMetric):
    """Classes covered by generated samples and KL(class histogram || uniform), by a classifier's argmax."""

    scores = ("classes_covered", "class_coverage", "class_kl")

    needs_real = False
    needs_logits = True

    def __init__(self, features: str = "classifier", num_samples: int = 10000, num_real: int | None = None,
                 feature_options: dict[str, Any] | None = None, min_count: int = 1) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.min_count = min_count

    def options(self) -> dict[str, Any]:
        return {"min_count": self.min_count}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return class_statistics(self._logits(fake, "class-coverage"), self.min_count)


@METRICS.register("class-agreement")
class ClassAgreement(FeatureMetric):
    """Accuracy of a class-conditional generator: the fraction of samples that a classifier assigns to
    the class they were generated for (sample i is asked for class i mod K, ``requested_labels``).

    Only meaningful for conditional runs (families conditional / acgan); an unconditional generator
    scores about 1/K.
    """

    scores = ("class_agreement",)

    needs_real = False
    needs_logits = True

    def __init__(self, features: str = "classifier", num_samples: int = 10000, num_real: int | None = None,
                 feature_options: dict[str, Any] | None = None) -> None:
        super().__init__(features, num_samples, num_real, feature_options)

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return class_agreement(self._logits(fake, "class-agreement"))


# Short names for the command line (`gankit eval --metrics fid,kid,is,pr,dc`).
ALIASES = {"is": "inception-score", "pr": "precision-recall", "dc": "density-coverage",
           "swd": "sliced-wasserstein", "fid-inf": "fid-infinity", "classes": "class-coverage",
           "agree": "class-agreement"}

# Scores where larger is better (for keeping the best checkpoint); everything else is minimised.
HIGHER_IS_BETTER = {"is", "precision", "recall", "density", "coverage", "classes_covered", "class_coverage",
                    "class_agreement",
                    "modes", "hq_fraction"}
