"""Evaluation metrics, registered by name in ``METRICS``; feature extractors in ``FEATURES``.

A metric entry builds an object with a ``num_samples`` option (how many generated samples to draw).
Sample-space metrics (``toy-mixture``) define ``__call__(fake, source) -> dict[str, float]``;
feature-space metrics (FID, KID, IS, ...; gankit/metrics/image.py) define ``score(fake_features,
real_features)`` and are run by ``gankit.metrics.evaluate.Evaluator``, which extracts and caches
features and returns every score with its protocol.
"""

from gankit.registry import Registry

# Defined before the submodule imports below, which register into it.
METRICS: Registry = Registry("metric")

from gankit.metrics import classifier, image, inception, toy  # noqa: E402,F401  (register the entries)
from gankit.metrics.features import FEATURES, Extractor, build_extractor, extract  # noqa: E402
from gankit.metrics.toy import ToyMixtureMetric, mixture_metrics  # noqa: E402

__all__ = ["FEATURES", "METRICS", "Extractor", "ToyMixtureMetric", "build_extractor", "extract", "mixture_metrics"]
