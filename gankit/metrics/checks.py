"""Can every metric work on this reference set? Checked when an ``Evaluator`` is built.

That is before step 0 of training (the trainer builds its Evaluator in its constructor, before the
run directory is written) and before `gankit eval` extracts a single feature, so a recipe whose
end-of-run evaluation could never work is refused up front instead of after hours of training.

What is checked, per metric, without building any extractor (the classifier extractor trains a
network and Inception loads 95 MB, both too slow for a start-up check), from ``features.TRAITS``:

* the metric fits the data: image metrics need images, ``toy-mixture`` a toy mixture;
* the extractor exists and takes the given options;
* metrics on class probabilities (IS, class-coverage, class-agreement) get an extractor with logits;
* the extractor can be built on this data: the ``classifier`` needs a labelled set with at least
  ``classifier.MIN_IMAGES_PER_CLASS`` images in every class, ``inception`` its weights file;
* the sample counts reach the metric's minimum (``FeatureMetric.minimum``; the table in
  gankit/metrics/image.py), counting only the real images that exist: a reference set smaller than
  ``num_real`` is used whole (a loud warning says so), never repeated to make up the number.

Errors are ``ConfigError`` whose advice fits ``context``: recipe keys (``eval.metrics=[...]``) for
"train", command-line flags (``--features``, ``--metrics``, ``--num``) for "eval".
"""

from __future__ import annotations

import warnings
from typing import Any

from gankit.config import ConfigError
from gankit.data.base import InMemoryImages
from gankit.metrics import advice
from gankit.metrics.classifier import source_problem
from gankit.metrics.features import FEATURES, TRAITS
from gankit.registry import RegistryError


def dataset_size(source: Any) -> int | None:
    """How many real samples ``source`` holds, or None when it draws them without end (toy mixtures)
    or is not a plain image set (its ``sample_real`` decides)."""

    return len(source) if isinstance(source, InMemoryImages) else None


def _dataset(source: Any) -> str:
    return repr(getattr(source, "name", type(source).__name__))


def _fix(context: str, name: str, metric: Any, metrics: list[tuple[str, Any]], choices: list[str]) -> str:
    """Other extractors if any would do, else leaving the metric out."""
    others = [n for n, _ in metrics if n != name]
    if choices:
        return advice.other_features(context, choices, name, metric) + (
            f"; or {advice.drop_metric(context, name, others)}" if context == "eval" else ""
        )
    return advice.drop_metric(context, name, others)


def _alternatives(metric: Any, source: Any, current: str) -> list[str]:
    """Extractors that could serve ``metric`` on ``source``, best first, other than ``current``."""

    if getattr(metric, "needs_logits", False):
        allowed = list(getattr(metric, "logit_extractors", None) or ("classifier", "inception"))
    else:
        allowed = ["random-projection", "classifier", "inception"]
    if "classifier" in allowed and source_problem(source) is not None:
        allowed.remove("classifier")
    return [c for c in allowed if c != current]


class _ExtractorProblem(ConfigError):
    """A problem of the extractor itself (not of one metric), reported once for all metrics using it."""

    def __init__(self, features: str, options: dict[str, Any], body: str) -> None:
        super().__init__(body)
        self.spec, self.features, self.body = (features, repr(sorted(options.items()))), features, body


def check_metrics(
    metrics: list[tuple[str, Any]], source: Any, context: str = "train", fake_size: int | None = None
) -> dict[str, tuple[int, int]]:
    """Refuse (``ConfigError``) any metric that cannot work on ``source``; warn where fewer real (or,
    with ``fake_size``, generated) samples exist than a metric asks for.

    Returns, per metric name, the (generated, real) counts it will actually score: ``num_samples``
    and ``num_real`` capped at what exists (real 0 for metrics without real features)."""
    advice.check_context(context)
    real_size = dataset_size(source)
    counts: dict[str, tuple[int, int]] = {}
    problems: list[str] = []  # every metric's problem in one error, not one per attempt
    shared: dict[Any, tuple[list[str], _ExtractorProblem]] = {}
    for name, metric in metrics:
        try:
            if not getattr(metric, "uses_features", False):  # sample-space metrics (toy-mixture)
                problem = metric.source_problem(source) if hasattr(metric, "source_problem") else None
                if problem:
                    raise ConfigError(f"metric {name!r}: {problem}; {_fix(context, name, metric, metrics, [])}")
                counts[name] = (int(getattr(metric, "num_samples", 0)), 0)
                continue
            counts[name] = _check_feature_metric(name, metric, metrics, source, context, real_size, fake_size)
        except _ExtractorProblem as err:
            if err.spec not in shared:
                shared[err.spec] = ([], err)
                problems.append("")  # its place in the list; filled in below with all its metrics
            shared[err.spec][0].append(name)
        except (ConfigError, RegistryError) as err:
            problems.append(str(err))
    slots = iter(shared.values())
    for i, text in enumerate(problems):
        if not text:
            names, shared_err = next(slots)
            which = f"metric {names[0]!r}" if len(names) == 1 else "metrics " + ", ".join(map(repr, names))
            problems[i] = f"{which} (features: {shared_err.features}): {shared_err.body}"
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        listed = "\n".join(f"- {p}" for p in problems)
        raise ConfigError(f"{len(problems)} metrics cannot work on this data:\n{listed}")
    return counts


