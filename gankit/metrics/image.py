"""The feature-space metrics as recipe/CLI entries in ``METRICS``.

Each entry names its feature extractor (``features``: ``inception`` for the papers' numbers,
``classifier`` for offline domain features, ``pixels`` / ``random-projection`` for toy checks), how
many generated (``num_samples``) and real (``num_real``, default the same) samples it uses, and
scores extracted features with a pure function from fid.py, kernel.py, manifold.py or classes.py.
``gankit.metrics.evaluate.Evaluator`` extracts features once per extractor and caches the real ones.

Minimum sample counts. Each estimator is defined only from some number of samples on, and below it
a metric either crashes deep in linear algebra or, worse, returns a number that means nothing.
``FeatureMetric.minimum(dim)`` states it per metric (d = the extractor's feature width), and the
evaluator refuses a metric below it before extracting anything (gankit/metrics/checks.py):

================  ==================  ==============  ===============================================
metric            generated (fake)    real            why
================  ==================  ==============  ===============================================
fid               d + 1               d + 1           N samples give a covariance of rank <= N - 1:
                                                      singular for N <= d (Heusel et al. 2017, Eq. 6)
fid-infinity      d + 2 (and more     d + 1           the FID_N line is fitted from N = min_samples
                  than min_samples)                   > d up to the fake count (Chong & Forsyth 2020)
kid, mmd          2                   2               unbiased MMD^2 averages over pairs i != j
sliced-wass.      2                   2               (the common floor)
inception-score   splits (10)         -               every split needs a sample (Salimans et al.)
precision-recall  k + 1 (4)           k + 1 (4)       k-NN radii are taken in both sets
density-coverage  2                   k + 1 (6)       k-NN radii are taken around real samples only
class-coverage,   2                   -               class logits: the ``classifier`` extractor,
class-agreement                                       trained on a labelled reference set with at
                                                      least MIN_IMAGES_PER_CLASS images in every
                                                      class (gankit/metrics/classifier.py), or
                                                      ``inception`` (class-coverage only)
================  ==================  ==============  ===============================================

Counts are what is actually scored: a reference set smaller than ``num_real`` is used whole, never
repeated, and the protocol records the true ``num_real`` / ``num_fake``.
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
    # Extractors whose logits fit this metric; None: any extractor with logits (classifier, inception).
    logit_extractors: tuple[str, ...] | None = None
    # Why ``minimum`` is what it is, in the words an error message quotes.
    minimum_reason = "the estimator needs two samples per set"

    def __init__(
        self, features: str, num_samples: int, num_real: int | None, feature_options: dict[str, Any] | None
    ) -> None:
        if num_samples < 2 or (num_real is not None and num_real < 2):
            raise ValueError(f"num_samples and num_real must be >= 2, got {num_samples} and {num_real}")
        self.features, self.num_samples = features, num_samples
        self.num_real = num_real if num_real is not None else num_samples
        self.feature_options = dict(feature_options or {})

    def feature_spec(self) -> tuple[str, tuple[tuple[str, Any], ...]]:
        return self.features, tuple(sorted(self.feature_options.items()))

    def options(self, num_fake: int | None = None, num_real: int | None = None) -> dict[str, Any]:
        """Metric settings recorded in the protocol beside the number; ``num_fake`` / ``num_real``: the
        counts actually scored, when known (settings derived from them, e.g. KID's subset size)."""
        return {}

    def minimum(self, dim: int | None) -> tuple[int, int]:
        """(fewest generated, fewest real) samples this estimator is defined for, given the feature
        width ``dim`` (None: not known before extraction). The floor of 2 is the one __init__ checks."""
        return 2, (2 if self.needs_real else 0)

    def option_problem(self, dim: int | None) -> str | None:
        """Why this metric's own options cannot work at feature width ``dim`` (None: they can)."""
        return None

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        raise NotImplementedError

    @staticmethod
    def _logits(f: Feats, metric: str) -> torch.Tensor:
        if "logits" not in f:
            raise ValueError(f"metric {metric!r} needs class probabilities; use features=classifier or inception")
        return f["logits"]


@METRICS.register("fid")
class FID(FeatureMetric):
    """Fréchet Inception Distance (Heusel et al. 2017, Eq. 6): ||m - m_w||^2 + Tr(C + C_w - 2(C C_w)^1/2).

    Minimum: more samples than feature dimensions on each side (d + 1; 2049 for Inception, 129 for
    the classifier), since N samples give a covariance of rank at most N - 1, singular for N <= d.
    Well above that is needed for a low bias: 10000 is the standard (Heusel et al. 2017)."""

    scores = ("fid",)
    minimum_reason = "N samples give a covariance of rank at most N - 1, singular when N <= d"

    def __init__(
        self,
        features: str = "inception",
        num_samples: int = 10000,
        num_real: int | None = None,
        feature_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(features, num_samples, num_real, feature_options)

    def minimum(self, dim: int | None) -> tuple[int, int]:
        return (dim + 1, dim + 1) if dim else super().minimum(dim)

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        assert real is not None  # needs_real: the evaluator passes the real features
        return {"fid": fid(real["features"], fake["features"])}


@METRICS.register("fid-infinity")
class FIDInfinity(FeatureMetric):
    """Bias-free FID extrapolated to infinitely many samples (Chong & Forsyth 2020): FID_N = FID_inf + k/N.

    Minimum: real d + 1 (as FID); generated d + 2 and more than ``min_samples``, since the line is
    fitted to FID_N at N from ``min_samples`` (> d, default max(d + 1, N / 5)) up to the fake count."""

    scores = ("fid_inf", "fid_slope", "fid_n")
    minimum_reason = "FID_N is fitted from N = min_samples > d up to the generated count"

    def __init__(
        self,
        features: str = "inception",
        num_samples: int = 10000,
        num_real: int | None = None,
        feature_options: dict[str, Any] | None = None,
        num_points: int = 15,
        min_samples: int | None = None,
    ) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.num_points, self.min_samples = num_points, min_samples

    def options(self, num_fake: int | None = None, num_real: int | None = None) -> dict[str, Any]:
        return {"num_points": self.num_points, "min_samples": self.min_samples}

    def minimum(self, dim: int | None) -> tuple[int, int]:
        fake = max((dim or 0) + 2, (self.min_samples or 0) + 1, 3)
        return fake, (dim + 1 if dim else 2)

    def option_problem(self, dim: int | None) -> str | None:
        if self.num_points < 2:
            return f"num_points = {self.num_points}: a line needs at least 2 points"
        if dim and self.min_samples is not None and self.min_samples <= dim:
            return (
                f"min_samples = {self.min_samples} is not above the feature width {dim}, so its smallest "
                f"subsets have a singular covariance; use min_samples >= {dim + 1} or leave it out"
            )
        return None

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        assert real is not None  # needs_real: the evaluator passes the real features
        return fid_infinity(gaussian_stats(real["features"]), fake["features"], self.num_points, self.min_samples)


@METRICS.register("kid")
class KID(FeatureMetric):
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2, cubic kernel, over random subsets.

    Minimum: 2 samples per side (the unbiased estimator averages over pairs i != j); subsets are
    min(subset_size, N_fake, N_real), recorded in the protocol."""

    scores = ("kid", "kid_std")
    minimum_reason = "the unbiased MMD^2 averages over pairs i != j"

    def __init__(
        self,
        features: str = "inception",
        num_samples: int = 10000,
        num_real: int | None = None,
        feature_options: dict[str, Any] | None = None,
        subsets: int = 100,
        subset_size: int = 1000,
        seed: int = 2020,
    ) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed

    def options(self, num_fake: int | None = None, num_real: int | None = None) -> dict[str, Any]:
        size = min(self.subset_size, num_fake or self.num_samples, num_real or self.num_real)
        return {"subsets": self.subsets, "subset_size": size, "kid_seed": self.seed}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        assert real is not None  # needs_real: the evaluator passes the real features
        # Fewer samples than the standard subset of 1000: use them all, and say so in the protocol.
        size = min(self.subset_size, len(fake["features"]), len(real["features"]))
        return kid(fake["features"], real["features"], self.subsets, size, seed=self.seed)


@METRICS.register("inception-score")
class InceptionScore(FeatureMetric):
    """Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) over splits; classifier score with a
    domain classifier.

    Minimum: ``splits`` generated samples (each split needs one; 5000 per split is the paper's).
    Needs class logits: features inception, or classifier (a labelled reference set)."""

    scores = ("is", "is_std")
    minimum_reason = "each of the splits needs a sample"

    needs_real = False
    needs_logits = True

    def __init__(
        self,
        features: str = "inception",
        num_samples: int = 10000,
        num_real: int | None = None,
        feature_options: dict[str, Any] | None = None,
        splits: int = 10,
    ) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.splits = splits

    def options(self, num_fake: int | None = None, num_real: int | None = None) -> dict[str, Any]:
        return {"splits": self.splits}

    def minimum(self, dim: int | None) -> tuple[int, int]:
        return max(2, self.splits), 0

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return inception_score(self._logits(fake, "inception-score"), self.splits)


@METRICS.register("precision-recall")
class PrecisionRecall(FeatureMetric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls, k = 3.

    Minimum: k + 1 samples on each side, since each set's manifold is the union of balls reaching
    every sample's k-th nearest *other* sample of the same set (Eqs. 1-3)."""

    scores = ("precision", "recall")
    minimum_reason = "each set's k-NN balls reach the k-th nearest other sample of that set"

    def __init__(
        self,
        features: str = "inception",
        num_samples: int = 10000,
        num_real: int | None = None,
        feature_options: dict[str, Any] | None = None,
        k: int = 3,
    ) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.k = k

    def options(self, num_fake: int | None = None, num_real: int | None = None) -> dict[str, Any]:
        return {"k": self.k}

    def minimum(self, dim: int | None) -> tuple[int, int]:
        return self.k + 1, self.k + 1

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        assert real is not None  # needs_real: the evaluator passes the real features
        return precision_recall(real["features"], fake["features"], self.k)


@METRICS.register("density-coverage")
class DensityCoverage(FeatureMetric):
    """Density and coverage (Naeem et al. 2020) with k-NN balls around real samples, k = 5.

    Minimum: k + 1 real samples (the balls reach each real sample's k-th nearest other real one,
    Eqs. 4-5); generated samples are only counted inside balls, so 2 suffice for the formula."""

    scores = ("density", "coverage")
    minimum_reason = "the k-NN balls reach each real sample's k-th nearest other real sample"

    def __init__(
        self,
        features: str = "inception",
        num_samples: int = 10000,
        num_real: int | None = None,
        feature_options: dict[str, Any] | None = None,
        k: int = 5,
    ) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.k = k

    def options(self, num_fake: int | None = None, num_real: int | None = None) -> dict[str, Any]:
        return {"k": self.k}

    def minimum(self, dim: int | None) -> tuple[int, int]:
        return 2, self.k + 1

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        assert real is not None  # needs_real: the evaluator passes the real features
        return density_coverage(real["features"], fake["features"], self.k)


@METRICS.register("mmd")
class MMD(FeatureMetric):
    """Kernel MMD with a Gaussian kernel (lecture notes; Gretton et al. 2012), sigma by the median heuristic.

    Minimum: 2 samples per side (the unbiased MMD^2 of Gretton et al. 2012, Eq. 3, excludes i = j)."""

    scores = ("mmd", "mmd2", "mmd_sigma")
    minimum_reason = "the unbiased MMD^2 averages over pairs i != j"

    def __init__(
        self,
        features: str = "inception",
        num_samples: int = 2000,
        num_real: int | None = None,
        feature_options: dict[str, Any] | None = None,
        sigma: float | None = None,
    ) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.sigma = sigma

    def options(self, num_fake: int | None = None, num_real: int | None = None) -> dict[str, Any]:
        return {"sigma": self.sigma if self.sigma is not None else "median-heuristic"}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        assert real is not None  # needs_real: the evaluator passes the real features
        return gaussian_mmd(real["features"], fake["features"], self.sigma)


@METRICS.register("sliced-wasserstein")
class SlicedWasserstein(FeatureMetric):
    """Sliced 2-Wasserstein distance over random 1-D projections (Rabin et al. 2011; Deshpande et al. 2018).

    Minimum: 2 samples per side (the common floor; the quantile matching itself needs one)."""

    scores = ("swd",)

    def __init__(
        self,
        features: str = "inception",
        num_samples: int = 10000,
        num_real: int | None = None,
        feature_options: dict[str, Any] | None = None,
        num_projections: int = 128,
        seed: int = 0,
    ) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.num_projections, self.seed = num_projections, seed

    def options(self, num_fake: int | None = None, num_real: int | None = None) -> dict[str, Any]:
        return {"num_projections": self.num_projections, "swd_seed": self.seed}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        assert real is not None  # needs_real: the evaluator passes the real features
        return {"swd": sliced_wasserstein(real["features"], fake["features"], self.num_projections, self.seed)}


@METRICS.register("class-coverage")
class ClassCoverage(FeatureMetric):
    """Classes covered by generated samples and KL(class histogram || uniform), by a classifier's argmax.

    Needs class logits: features classifier (a labelled reference set with at least
    ``classifier.MIN_IMAGES_PER_CLASS`` images in every class) or inception (ImageNet's 1008 classes).
    Minimum: 2 generated samples; to see every one of K classes, well over K."""

    scores = ("classes_covered", "class_coverage", "class_kl")

    needs_real = False
    needs_logits = True

    def __init__(
        self,
        features: str = "classifier",
        num_samples: int = 10000,
        num_real: int | None = None,
        feature_options: dict[str, Any] | None = None,
        min_count: int = 1,
    ) -> None:
        super().__init__(features, num_samples, num_real, feature_options)
        self.min_count = min_count

    def options(self, num_fake: int | None = None, num_real: int | None = None) -> dict[str, Any]:
        return {"min_count": self.min_count}

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return class_statistics(self._logits(fake, "class-coverage"), self.min_count)


@METRICS.register("class-agreement")
class ClassAgreement(FeatureMetric):
    """Accuracy of a class-conditional generator: the fraction of samples that a classifier assigns to
    the class they were generated for (sample i is asked for class i mod K, ``requested_labels``).

    Only meaningful for conditional runs (families conditional / acgan); an unconditional generator
    scores about 1/K. Needs features classifier, trained on the labelled reference set whose classes
    the generator was asked for (at least ``classifier.MIN_IMAGES_PER_CLASS`` images per class):
    Inception's ImageNet classes are not the data's classes. Minimum: 2 generated samples.
    """

    scores = ("class_agreement",)

    needs_real = False
    needs_logits = True
    logit_extractors = ("classifier",)

    def __init__(
        self,
        features: str = "classifier",
        num_samples: int = 10000,
        num_real: int | None = None,
        feature_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(features, num_samples, num_real, feature_options)

    def score(self, fake: Feats, real: Feats | None) -> dict[str, float]:
        return class_agreement(self._logits(fake, "class-agreement"))


# Short names for the command line (`gankit eval --metrics fid,kid,is,pr,dc`).
ALIASES = {
    "is": "inception-score",
    "pr": "precision-recall",
    "dc": "density-coverage",
    "swd": "sliced-wasserstein",
    "fid-inf": "fid-infinity",
    "classes": "class-coverage",
    "agree": "class-agreement",
}

# Scores where larger is better (for keeping the best checkpoint); everything else is minimised.
HIGHER_IS_BETTER = {
    "is",
    "precision",
    "recall",
    "density",
    "coverage",
    "classes_covered",
    "class_coverage",
    "class_agreement",
    "modes",
    "hq_fraction",
}
