"""Feature extractors for the image metrics, registered by name in ``FEATURES``.

An extractor is an ``nn.Module`` that maps images (float NCHW in [-1, 1], any size) to a dict with
``"features"`` (N, dim) float32 and, when it has a classifier head, ``"logits"`` (N, num_classes).
``protocol()`` returns what must be recorded beside every score computed from its features (its name,
the hash of its weights, the resize filter, ...), because a score without its protocol is not
comparable to anything.

* ``pixels``: the raw pixels, flattened (tests, toy data, sanity checks).
* ``random-projection``: pixels times a fixed Gaussian matrix seeded by ``seed`` (Johnson-Lindenstrauss),
  a cheap, domain-free embedding.
* ``classifier``: a small CNN trained on a labelled dataset (gankit/metrics/classifier.py).
* ``inception``: the FID Inception-v3 of the TF-2015 graph (gankit/metrics/inception.py).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.registry import Registry
from gankit.version import __version__

FEATURES = Registry("feature extractor")


@dataclass(frozen=True)
class Traits:
    """What the evaluator can know about an extractor *before* building it (building the classifier
    trains a network, and the Inception net loads 95 MB), so that a metric that cannot work on a
    dataset is refused at start-up rather than after training (gankit/metrics/checks.py).

    ``dim(options, source)``: the feature width for these recipe options on this reference set, or
    None when unknown. ``logits``: it also returns class logits (for IS and the class metrics).
    ``images_only``: it needs images (a CNN); the others take any vectors, 2-D toy points too.
    ``problem(options, source, context)``: why it cannot be built on this source, or None; a
    sentence without advice, which the checker adds for the command ("train" / "eval"), unless
    ``advised`` says the sentence already carries its own (the Inception weights' how-to-get).
    """

    dim: Callable[[dict[str, Any], Any], int | None]
    logits: bool = False
    images_only: bool = False
    problem: Callable[[dict[str, Any], Any, str], str | None] = lambda options, source, context: None
    advised: bool = False


TRAITS: dict[str, Traits] = {}  # extractor name -> Traits; an extractor without an entry is not pre-checked


class Extractor(nn.Module):
    """Base of every feature extractor; subclasses set ``name`` and ``dim`` and define ``forward``."""

    name: str = ""
    dim: int = 0
    num_classes: int = 0  # > 0 when forward also returns "logits"

    def protocol(self) -> dict[str, Any]:
        return {"extractor": self.name, "dim": self.dim}

    def key(self) -> str:
        """A short hash of the protocol: two extractors with equal keys give equal features."""
        text = repr(sorted(self.protocol().items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@FEATURES.register("pixels")
class Pixels(Extractor):
    """Raw pixels, flattened: dim = C*H*W. Metrics on pixels are for tests and sanity checks."""

    name = "pixels"

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.dim = int(x[0].numel())
        return {"features": x.flatten(1).float()}


TRAITS["pixels"] = Traits(dim=lambda options, source: math.prod(getattr(source, "shape", ())) or None)


@FEATURES.register("random-projection")
class RandomProjection(Extractor):
    """Pixels times a fixed random Gaussian matrix (seeded): a Johnson-Lindenstrauss embedding.

    The matrix has N(0, 1/dim) entries drawn from ``seed``, so pairwise distances are kept to within
    a small factor (Johnson & Lindenstrauss 1984)."""

    name = "random-projection"

    def __init__(self, dim: int = 256, seed: int = 0) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"random-projection dim must be >= 1, got {dim}")
        self.dim, self.seed = dim, seed
        self._matrix: torch.Tensor | None = None

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "seed": self.seed}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        flat = x.flatten(1).float()
        if self._matrix is None:
            g = torch.Generator().manual_seed(self.seed)
            self._matrix = torch.randn(flat.shape[1], self.dim, generator=g) / self.dim**0.5
        elif self._matrix.shape[0] != flat.shape[1]:
            # A new matrix for the new size would map both sets to `dim` numbers and hand back a
            # score for images that were never comparable (16 px against 32 px): refuse instead.
            raise ValueError(
                f"random-projection was first given images of {self._matrix.shape[0]} values and now "
                f"{tuple(x.shape[1:])} = {flat.shape[1]} values; real and generated images must have one shape"
            )
        return {"features": flat @ self._matrix.to(flat.device)}


TRAITS["random-projection"] = Traits(dim=lambda options, source: int(options.get("dim", 256)))


def build_extractor(name: str, source: Any = None, context: str = "eval", **options: Any) -> Extractor:
    """Build extractor ``name`` with its recipe options; ``source`` (the reference dataset) is handed
    to the extractors that need it (the classifier trains on it), and ``context`` ("eval" or
    "train", the command that will print an error) to those whose errors give advice."""
    entry = FEATURES.entry(name)
    injected = {k: v for k, v in (("source", source), ("context", context)) if k in entry.injected}
    return FEATURES.build(name, **options, **injected)


@torch.no_grad()
def extract(
    extractor: Extractor,
    images: torch.Tensor | Iterable[torch.Tensor],
    batch_size: int = 250,
    device: torch.device | str | None = None,
    progress: str | None = None,
) -> dict[str, torch.Tensor]:
    """Run ``extractor`` over ``images`` (a tensor, or an iterable of batches) in batches.

    Returns CPU float32 tensors, one row per image. ``progress`` is a description for a rich
    progress bar (None: no bar).
    """
    device = (
        torch.device(device)
        if device is not None
        else next((p.device for p in extractor.parameters()), torch.device("cpu"))
    )
    extractor.eval()
    if isinstance(images, torch.Tensor):
        total = images.shape[0]
        batches: Iterable[torch.Tensor] = images.split(batch_size)
    else:
        total, batches = None, images
    out: dict[str, list[torch.Tensor]] = {}

    def run(bar: Any = None, task: Any = None) -> None:
        for b in batches:
            for k, v in extractor(b.to(device, non_blocking=True)).items():
                out.setdefault(k, []).append(v.float().cpu())
            if bar is not None:
                bar.advance(task, b.shape[0])

    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
        ) as bar:
            run(bar, bar.add_task(progress, total=total))
    else:
        run()
    if not out:
        raise ValueError("no images to extract features from")
    return {k: torch.cat(v) for k, v in out.items()}


def pick_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA when present, else the CPU; anything else as torch reads it. (metrics/ never
    imports the trainer, so extractors resolve "auto" here rather than via gankit.training.)"""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cache_dir() -> Path:
    """Where gankit caches trained classifiers and reference statistics: ``$GANKIT_CACHE``, else
    ``~/.cache/gankit``. Everything in it is keyed by content hashes, so deleting it is always safe."""
    root = Path(os.environ.get("GANKIT_CACHE") or Path.home() / ".cache" / "gankit")
    root.mkdir(parents=True, exist_ok=True)
    return root


def protocol_base() -> dict[str, Any]:
    return {"gankit": __version__}
