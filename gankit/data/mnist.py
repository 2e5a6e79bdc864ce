"""``mnist``: MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST) from a path the user gives.

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header, magic
``0x00000803`` for uint8 images then n, rows, cols as uint32, or ``0x00000801`` for uint8 labels
then n; then the raw uint8 payload. Our own reader: torchvision's MNIST class insists on its own
folder layout and on downloading. Files may be gzipped or not (detected from the content).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Literal

import torch

from gankit.data.base import DATASETS, DataPathError, InMemoryImages, resize_uint8

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
_PREFIX = {"train": "train", "test": "t10k"}
# Where the files may sit under the given folder: itself, or torchvision's download layout.
_SUBDIRS = (".", "raw", "MNIST/raw")


class IDXError(ValueError):
    """A malformed IDX file; the message names the file and the problem."""


def read_idx(path: str | Path, magic: int) -> torch.Tensor:
    """Read a uint8 IDX file (gzip or raw) and return its array, checking magic, dims and length."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise IDXError(f"{path}: corrupt or truncated gzip stream ({err})") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated file, {len(data)} bytes is shorter than the {header}-byte IDX header")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        raise IDXError(
            f"{path}: bad magic number 0x{found:08X}, expected 0x{magic:08X} "
            f"({'images' if magic == IMAGES_MAGIC else 'labels'}); is this an IDX file of the right kind?"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = 1
    for d in dims:
        expected *= d
    got = len(data) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise IDXError(f"{path}: {what}: header says {dims} = {expected} bytes of data, found {got}")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(dims)


def _candidates(prefix: str, kind: Literal["images", "labels"]) -> list[str]:
    idx = "idx3" if kind == "images" else "idx1"
    names = [f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"]
    return [n + ext for n in names for ext in ("", ".gz")]


def _find(root: Path, names: list[str]) -> Path | None:
    for sub in _SUBDIRS:
        for name in names:
            if (root / sub / name).is_file():
                return root / sub / name
    return None


def _listing(root: Path) -> str:
    entries = sorted(p.name for p in root.iterdir())
    shown = ", ".join(entries[:20]) + (f", ... ({len(entries)} entries)" if len(entries) > 20 else "")
    return shown or "(empty)"


def locate(path: str, split: str, labels: bool) -> tuple[Path, Path | None]:
    """The images file and (when ``labels``) the labels file for ``split`` under ``path``.

    ``path`` is a folder holding the files, or an images file itself (then ``split`` is ignored and
    the labels file is the sibling with ``images``/``idx3`` replaced by ``labels``/``idx1``).
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DataPathError(
            f"MNIST path does not exist: {str(root)!r}; point data.path at the folder holding the "
            f"IDX files, e.g. data.path=/path/to/mnist"
        )
    if root.is_file():
        images = root
        label_names = [root.name.replace("images", "labels").replace("idx3", "idx1")]
        label_names += [n[:-3] if n.endswith(".gz") else n + ".gz" for n in label_names]
        found = [root.parent / n for n in label_names if (root.parent / n).is_file()]
        labels_file, tried, folder = (found[0] if found else None), label_names, root.parent
    else:
        image_names = _candidates(_PREFIX[split], "images")
        found_images = _find(root, image_names)
        if found_images is None:
            raise DataPathError(
                f"no MNIST {split} images file in {str(root)!r}; tried {', '.join(image_names)} "
                f"(also under {', '.join(_SUBDIRS[1:])}/); the folder holds: {_listing(root)}"
            )
        images, tried, folder = found_images, _candidates(_PREFIX[split], "labels"), root
        labels_file = _find(root, tried)
    if labels and labels_file is None:
        raise DataPathError(
            f"no labels file next to {images.name} in {str(folder)!r} (tried {', '.join(tried)}); "
            f"add it, or set data.labels=false to train without labels"
        )
    return images, labels_file if labels else None


@DATASETS.register("mnist")
def mnist(
    path: str,
    split: Literal["train", "test"] = "train",
    resolution: int = 28,
    labels: bool = True,
) -> InMemoryImages:
    """MNIST-format IDX images (+ labels), resized with antialiased bilinear when resolution != 28."""
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    images_file, labels_file = locate(path, split, labels)
    x = read_idx(images_file, IMAGES_MAGIC).unsqueeze(1)  # (N, 1, H, W) uint8
    y = None
    if labels_file is not None:
        y = read_idx(labels_file, LABELS_MAGIC).to(torch.int64)
        if y.shape[0] != x.shape[0]:
            raise IDXError(
                f"{labels_file.name} holds {y.shape[0]} labels but {images_file.name} holds "
                f"{x.shape[0]} images; the files are from different splits or sets"
            )
    if resolution != x.shape[-1] or resolution != x.shape[-2]:
        x = resize_uint8(x, resolution)
    num_classes = int(y.max()) + 1 if y is not None else 0
    return InMemoryImages("mnist", x, y, num_classes=num_classes)
