"""``cifar10``: the official "CIFAR-10 python version" batches (Krizhevsky 2009), from a user's folder.

The archive ``cifar-10-python.tar.gz`` unpacks to ``cifar-10-batches-py/`` holding ``data_batch_1`` ..
``data_batch_5`` (50,000 training images) and ``test_batch`` (10,000), each a pickled dict with
``b"data"`` (N, 3072) uint8 in channel-major order (1024 red, 1024 green, 1024 blue, rows top to
bottom) and ``b"labels"`` (N ints 0..9). The pickles are read with a restricted unpickler that builds
only dicts, lists, strings, numbers and numpy arrays: a tampered file fails with a clear error
instead of running code. Nothing is downloaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from gankit.data.base import DATASETS, DataPathError, InMemoryImages, resize_uint8

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# What numpy arrays pickle to (numpy 1.x and 2.x module names); anything else is refused.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2 (harmless: str -> bytes)
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class CifarFormatError(ValueError):
    """A CIFAR batch file that is not in the official python format."""


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise CifarFormatError(f"refusing to unpickle {module}.{name}: a CIFAR batch holds only arrays and lists")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) of one official CIFAR-10 batch file."""
    try:
        with open(path, "rb") as f:
            raw = _SafeUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        if isinstance(err, CifarFormatError):
            raise CifarFormatError(f"{path.name}: {err}") from None
        raise CifarFormatError(
            f"{path.name} is not a CIFAR-10 python batch ({err}); re-extract cifar-10-python.tar.gz"
        ) from None
    if not isinstance(raw, dict) or b"data" not in raw or b"labels" not in raw:
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise CifarFormatError(
            f"{path.name} lacks b'data'/b'labels' (found {keys}); is this CIFAR-100? "
            "gankit's cifar10 loader reads the CIFAR-10 python batches"
        )
    data = np.asarray(raw[b"data"])
    labels = np.asarray(raw[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise CifarFormatError(
            f"{path.name}: expected uint8 data (N, 3072) and N labels, got {data.dtype} {data.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise CifarFormatError(f"{path.name}: labels outside 0..9 ({labels.min()}..{labels.max()})")
    return data.reshape(-1, 3, 32, 32), labels


def _folder(path: str) -> Path:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataPathError(
            f"CIFAR-10 folder does not exist: {str(root)!r}; set data.path to the "
            "cifar-10-batches-py folder of cifar-10-python.tar.gz"
        )
    if not (root / "test_batch").is_file() and (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"  # the folder the archive was extracted into
    return root


@DATASETS.register("cifar10")
def cifar10(
    path: str, split: Literal["train", "test", "all"] = "train", resolution: int = 32, labels: bool = True
) -> InMemoryImages:
    """CIFAR-10 from the official python batches in ``path``; ``split`` train (50k), test (10k) or all."""
    root = _folder(path)
    names = {"train": TRAIN_FILES, "test": TEST_FILES, "all": TRAIN_FILES + TEST_FILES}[split]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        have = ", ".join(sorted(p.name for p in root.iterdir())[:12]) or "nothing"
        raise DataPathError(
            f"{str(root)!r} lacks {', '.join(missing)} (it holds: {have}); point data.path at "
            "the extracted cifar-10-batches-py folder"
        )
    parts = [read_batch(root / n) for n in names]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    if resolution != 32:
        x = resize_uint8(x, resolution)
    return InMemoryImages("cifar10", x, y if labels else None, num_classes=10 if labels else 0)