def _check_feature_metric(
    name: str,
    metric: Any,
    metrics: list[tuple[str, Any]],
    source: Any,
    context: str,
    real_size: int | None,
    fake_size: int | None,
) -> tuple[int, int]:
    features, options = metric.features, dict(metric.feature_options)
    where = f"metric {name!r} (features: {features})"
    FEATURES.entry(features)  # an unknown extractor: RegistryError listing the valid ones
    FEATURES.validate(features, options)  # an unknown or mistyped extractor option: likewise
    traits = TRAITS.get(features)
    if traits is None:  # an extractor registered elsewhere: nothing known before it is built
        return _counts(name, metric, None, source, context, real_size, fake_size)
    kind = getattr(source, "kind", "image")
    if kind != "image" and traits.images_only:
        # pixels / random-projection take any vectors (FID of 2-D points is a Frechet distance too);
        # the CNN extractors need images.
        fix = "score 2-D points with " + (
            "--metrics toy-mixture, or --features pixels"
            if context == "eval"
            else "eval.metrics=[{name: toy-mixture}], or features: pixels"
        )
        raise ConfigError(f"{where} needs images, but the dataset {_dataset(source)} holds {kind}; {fix}")
    allowed = getattr(metric, "logit_extractors", None)
    if getattr(metric, "needs_logits", False) and (not traits.logits or (allowed and features not in allowed)):
        what = "the classifier's own classes" if allowed else "class probabilities (logits)"
        raise ConfigError(
            f"{where} needs {what}, which the {features!r} extractor does not give; "
            f"{_fix(context, name, metric, metrics, _alternatives(metric, source, features))}"
        )
    problem = traits.problem(options, source, context)
    if problem:
        if not traits.advised:
            # Shared by every metric on this extractor, so no "leave this one metric out" here.
            alternatives = _alternatives(metric, source, features)
            problem += "; " + (
                advice.other_features(context, alternatives, name, metric)
                if alternatives
                else advice.drop_metric(context, name, [])
            )
        raise _ExtractorProblem(features, options, problem)
    dim = traits.dim(options, source)
    problem = metric.option_problem(dim)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return _counts(name, metric, dim, source, context, real_size, fake_size)


def _counts(
    name: str, metric: Any, dim: int | None, source: Any, context: str, real_size: int | None, fake_size: int | None
) -> tuple[int, int]:
    """The counts ``metric`` will score, after checking them against its minimum."""
    n_fake = metric.num_samples if fake_size is None else min(metric.num_samples, fake_size)
    n_real = 0
    if metric.needs_real:
        n_real = metric.num_real if real_size is None else min(metric.num_real, real_size)
    need_fake, need_real = metric.minimum(dim)
    short_fake, short_real = n_fake < need_fake, metric.needs_real and n_real < need_real
    if short_fake or short_real:
        have = [f"{n_fake} generated"] + ([f"{n_real} real"] if metric.needs_real else [])
        need = [f"{need_fake} generated"] + ([f"{need_real} real"] if metric.needs_real else [])
        width = f" of {dim}-d features" if dim else ""
        why = getattr(metric, "minimum_reason", "")
        fix = advice.more_samples(
            context, name, metric, need_fake if short_fake else None, need_real if short_real else None, real_size
        )
        if dim and need_fake > dim > 256 and metric.features != "random-projection":
            # The minimum grows with the feature width: a narrower extractor also fixes it.
            fix += "; or " + advice.other_features(context, ["random-projection"], name, metric) + " (256-d)"
        raise ConfigError(
            f"metric {name!r} needs at least {' and '.join(need)} samples{width}"
            f"{f' ({why})' if why else ''}, but would score {' and '.join(have)}; {fix}"
        )
    # Fewer than asked for, but enough: use what exists and say so once, loudly; the protocol records
    # the true counts, so the number is never mistaken for a 10k-sample score.
    if metric.needs_real and real_size is not None and metric.num_real > real_size:
        warnings.warn(
            f"metric {name!r} asks for {metric.num_real} real images but the reference set "
            f"{_dataset(source)} holds {real_size}: it scores against those {real_size} (recorded as "
            f"num_real={real_size}), none repeated",
            stacklevel=4,
        )
    if fake_size is not None and metric.num_samples > fake_size:
        warnings.warn(
            f"metric {name!r} asks for {metric.num_samples} generated images but only {fake_size} "
            f"are given: it scores those {fake_size} (recorded as num_fake={fake_size})",
            stacklevel=4,
        )
    return n_fake, n_real
