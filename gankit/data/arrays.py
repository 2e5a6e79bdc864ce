"""``npz``: image arrays in a numpy ``.npz`` file (what ``gankit sample`` writes, MedMNIST, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gankit.data.base import DATASETS, DataPathError, InMemoryImages, resize_uint8


@DATASETS.register("npz")
def npz(path: str, key: str = "images", labels_key: str = "labels", resolution: int = 0) -> InMemoryImages:
    """uint8 images (N, H, W), (N, H, W, C) or (N, C, H, W) from an .npz, with labels when present.

    ``resolution`` > 0 resizes to resolution x resolution (antialiased bilinear; MedMNIST's 28 -> 32
    for the power-of-two architectures); 0 keeps the stored size.

    Read with ``allow_pickle=False``: an .npz holding pickled objects is refused, never executed.
    MedMNIST files work with ``key=train_images labels_key=train_labels`` (or val_/test_).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataPathError(f"npz file does not exist: {str(p)!r}; set data.path=/path/to/file.npz")
    with np.load(p, allow_pickle=False) as z:
        if key not in z.files:
            raise ValueError(f"{p.name} has no array {key!r}; its arrays: {', '.join(z.files)} (set data.key=...)")
        x = z[key]
        y = z[labels_key] if labels_key in z.files else None
    if x.dtype != np.uint8:
        raise ValueError(
            f"{p.name}[{key!r}] is {x.dtype}; gankit reads images as uint8 0..255 "
            "(convert with (x * 255).round().astype(np.uint8) for [0, 1] floats)"
        )
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if x.ndim != 4 or x.shape[1] not in (1, 3, 4):
        raise ValueError(f"{p.name}[{key!r}] has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W)")
    x = x[:, :3]  # drop alpha
    labels = None
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{p.name}: {y.shape[0]} labels for {x.shape[0]} images")
        labels = torch.from_numpy(y.astype(np.int64))
    images = torch.from_numpy(np.ascontiguousarray(x))
    if resolution < 0:
        raise ValueError(f"npz resolution must be >= 0 (0 keeps the stored size), got {resolution}")
    if resolution and images.shape[-2:] != (resolution, resolution):
        images = resize_uint8(images, resolution)
    if labels is not None and len(labels) and int(labels.min()) < 0:
        raise ValueError(
            f"{p.name}[{labels_key!r}] holds negative labels (the first at index "
            f"{int((labels < 0).nonzero()[0])}); class ids must count from 0"
        )
    num_classes = int(labels.max()) + 1 if labels is not None else 0
    return InMemoryImages("npz", images, labels, num_classes=num_classes)
