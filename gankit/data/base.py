"""The data contract: a ``DataSource`` hands out endless, resumable ``BatchStream``s.

Every stream owns a ``torch.Generator`` (never the global RNG) whose seed is derived from
``(seed, purpose, epoch)`` with numpy's ``SeedSequence`` hash, so two streams built alike yield
identical batches, and ``load_state_dict(state_dict())`` continues bit-identically: exact resume.

Conventions (DESIGN.md): images are float32 NCHW in [-1, 1], points are float32 (N, 2), labels
are int64 (N,) or None. Finite sets live in memory as uint8 (N, C, H, W) and are converted per
batch with ``x / 127.5 - 1``: 4x smaller than float and cheap to convert.
"""

from __future__ import annotations

import abc
import hashlib
from typing import Any, Literal, Protocol

import numpy as np
import torch

from gankit.registry import Registry
from gankit.seeds import StreamWord

DATASETS = Registry("dataset")


class DataPathError(FileNotFoundError, ValueError):
    """A data path or file named by the recipe is missing. Also a ValueError: it is bad input,
    fixed by editing the recipe (like the stdlib's ``io.UnsupportedOperation(OSError, ValueError)``)."""


def derive_seed(*words: int) -> int:
    """A 64-bit seed hashed from integers (numpy ``SeedSequence``): stable across runs/platforms."""
    state = np.random.SeedSequence([w & 0xFFFF_FFFF_FFFF_FFFF for w in words]).generate_state(2, np.uint32)
    # Keep it below 2**63 so torch accepts it on every platform.
    return (int(state[0]) << 31) ^ int(state[1])


def make_generator(*words: int) -> torch.Generator:
    """A CPU generator seeded from ``derive_seed(*words)``: by convention ``(seed, StreamWord.X, ...)``
    (gankit/seeds.py), so that a training stream and an evaluation sample built with the same user
    seed do not draw the same numbers."""
    return torch.Generator().manual_seed(derive_seed(*words))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1] (exact: k / 127.5 - 1)."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 0..255, rounded to nearest: the inverse of ``to_float``."""
    return quantize((images.detach().float().cpu() + 1) * 127.5)


def quantize(images: torch.Tensor, max_value: float = 255.0) -> torch.Tensor:
    """Float images in [0, max_value] -> uint8 0..255, rounded to nearest."""
    return (images * (255.0 / max_value)).round_().clamp_(0, 255).to(torch.uint8)


def check_images(
    x: torch.Tensor,
    name: str = "images",
    channels: int | tuple[int, ...] | None = None,
    size: int | tuple[int, int] | None = None,
    dtype: torch.dtype | Literal["float"] | None = None,
    hint: str = "",
) -> None:
    """Raise a ValueError unless ``x`` is a batch of images (N, C, H, W) with the given ``channels`` (a
    count, or the counts allowed), ``size`` (side, or (H, W)) and ``dtype`` ("float": any floating type).

    Called where images enter a component that would otherwise fail deep inside (a conv's shape error)
    or silently misread them (a channel taken for a batch); one wording for every such check.
    ``name`` says what the images are, ``hint`` what to do about it."""
    allowed = (channels,) if isinstance(channels, int) else channels
    hw = (size, size) if isinstance(size, int) else size
    ok_dtype = dtype is None or (x.is_floating_point() if dtype == "float" else x.dtype == dtype)
    if (
        x.ndim == 4
        and ok_dtype
        and (allowed is None or x.shape[1] in allowed)
        and (hw is None or tuple(x.shape[2:]) == tuple(hw))
    ):
        return
    kind = "" if dtype is None else "float " if dtype == "float" else f"{str(dtype).removeprefix('torch.')} "
    want = f"{kind}(N, C, H, W)"
    if allowed is not None:
        want += f" with {' or '.join(map(str, allowed))} channel{'' if tuple(allowed) == (1,) else 's'}"
    if hw is not None:
        want += f" of {hw[0]}x{hw[1]} pixels"
    raise ValueError(f"{name} must be {want}, got {x.dtype} {tuple(x.shape)}" + (f"; {hint}" if hint else ""))


def resize_uint8(x: torch.Tensor, resolution: int, chunk: int = 4096) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, resolution, resolution) uint8, antialiased bilinear, in chunks so
    that a whole dataset is never float at once."""
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    out = torch.empty(x.shape[0], x.shape[1], resolution, resolution, dtype=torch.uint8)
    for i in range(0, x.shape[0], chunk):
        part = x[i : i + chunk].to(torch.float32)
        part = torch.nn.functional.interpolate(
            part, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True
        )
        out[i : i + chunk] = quantize(part)
    return out


class BatchStream(Protocol):
    """An endless iterator of ``(x, y)`` batches whose position can be saved and restored."""

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class DataSource(abc.ABC):
    """What a dataset factory returns.

    kind:        "image" (x is (N, C, H, W) in [-1, 1]) or "points" (x is (N, 2)).
    shape:       one sample's shape, (C, H, W) or (2,).
    num_classes: number of label classes; 0 when the source is unlabeled (labels are None).
    name:        the registry name it was built from.
    """

    kind: Literal["image", "points"]
    shape: tuple[int, ...]
    num_classes: int
    name: str

    @abc.abstractmethod
    def stream(self, batch_size: int, seed: int) -> BatchStream:
        """An endless batch iterator, reproducible from ``(batch_size, seed)``."""

    @abc.abstractmethod
    def sample_real(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` real samples for evaluation, deterministic given ``seed``."""

    def __bool__(self) -> bool:
        # Without this, ``if source:`` would call __len__, which endless sources refuse.
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, shape={self.shape}, num_classes={self.num_classes})"


