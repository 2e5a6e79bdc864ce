"""2-D Gaussian mixtures for mode-collapse studies: ``ring`` and ``grid``; ``line``, ``clusters``
and ``drawn`` (any points, e.g. drawn with the mouse in ``gankit lab``).

The benchmarks of Metz et al. 2017 (Unrolled GAN: 8 Gaussians on a circle), Srivastava et al.
2017 (VEEGAN: ring of 8 with std 0.01, grid of 25 with std 0.05) and Lin et al. 2018 (PacGAN,
same settings). Points are drawn on the fly, uniformly over the modes, from the stream's own
generator; the sources are endless, so ``len()`` raises ``TypeError`` (``bool(source)`` is True).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from gankit.data.base import DATASETS, DataSource, make_generator
from gankit.seeds import StreamWord


def _draw(g: torch.Generator, n: int, centers: torch.Tensor, std: float) -> tuple[torch.Tensor, torch.Tensor]:
    modes = torch.randint(centers.shape[0], (n,), generator=g)
    noise = torch.randn(n, 2, generator=g)
    return centers[modes] + std * noise, modes


class MixtureStream:
    """Endless batches from a Gaussian mixture; its state is the generator's state (a uint8 tensor)."""

    def __init__(self, source: GaussianMixture, batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.source, self.batch_size, self.seed = source, batch_size, seed
        self.generator = make_generator(seed, StreamWord.STREAM)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, modes = _draw(self.generator, self.batch_size, self.source.centers, self.source.std)
        return x, (modes if self.source.labels else None)

    def __iter__(self) -> MixtureStream:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.next()

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.generator.get_state(), "batch_size": self.batch_size, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["batch_size"]) != self.batch_size:
            raise ValueError(
                f"cannot resume this data stream: saved batch_size {int(state['batch_size'])}, "
                f"this stream has {self.batch_size}"
            )
        self.generator.set_state(state["rng"])


class GaussianMixture(DataSource):
    """Equal-weight isotropic Gaussians at ``centers`` (K, 2) with standard deviation ``std``."""

    kind: Literal["image", "points"] = "points"
    shape = (2,)

    def __init__(self, name: str, centers: torch.Tensor, std: float, labels: bool = False) -> None:
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.name = name
        self.centers = centers.to(torch.float32)
        self.std = float(std)
        self.labels = labels
        self.num_classes = int(centers.shape[0]) if labels else 0

    def __len__(self) -> int:
        raise TypeError(f"dataset {self.name!r} is endless (points are drawn on the fly); it has no len()")

    def stream(self, batch_size: int, seed: int) -> MixtureStream:
        return MixtureStream(self, batch_size, seed)

    def sample_real(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        x, modes = _draw(make_generator(seed, StreamWord.EVAL), n, self.centers, self.std)
        return x, (modes if self.labels else None)


def ring_centers(num_modes: int, radius: float) -> torch.Tensor:
    """``num_modes`` points evenly spaced on a circle of ``radius``, the first at angle 0."""
    angles = [2.0 * math.pi * k / num_modes for k in range(num_modes)]
    return torch.tensor([[radius * math.cos(a), radius * math.sin(a)] for a in angles], dtype=torch.float64)


def grid_centers(size: int, spacing: float) -> torch.Tensor:
    """A ``size`` x ``size`` grid with step ``spacing``, symmetric about 0 (row-major: k = i*size + j)."""
    axis = (torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0) * spacing
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


@DATASETS.register("ring")
def ring(num_modes: int = 8, radius: float = 1.0, std: float = 0.01, labels: bool = False) -> GaussianMixture:
    """8 Gaussians on a circle (Metz et al. 2017; VEEGAN / PacGAN: radius 1, std 0.01)."""
    if num_modes < 1:
        raise ValueError(f"num_modes must be >= 1, got {num_modes}")
    return GaussianMixture("ring", ring_centers(num_modes, radius), std, labels)


@DATASETS.register("grid")
def grid(size: int = 5, spacing: float = 2.0, std: float = 0.05, labels: bool = False) -> GaussianMixture:
    """25 Gaussians on {-4, -2, 0, 2, 4}^2 (VEEGAN / PacGAN: std 0.05)."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    return GaussianMixture("grid", grid_centers(size, spacing), std, labels)


@DATASETS.register("line")
def line(num_modes: int = 9, length: float = 3.0, std: float = 0.12, labels: bool = False) -> GaussianMixture:
    """A segment of ``length`` on the diagonal y = x, as ``num_modes`` overlapping Gaussians (GAN Lab's
    line: the default spacing 0.27 is about twice ``std``, so the points run together)."""
    if num_modes < 2 or length <= 0:
        raise ValueError(f"line needs num_modes >= 2 and length > 0, got num_modes={num_modes}, length={length}")
    t = torch.linspace(-length / 2, length / 2, num_modes, dtype=torch.float64) / math.sqrt(2.0)
    return GaussianMixture("line", torch.stack([t, t], dim=1), std, labels)


@DATASETS.register("clusters")
def clusters(centers: list[list[float]] | None = None, std: float = 0.25, labels: bool = False) -> GaussianMixture:
    """Gaussian clusters at ``centers`` (default two: (-1, -0.5) and (1, 0.5)), GAN Lab's two clusters."""
    return GaussianMixture("clusters", _centers(centers or [[-1.0, -0.5], [1.0, 0.5]], "clusters"), std, labels)


@DATASETS.register("drawn")
def drawn(points: list[list[float]], std: float = 0.03, labels: bool = False) -> GaussianMixture:
    """The points someone drew (``gankit lab``), each one a narrow Gaussian of ``std``: a recipe
    exported from the lab carries the points themselves, so ``gankit train`` sees the same data."""
    return GaussianMixture("drawn", _centers(points, "drawn"), std, labels)


def _centers(points: list[list[float]], name: str) -> torch.Tensor:
    try:
        c = torch.tensor(points, dtype=torch.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: points must be a list of [x, y] pairs of numbers ({err})") from None
    if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] < 1:
        raise ValueError(f"{name}: points must be a non-empty list of [x, y] pairs, got shape {tuple(c.shape)}")
    if not torch.isfinite(c).all():
        raise ValueError(f"{name}: every coordinate must be a finite number")
    return c
