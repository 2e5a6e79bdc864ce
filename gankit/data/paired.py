"""Paired image sets for image-to-image translation (pix2pix): every item is an (A, B) pair.

``PairedImages`` stores A and B stacked along the channel axis, so the finite set machinery
(epoch-shuffled resumable streams, ``data.holdout`` splits) serves pairs unchanged; the translation
families split a batch back into (A, B) with ``channels_a``.

* ``paired-folder``: the user's own pairs, either side-by-side images (A left, B right, the layout of
  the pix2pix datasets: facades, maps, edges2shoes) or two folders ``A/`` and ``B/`` with the same
  file names.
* ``pairs``: built-in tasks derived from digits (offline, sklearn) or MNIST, so every translation
  recipe trains without downloads: ``edges`` (edge map -> digit), ``colour`` (grey digit -> digit
  coloured by its class) and ``mask`` (digit with a grey square hole -> the whole digit).
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.data.base import DATASETS, DataPathError, InMemoryImages, make_generator, quantize
from gankit.data.folder import EXTENSIONS, _progress, existing_folder, find_images
from gankit.seeds import StreamWord

_T = TypeVar("_T")


class PairedImages(InMemoryImages):
    """(A, B) pairs held as one uint8 (N, C_A + C_B, H, W) set; ``shape`` is B's (what G makes),
    ``in_shape`` A's (what G reads)."""

    def __init__(
        self, name: str, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor | None = None, num_classes: int = 0
    ) -> None:
        if a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
            raise ValueError(f"A and B must hold as many images of one size: A {tuple(a.shape)}, B {tuple(b.shape)}")
        super().__init__(name, torch.cat([a, b], dim=1), labels, num_classes)
        self.channels_a = int(a.shape[1])
        self.in_shape = (self.channels_a, *self.shape[1:])
        self.shape = (int(b.shape[1]), *self.shape[1:])

    @property
    def a(self) -> torch.Tensor:
        return self.images[:, : self.channels_a]

    @property
    def b(self) -> torch.Tensor:
        return self.images[:, self.channels_a :]

    def subset(self, idx: torch.Tensor, name: str) -> PairedImages:
        labels = self.labels.index_select(0, idx) if self.labels is not None else None
        return PairedImages(name, self.a.index_select(0, idx), self.b.index_select(0, idx), labels, self.num_classes)


# -- the user's own pairs ---------------------------------------------------------------------------
def _square(img: Image.Image, mode: str, resolution: int) -> np.ndarray:
    """``img`` in ``mode``, resized to a ``resolution`` square (bicubic), as (H, W, C) uint8."""
    img = img.convert(mode).resize((resolution, resolution), Image.Resampling.BICUBIC)
    return np.array(img, dtype=np.uint8).reshape(resolution, resolution, -1)


