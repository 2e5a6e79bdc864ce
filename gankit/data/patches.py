"""``patches``: square crops cut from photographs, for super-resolution (SRGAN trains on random
96 x 96 crops of ImageNet photos; here a fixed grid of non-overlapping crops, held in memory).

With no ``path`` the two photographs that ship with scikit-learn (``load_sample_images``: a Chinese
temple and a flower, 640 x 427 each) are used, so super-resolution runs offline with nothing else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gankit.data.base import DATASETS, DataPathError, InMemoryImages, make_generator
from gankit.data.folder import EXTENSIONS, find_images
from gankit.seeds import StreamWord


def grid(h: int, w: int, size: int, stride: int) -> list[tuple[int, int]]:
    """(top, left) of every ``size`` square on a ``stride`` grid of an h x w image, row by row."""
    return [(t, left) for t in range(0, h - size + 1, stride) for left in range(0, w - size + 1, stride)]


def cut_patches(image: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(H, W, C) uint8 -> (K, C, size, size): every ``size`` square on a ``stride`` grid, row by row."""
    out = [image[t : t + size, left : left + size] for t, left in grid(image.shape[0], image.shape[1], size, stride)]
    return np.stack(out).transpose(0, 3, 1, 2) if out else np.empty((0, image.shape[2], size, size), np.uint8)


class PatchImages(InMemoryImages):
    """Patches that remember where they were cut (``coords``: photo, top, left), so a held-out split
    can keep every training patch off the held-out pixels even when patches overlap."""

    def __init__(self, images: torch.Tensor, coords: torch.Tensor, size: int, name: str = "patches") -> None:
        super().__init__(name, images)
        self.coords, self.size = coords, size

    def subset(self, idx: torch.Tensor, name: str) -> PatchImages:
        return PatchImages(self.images.index_select(0, idx), self.coords.index_select(0, idx), self.size, name)

    def split_holdout(self, holdout: int, seed: int) -> tuple[PatchImages, PatchImages]:
        """``holdout`` patches from the non-overlapping grid (seeded); training keeps only the patches
        that share no pixel with any of them."""
        on_grid = ((self.coords[:, 1] % self.size == 0) & (self.coords[:, 2] % self.size == 0)).nonzero().flatten()
        if not 0 < holdout < len(on_grid):
            raise ValueError(
                f"data.holdout={holdout} must be between 1 and {len(on_grid) - 1} (non-overlapping patches)"
            )
        order = torch.randperm(len(on_grid), generator=make_generator(seed, StreamWord.HOLDOUT))
        test = on_grid[order[:holdout]].sort().values
        c, t = self.coords, self.coords[test]
        overlap = (
            (c[:, None, 0] == t[None, :, 0])
            & ((c[:, None, 1] - t[None, :, 1]).abs() < self.size)
            & ((c[:, None, 2] - t[None, :, 2]).abs() < self.size)
        ).any(1)
        train = (~overlap).nonzero().flatten()
        return (
            self.subset(train, f"{self.name}[-{holdout} held out]"),
            self.subset(test, f"{self.name}[{holdout} held out]"),
        )


def _photos(path: str | None, channels: int) -> list[tuple[str, np.ndarray]]:
    mode = "L" if channels == 1 else "RGB"
    if path is None:
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        arrays = [np.asarray(Image.fromarray(a).convert(mode)) for a in bunch.images]
        return list(zip((Path(f).name for f in bunch.filenames), arrays))
    root = Path(path).expanduser()
    files = [root] if root.is_file() else (find_images(root) if root.is_dir() else [])
    if not files:
        what = "holds no images" if root.is_dir() else "does not exist"
        raise DataPathError(
            f"patches: {str(root)!r} {what} (looked for {', '.join(EXTENSIONS)}); "
            "set data.path to a folder of photographs, or leave it out for the built-in two"
        )
    out = []
    for f in files:
        try:
            with Image.open(f) as img:
                out.append((f.name, np.asarray(img.convert(mode))))
        except (OSError, ValueError, SyntaxError) as err:
            raise ValueError(f"cannot read image {str(f)!r}: {err}") from None
    return out


@DATASETS.register("patches")
def patches(
    path: str | None = None, size: int = 32, stride: int = 0, channels: int = 3, max_patches: int = 0
) -> InMemoryImages:
    """``size`` squares every ``stride`` pixels (0 = ``size``: non-overlapping) cut from every photograph
    under ``path`` at its own resolution (default: scikit-learn's two sample photographs);
    ``max_patches`` > 0 keeps an evenly strided subset. With ``data.holdout`` the held-out patches
    come from the non-overlapping grid and no training patch overlaps them."""
    if size < 2 or stride < 0:
        raise ValueError(f"patches: size must be >= 2 and stride >= 0, got size={size}, stride={stride}")
    if channels not in (1, 3):
        raise ValueError(f"patches: channels must be 1 or 3, got {channels}")
    step = stride or size
    photos = [a.reshape(*a.shape[:2], channels) for _, a in _photos(path, channels)]
    cut = [cut_patches(a, size, step) for a in photos]
    coords = [(k, t, left) for k, a in enumerate(photos) for t, left in grid(a.shape[0], a.shape[1], size, step)]
    images = torch.from_numpy(np.concatenate(cut)) if coords else torch.empty(0)
    if images.shape[0] == 0:
        raise ValueError(f"patches: every photograph is smaller than size={size}; use a smaller data.size")
    where = torch.tensor(coords, dtype=torch.int64)
    if 0 < max_patches < images.shape[0]:
        keep = torch.arange(max_patches) * images.shape[0] // max_patches
        images, where = images[keep], where[keep]
    return PatchImages(images.contiguous(), where, size)