class FiniteStream:
    """Epoch-shuffled batches over an in-memory uint8 set; the last incomplete batch is dropped.

    Epoch ``e`` is ordered by ``randperm`` from a generator seeded with ``(seed, e)``, so the whole
    position is two integers, ``(epoch, position)``, and resuming needs no RNG state.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int, seed: int) -> None:
        n = images.shape[0]
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size > n:
            raise ValueError(
                f"batch_size {batch_size} is larger than the dataset ({n} items); lower schedule.batch_size"
            )
        self.images, self.labels = images, labels
        self.batch_size, self.seed = batch_size, seed
        self.epoch, self.position = 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.images.shape[0], generator=make_generator(self.seed, StreamWord.STREAM, epoch))

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.position + self.batch_size > self.images.shape[0]:  # drop the incomplete tail
            self.epoch, self.position = self.epoch + 1, 0
            self._perm = self._permutation(self.epoch).to(self.images.device)
        idx = self._perm[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        y = self.labels.index_select(0, idx) if self.labels is not None else None
        return to_float(self.images.index_select(0, idx)), y

    def to(self, device: torch.device) -> FiniteStream:
        """Keep the set on ``device`` (e.g. the GPU): a batch is then an index there, not a copy.
        The order stays the host generator's, so the batches are the same on every device."""
        self.images = self.images.to(device)
        self.labels = self.labels.to(device) if self.labels is not None else None
        self._perm = self._perm.to(device)
        return self

    def __iter__(self) -> FiniteStream:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.next()

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "num_items": int(self.images.shape[0]),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("batch_size", "seed", "num_items"):
            mine = self.state_dict()[key]
            if int(state[key]) != mine:
                raise ValueError(
                    f"cannot resume this data stream: the saved {key} is {int(state[key])}, "
                    f"this stream has {mine}; resume with the recipe the checkpoint was made with"
                )
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._perm = self._permutation(self.epoch).to(self.images.device)


class InMemoryImages(DataSource):
    """A finite image set held as uint8 (N, C, H, W), with optional int64 labels (N,)."""

    kind: Literal["image", "points"] = "image"

    def __init__(
        self, name: str, images: torch.Tensor, labels: torch.Tensor | None = None, num_classes: int = 0
    ) -> None:
        check_images(images, dtype=torch.uint8)
        if labels is not None and labels.shape != (images.shape[0],):
            raise ValueError(f"{labels.shape[0]} labels for {images.shape[0]} images")
        if labels is not None and len(labels):
            # num_classes 0: a count not given, so only negative ids are known to be wrong
            bad = ((labels < 0) | ((labels >= num_classes) if num_classes else False)).nonzero().flatten()
            if len(bad):
                i = int(bad[0])
                allowed = f"0..{num_classes - 1}" if num_classes else ">= 0"
                raise ValueError(
                    f"{name}: {len(bad)} label(s) outside {allowed} (the first: {int(labels[i])} "
                    f"at index {i}); class ids must count from 0 up to the number of classes"
                )
        self.name = name
        self.images = images.contiguous()
        self.labels = labels.to(torch.int64) if labels is not None else None
        self.num_classes = num_classes if labels is not None else 0
        self.shape = tuple(int(s) for s in images.shape[1:])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, idx: torch.Tensor, name: str) -> InMemoryImages:
        """The items at ``idx`` as a new set of the same kind (paired sets stay paired)."""
        labels = self.labels.index_select(0, idx) if self.labels is not None else None
        return InMemoryImages(name, self.images.index_select(0, idx), labels, self.num_classes)

    def fingerprint(self) -> str:
        """SHA-256 of the pixels, labels and shape: any change to the data gives a new fingerprint,
        so statistics and classifiers cached under it are never reused for other data."""
        if getattr(self, "_fingerprint", None) is None:
            h = hashlib.sha256(f"{self.name}|{tuple(self.images.shape)}|{self.num_classes}".encode())
            h.update(self.images.numpy().tobytes())
            if self.labels is not None:
                h.update(self.labels.numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def stream(self, batch_size: int, seed: int) -> FiniteStream:
        return FiniteStream(self.images, self.labels, batch_size, seed)

    def sample_real(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Without replacement when ``n <= len(self)``; otherwise whole permutations are
        concatenated, so no item appears more than ``ceil(n / len)`` times."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        g, size = make_generator(seed, StreamWord.EVAL), len(self)
        idx = torch.cat([torch.randperm(size, generator=g) for _ in range(-(-n // size))])[:n]
        y = self.labels.index_select(0, idx) if self.labels is not None else None
        return to_float(self.images.index_select(0, idx)), y
