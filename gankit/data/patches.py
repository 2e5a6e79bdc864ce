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

from gankit.data.base import DATASETS, DataPathError, InMemoryImages
from gankit.data.folder import EXTENSIONS, find_images


def cut_patches(image: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(H, W, C) uint8 -> (K, C, size, size): every ``size`` square on a ``stride`` grid, row by row."""
    h, w = image.shape[:2]
    tops, lefts = range(0, h - size + 1, stride), range(0, w - size + 1, stride)
    out = [image[t : t + size, left : left + size] for t in tops for left in lefts]
    return np.stack(out).transpose(0, 3, 1, 2) if out else np.empty((0, image.shape[2], size, size), np.uint8)


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
        raise DataPathError(f"patches: {str(root)!r} {what} (looked for {', '.join(EXTENSIONS)}); "
                            "set data.path to a folder of photographs, or leave it out for the built-in two")
    out = []
    for f in files:
        try:
            with Image.open(f) as img:
                out.append((f.name, np.asarray(img.convert(mode))))
        except (OSError, ValueError, SyntaxError) as err:
            raise ValueError(f"cannot read image {str(f)!r}: {err}") from None
    return out


@DATASETS.register("patches")
def patches(path: str | None = None, size: int = 32, stride: int = 0, channels: int = 3, max_patches: int = 0
            ) -> InMemoryImages:
    """Non-overlapping (``stride`` 0 = ``size``) ``size`` squares cut from every photograph under
    ``path`` at its own resolution (default: scikit-learn's two sample photographs); ``max_patches`` >
    0 keeps an evenly strided subset."""
    if size < 2 or stride < 0:
        raise ValueError(f"patches: size must be >= 2 and stride >= 0, got size={size}, stride={stride}")
    if channels not in (1, 3):
        raise ValueError(f"patches: channels must be 1 or 3, got {channels}")
    cut = [cut_patches(a.reshape(*a.shape[:2], channels), size, stride or size) for _, a in _photos(path, channels)]
    images = torch.from_numpy(np.concatenate(cut)) if cut else torch.empty(0)
    if images.shape[0] == 0:
        raise ValueError(f"patches: every photograph is smaller than size={size}; use a smaller data.size")
    if 0 < max_patches < images.shape[0]:
        images = images[torch.arange(max_patches) * images.shape[0] // max_patches]
    return InMemoryImages("patches", images.contiguous())
