"""Run a set of metrics on a generator (or on a set of images) against a reference dataset.

The evaluator extracts features once per extractor for all metrics that share it, draws generated
samples once (the largest ``num_samples`` needed; smaller metrics use a prefix), and caches the
reference features on disk under ``(dataset fingerprint, extractor key, count, seed)``: a changed
dataset or extractor never reuses stale statistics. Every score comes back with its protocol.

Building an Evaluator checks every metric against the reference set (gankit/metrics/checks.py): a
metric that cannot work there (the classifier extractor on unlabelled data, a CNN extractor on
2-D points, too few samples for the estimator, ...) is refused with a ``ConfigError`` whose advice fits
the command, ``context="train"`` (recipe keys) or ``"eval"`` (flags). Counts are what exists: a
reference set smaller than ``num_real`` is scored whole, not repeated, and the protocol's
``num_real`` / ``num_fake`` are the numbers of samples actually scored.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gankit.files import atomic_write
from gankit.metrics.checks import check_metrics
from gankit.metrics.features import Extractor, build_extractor, cache_dir, extract, protocol_base

Generate = Callable[[int], torch.Tensor]


def reference_description(source: Any, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the real statistics were computed on: dataset name, its options (split, path, ...),
    and the content fingerprint when the dataset has one."""
    desc: dict[str, Any] = {"dataset": getattr(source, "name", type(source).__name__)}
    if options:
        desc["options"] = dict(options)
    if hasattr(source, "fingerprint"):
        desc["fingerprint"] = source.fingerprint()[:16]
    return desc


