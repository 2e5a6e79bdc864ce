"""``digits``: scikit-learn's bundled 8x8 handwritten digits, a seconds-fast smoke-test set.

``sklearn.datasets.load_digits()`` reads a CSV shipped inside the scikit-learn wheel (no
download): 1797 images, integer intensities 0..16, labels 0-9. It is the test part of the UCI
"Optical Recognition of Handwritten Digits" set (Alpaydin & Kaynak, 1998).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.data.base import DATASETS, InMemoryImages, quantize

DIGITS_MAX = 16.0  # load_digits intensities run 0..16, not 0..255


@DATASETS.register("digits")
def digits(resolution: int = 16, labels: bool = True) -> InMemoryImages:
    """sklearn's 1797 8x8 digits, bilinearly resized to ``resolution`` and stored as uint8."""
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    from sklearn.datasets import load_digits  # lazy: importing sklearn costs about a second

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).to(torch.float32).unsqueeze(1)  # (1797, 1, 8, 8), 0..16
    if resolution != x.shape[-1]:
        # Resize on the 0..16 values, then quantize once; antialias only matters when shrinking.
        x = F.interpolate(
            x,
            size=(resolution, resolution),
            mode="bilinear",
            align_corners=False,
            antialias=resolution < x.shape[-1],
        )
    y = torch.from_numpy(bunch.target).to(torch.int64) if labels else None
    return InMemoryImages("digits", quantize(x, DIGITS_MAX), y, num_classes=10)
