"""Evaluation metrics, registered by name in ``METRICS``.

A metric entry builds an object with a ``num_samples`` option (how many generated samples the
caller should draw) and ``__call__(fake, source) -> dict[str, float]``.
"""

from gankit.registry import Registry

# Defined before the submodule imports below, which register into it.
METRICS = Registry("metric")

from gankit.metrics import toy  # noqa: E402,F401  (registers the metrics)
from gankit.metrics.toy import ToyMixtureMetric, mixture_metrics  # noqa: E402

__all__ = ["METRICS", "ToyMixtureMetric", "mixture_metrics"]