class Evaluator:
    """Scores ``metrics`` (a list of (name, metric) pairs from ``METRICS``) against ``source``.

    ``context`` is the command whose errors this evaluator raises: "train" (the default; advice names
    recipe keys such as ``eval.metrics=[...]``) or "eval" (advice names ``--features`` / ``--metrics``).
    ``fake_size``: how many generated samples exist when they are a fixed set (``gankit eval --fake``),
    None when a generator draws as many as asked. Raises ``ConfigError`` at once when a metric cannot
    work on ``source`` (see gankit/metrics/checks.py), so training refuses it before step 0."""

    def __init__(
        self,
        metrics: list[tuple[str, Any]],
        source: Any,
        device: torch.device | str = "cpu",
        seed: int = 0,
        reference: dict[str, Any] | None = None,
        progress: bool = False,
        use_cache: bool = True,
        context: str = "train",
        fake_size: int | None = None,
    ) -> None:
        # First, before anything is built or drawn: can every metric work here, and on how many samples?
        self.counts = check_metrics(metrics, source, context, fake_size)
        self.context = context
        self.metrics, self.source = metrics, source
        self.device, self.seed = torch.device(device), seed
        self.reference = reference or reference_description(source)
        self.progress, self.use_cache = progress, use_cache
        self._extractors: dict[Any, Extractor] = {}
        self._real: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
        # (rank, world, gather): under DDP every rank extracts its share of the features and ``gather``
        # (a list of every rank's object) joins them, so all ranks score the same full set.
        self.shard: tuple[int, int, Callable[[Any], list[Any]]] | None = None

    # -- pieces ------------------------------------------------------------------------------------
    def extractor(self, spec: tuple[str, tuple[tuple[str, Any], ...]]) -> Extractor:
        if spec not in self._extractors:
            name, options = spec
            ex = build_extractor(name, source=self.source, context=self.context, **dict(options))
            self._extractors[spec] = ex.to(self.device)
        return self._extractors[spec]

    def _cache_file(self, ex: Extractor, n: int) -> Path | None:
        fp = getattr(self.source, "fingerprint", None)
        if not self.use_cache or fp is None:
            return None
        return cache_dir() / "reference" / f"{fp()[:16]}-{ex.key()}-n{n}-s{self.seed}.safetensors"

    def real_features(self, ex: Extractor, n: int) -> dict[str, torch.Tensor]:
        """Features of ``n`` real samples (deterministic in ``seed``), from memory, disk, or computed."""
        key = (ex.key(), n)
        if key in self._real:
            return self._real[key]
        path = self._cache_file(ex, n)
        if path is not None and path.is_file():
            from safetensors.torch import load_file

            feats = load_file(str(path))
        else:
            real, _ = self.source.sample_real(n, seed=self.seed)
            feats = self._extract(ex, real, f"real features ({ex.name})")
            if path is not None and (self.shard is None or self.shard[0] == 0):  # one writer
                from safetensors.torch import save_file

                atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in feats.items()}, str(tmp)))
        self._real[key] = feats
        return feats

    def _extract(self, ex: Extractor, images: torch.Tensor, what: str) -> dict[str, torch.Tensor]:
        progress = what if self.progress else None
        if self.shard is None or self.shard[1] == 1:
            return extract(ex, images, device=self.device, progress=progress)
        rank, world, gather = self.shard
        n = len(images)
        mine = extract(ex, images[n * rank // world : n * (rank + 1) // world], device=self.device, progress=progress)
        parts = gather(mine)  # in rank order: the rows come back in the order of ``images``
        return {k: torch.cat([part[k] for part in parts]) for k in mine}

    # -- the run -----------------------------------------------------------------------------------
    def evaluate(self, generate: Generate) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
        """(scores, protocol per metric name). ``generate(n)`` returns n samples, deterministic in n."""
        results: dict[str, float] = {}
        protocols: dict[str, dict[str, Any]] = {}
        groups: dict[Any, list[tuple[str, Any]]] = {}
        for name, metric in self.metrics:
            if getattr(metric, "uses_features", False):
                groups.setdefault(metric.feature_spec(), []).append((name, metric))
            else:  # sample-space metrics (toy mixtures) score the samples directly
                samples = generate(self.counts[name][0])
                self._merge(results, metric(samples, self.source), name)
                protocols[name] = {
                    "metric": name,
                    "num_fake": len(samples),
                    "reference": self.reference,
                    "seed": self.seed,
                    **protocol_base(),
                }
        for spec, members in groups.items():
            ex = self.extractor(spec)
            n_fake = max(self.counts[name][0] for name, _ in members)
            images = _as_saved(generate(n_fake))
            self._check_shape(images)
            fake = self._extract(ex, images, f"generated features ({ex.name})")
            n_real = max((self.counts[name][1] for name, m in members if m.needs_real), default=0)
            real = self.real_features(ex, n_real) if n_real else None
            for name, m in members:
                want_fake, want_real = self.counts[name]
                f = {k: v[:want_fake] for k, v in fake.items()}  # a prefix: one draw serves every metric
                r = {k: v[:want_real] for k, v in real.items()} if real is not None and m.needs_real else None
                if r is not None and f["features"].shape[1:] != r["features"].shape[1:]:
                    raise ValueError(
                        f"metric {name!r}: {ex.name} features of generated and real images differ in "
                        f"width ({f['features'].shape[1]} vs {r['features'].shape[1]}); real and "
                        f"generated images must have one shape"
                    )
                self._merge(results, m.score(f, r), name, ex.name)
                n_f, n_r = len(f["features"]), len(r["features"]) if r is not None else 0
                protocols[name] = {
                    # The counts actually scored, which may be fewer than asked (a small reference set).
                    "metric": name,
                    **ex.protocol(),
                    "num_fake": n_f,
                    "num_real": n_r,
                    "reference": self.reference,
                    "seed": self.seed,
                    **m.options(n_f, n_r or None),
                    **protocol_base(),
                }
        return results, protocols

    def _check_shape(self, images: torch.Tensor) -> None:
        """Generated and real images must have one shape: every extractor would otherwise either fail
        deep inside (pixels) or quietly compare unlike things (resizing, random projection)."""
        want = tuple(getattr(self.source, "shape", ()))
        if getattr(self.source, "kind", "image") == "image" and want and tuple(images.shape[1:]) != want:
            got = "x".join(map(str, images.shape[1:]))
            raise ValueError(
                f"the generated images are {got} (channels x height x width) but the reference images of "
                f"{self.reference.get('dataset', '?')!r} are {'x'.join(map(str, want))}; "
                f"score images of the reference's shape"
            )

    @staticmethod
    def _merge(results: dict[str, float], scores: dict[str, float], metric: str, features: str = "") -> None:
        for k, v in scores.items():
            # Two metrics giving the same score name (e.g. FID on two extractors) stay apart.
            key = k if k not in results else f"{k}@{features or metric}"
            results[key] = float(v)


def _as_saved(x: torch.Tensor) -> torch.Tensor:
    """Images are scored as a user sees them, clamped to [-1, 1]: a linear-output G (BEGAN's) can leave
    the image range, which no real image does."""
    return x.clamp(-1.0, 1.0) if x.ndim == 4 else x