def _read(path: Path, fn: Callable[..., _T]) -> _T:
    """``fn(image)`` of the decoded file; an unreadable file is a ValueError naming it."""
    try:
        with Image.open(path) as img:
            return fn(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {str(path)!r}: {err}") from None


def _load(path: Path, mode: str, resolution: int) -> np.ndarray:
    return _read(path, lambda img: _square(img, mode, resolution))


def _halves(img: Image.Image, path: Path, mode_a: str, mode_b: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    w, h = img.size
    if w < 2:
        raise ValueError(f"{str(path)!r} is {w} px wide; a side-by-side pair has A on the left half and B on the right")
    half = w // 2
    return (
        _square(img.crop((0, 0, half, h)), mode_a, resolution),
        _square(img.crop((half, 0, 2 * half, h)), mode_b, resolution),
    )


def _side_by_side(
    root: Path, files: list[Path], mode_a: str, mode_b: str, resolution: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    pairs = [
        _read(f, lambda img, f=f: _halves(img, f, mode_a, mode_b, resolution))
        for f in _progress(files, f"loading {len(files)} pairs")
    ]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _two_folders(root: Path, mode_a: str, mode_b: str, resolution: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    dirs = {side: root / side for side in ("A", "B")}
    missing = [str(d) for d in dirs.values() if not d.is_dir()]
    if missing:
        raise DataPathError(
            f"layout=folders needs subfolders A/ and B/ under {str(root)!r}; missing {', '.join(missing)}"
        )
    names = {side: {p.relative_to(d).as_posix(): p for p in find_images(d)} for side, d in dirs.items()}
    only = {side: sorted(set(names[side]) - set(names[other])) for side, other in (("A", "B"), ("B", "A"))}
    if only["A"] or only["B"]:
        show = "; ".join(
            f"only in {s}/: {', '.join(v[:5])}{' ...' if len(v) > 5 else ''}" for s, v in only.items() if v
        )
        raise ValueError(f"A/ and B/ must hold the same file names (pairs are matched by name); {show}")
    common = sorted(names["A"])
    a = [_load(names["A"][n], mode_a, resolution) for n in _progress(common, f"loading {len(common)} A images")]
    b = [_load(names["B"][n], mode_b, resolution) for n in _progress(common, f"loading {len(common)} B images")]
    return a, b


@DATASETS.register("paired-folder")
def paired_folder(
    path: str,
    layout: Literal["side-by-side", "folders"] = "side-by-side",
    resolution: int = 256,
    channels_a: Literal[1, 3] = 3,
    channels_b: Literal[1, 3] = 3,
    direction: Literal["a-to-b", "b-to-a"] = "a-to-b",
    max_images: int = 0,
) -> PairedImages:
    """The user's (A, B) pairs: side-by-side images (A | B, as in the pix2pix datasets) or folders
    ``A/`` and ``B/`` with matching names; each half resized to a ``resolution`` square (bicubic).
    ``direction=b-to-a`` swaps the roles (translate B into A)."""
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    root = existing_folder(path, "paired folder", "/path/to/pairs")
    if direction == "b-to-a":
        channels_a, channels_b = channels_b, channels_a
    modes = {1: "L", 3: "RGB"}
    mode_a, mode_b = modes[channels_a], modes[channels_b]
    if layout == "side-by-side":
        files = find_images(root)
        if not files:
            raise DataPathError(f"no images found under {str(root)!r} (looked for {', '.join(EXTENSIONS)}, any case)")
        if 0 < max_images < len(files):
            files = files[:max_images]
        if direction == "b-to-a":
            b, a = _side_by_side(root, files, mode_b, mode_a, resolution)
        else:
            a, b = _side_by_side(root, files, mode_a, mode_b, resolution)
    else:
        a, b = _two_folders(root, mode_a, mode_b, resolution)
        if direction == "b-to-a":
            a, b = b, a
        if 0 < max_images < len(a):
            a, b = a[:max_images], b[:max_images]

    def stack(arrs: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()

    return PairedImages("paired-folder", stack(a), stack(b))


# -- built-in tasks ---------------------------------------------------------------------------------
def edge_map(images: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """Binary Sobel edges of uint8 (N, 1, H, W) images: 255 where the gradient magnitude exceeds
    ``threshold`` times the image's largest magnitude (relative, so blurry upscaled digits get edges
    too), else 0."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.t()]).unsqueeze(1)
    g = F.conv2d(images.float(), kernels, padding=1)
    magnitude = g.square().sum(1, keepdim=True).sqrt()
    peak = magnitude.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (magnitude > threshold * peak).to(torch.uint8) * 255


def class_colours(num_classes: int) -> torch.Tensor:
    """(K, 3) fully saturated RGB colours evenly spaced around the hue circle, one per class."""
    return torch.tensor([colorsys.hsv_to_rgb(k / num_classes, 1.0, 1.0) for k in range(num_classes)])


def square_holes(images: torch.Tensor, size: int, seed: int, fill: int = 127) -> torch.Tensor:
    """Copies of uint8 images with a ``size`` square at a seeded random position set to ``fill``."""
    n, _, h, w = images.shape
    g = make_generator(seed, StreamWord.MASKS)
    top = torch.randint(0, h - size + 1, (n,), generator=g)
    left = torch.randint(0, w - size + 1, (n,), generator=g)
    out = images.clone()
    for i in range(n):
        out[i, :, top[i] : top[i] + size, left[i] : left[i] + size] = fill
    return out


def digit_source(base: str, path: str | None, split: str, resolution: int) -> InMemoryImages:
    """The labelled digits the built-in translation tasks are made from: sklearn's (built in) or
    MNIST's (``path``)."""
    if base == "mnist":
        if path is None:
            raise ValueError("data.base=mnist needs data.path (the MNIST IDX folder), or use data.base=digits")
        return DATASETS.build("mnist", path=path, split=split, resolution=resolution)
    if path is not None:
        raise ValueError("data.path is for data.base=mnist; the digits are built in (remove data.path)")
    return DATASETS.build("digits", resolution=resolution)


@DATASETS.register("pairs")
def pairs(
    task: Literal["edges", "colour", "mask"],
    base: Literal["digits", "mnist"] = "digits",
    path: str | None = None,
    split: Literal["train", "test"] = "train",
    resolution: int = 32,
    seed: int = 0,
) -> PairedImages:
    """Built-in paired tasks on digits (built in) or MNIST (``path``): ``edges`` (Sobel edge map ->
    digit), ``colour`` (grey -> the digit in its class's colour: G must recognise the digit to colour
    it) and ``mask`` (a half-side grey square hole -> the whole digit)."""
    source = digit_source(base, path, split, resolution)
    b, labels = source.images, source.labels
    if task == "edges":
        a = edge_map(b)
    elif task == "mask":
        a = square_holes(b, max(1, resolution // 2), seed)
    else:
        colours = class_colours(source.num_classes)[labels]  # (N, 3)
        a, b = b, quantize(b.float() * colours[:, :, None, None])
    return PairedImages(f"pairs-{task}-{base}", a, b, labels, source.num_classes)
