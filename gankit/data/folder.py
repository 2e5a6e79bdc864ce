"""``image-folder``: any folder of images, square-cropped and held in memory as uint8.

Each image is decoded with Pillow, its shorter side resized to ``resolution`` (bicubic, which
Pillow antialiases when shrinking) and the centre square cropped, the usual preparation of
DCGAN-style training sets (Radford et al. 2016). Class labels follow torchvision's ImageFolder
convention: the name of the folder an image sits in under the root.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import torch
from PIL import Image

from gankit.data.base import DATASETS, DataPathError, InMemoryImages

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
_PROGRESS_OVER = 500  # show a progress bar when loading more images than this
_T = TypeVar("_T")


def find_images(root: Path) -> list[Path]:
    """Every image file under ``root`` (recursive, case-insensitive suffix), sorted by relative path."""
    files = [p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def existing_folder(path: str, what: str, hint: str) -> Path:
    """``path`` (with ~ expanded) if it is a folder; else a DataPathError naming ``what`` and the fix."""
    root = Path(path).expanduser()
    if not root.is_dir():
        state = "is not a folder" if root.exists() else "does not exist"
        raise DataPathError(f"{what} {state}: {str(root)!r}; set data.path={hint}")
    return root


def class_names(root: Path, files: list[Path]) -> list[str] | None:
    """Sorted class names if every image lies in a subfolder of ``root`` and there are at least two
    such subfolders (the top-level folder is the class); otherwise None (unlabeled)."""
    tops = [p.relative_to(root).parts for p in files]
    if any(len(parts) < 2 for parts in tops):
        return None
    names = sorted({parts[0] for parts in tops})
    return names if len(names) >= 2 else None


def load_square(path: Path, resolution: int, mode: Literal["L", "RGB"]) -> np.ndarray:
    """Decode ``path``, resize its shorter side to ``resolution`` and centre-crop a square.

    Returns uint8 (H, W) for "L" or (H, W, 3) for "RGB". Raises ValueError naming an unreadable file.
    """
    img: Image.Image  # the opened file, then its converted, resized and cropped copies
    try:
        with Image.open(path) as img:
            img = img.convert(mode)  # also takes the first frame of an animated GIF
            w, h = img.size
            scale = resolution / min(w, h)
            size = (max(resolution, round(w * scale)), max(resolution, round(h * scale)))
            if size != (w, h):
                img = img.resize(size, Image.Resampling.BICUBIC)
            left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
            img = img.crop((left, top, left + resolution, top + resolution))
            return np.array(img, dtype=np.uint8)  # a writable copy, so torch.from_numpy is safe
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {str(path)!r}: {err}") from None


def _progress(items: list[_T], description: str) -> Iterable[_T]:
    if len(items) <= _PROGRESS_OVER:
        return items
    from rich.progress import track

    return track(items, description=description, transient=True)


class ImageFolderSource(InMemoryImages):
    """An ``InMemoryImages`` that also names its ``classes`` (sorted) and its source ``files``."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor | None, classes: list[str], files: list[Path]
    ) -> None:
        super().__init__("image-folder", images, labels, num_classes=len(classes))
        self.classes = classes
        self.files = files


def _report_unreadable(root: Path, errors: list[str], total: int, allowed: float) -> None:
    head = f"{len(errors)} of {total} files under {str(root)!r} cannot be read as images (first: {errors[0]})"
    if len(errors) > allowed * total or len(errors) == total:
        raise DataPathError(
            f"{head}; that is more than data.max_unreadable={allowed:g} of the folder. "
            "Remove or re-download them, or raise data.max_unreadable to skip them."
        )
    warnings.warn(f"{head}; skipped them (data.max_unreadable={allowed:g} allows it)", stacklevel=3)


@DATASETS.register("image-folder")
def image_folder(
    path: str,
    resolution: int = 64,
    channels: Literal[1, 3] = 3,
    labels: Literal["auto", "none"] = "auto",
    max_images: int = 0,
    max_unreadable: float = 0.01,
) -> ImageFolderSource:
    """Images under ``path`` (recursive), square ``resolution``; subfolders as classes when ``labels="auto"``.

    ``max_images > 0`` keeps an evenly strided subset of the sorted list (deterministic, and it
    spans every class rather than only the first ones). Class ids are always those of the full folder.
    Unreadable files (truncated downloads, a stray non-image with an image suffix) are skipped with a
    warning that counts them, as long as they are at most ``max_unreadable`` of the folder; more than
    that is an error, since the folder is then probably not what the recipe thinks it is.
    """
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    if not 0 <= max_unreadable <= 1:
        raise ValueError(f"max_unreadable is a fraction of the files, 0..1; got {max_unreadable}")
    root = existing_folder(path, "image folder", "/path/to/images")
    files = find_images(root)
    if not files:
        raise DataPathError(f"no images found under {str(root)!r} (looked for {', '.join(EXTENSIONS)}, any case)")
    classes = class_names(root, files) if labels == "auto" else None
    if 0 < max_images < len(files):
        files = [files[i * len(files) // max_images] for i in range(max_images)]

    mode: Literal["L", "RGB"] = "L" if channels == 1 else "RGB"
    images = torch.empty(len(files), channels, resolution, resolution, dtype=torch.uint8)
    unreadable: list[str] = []
    kept: list[Path] = []
    for f in _progress(files, f"loading {len(files)} images"):
        try:
            arr = load_square(f, resolution, mode)
        except ValueError as err:
            unreadable.append(str(err))
            continue
        images[len(kept)] = torch.from_numpy(arr.reshape(resolution, resolution, channels)).permute(2, 0, 1)
        kept.append(f)
    if unreadable:
        _report_unreadable(root, unreadable, len(files), max_unreadable)
    images, files = images[: len(kept)], kept

    y = None
    if classes is not None:
        index = {name: k for k, name in enumerate(classes)}
        y = torch.tensor([index[f.relative_to(root).parts[0]] for f in files], dtype=torch.int64)
    return ImageFolderSource(images, y, classes or [], files)
