"""``stacked-mnist``: three digits stacked as the R, G, B channels, 1000 modes.

Metz et al. 2017 (unrolled GAN, Sec. 3.3.2), Srivastava et al. 2017 (VEEGAN, Sec. 5.2) and Lin et
al. 2018 (PacGAN, Sec. 5.2): each image stacks three independently drawn digits, so the data has
10^3 = 1000 equally likely modes (label 100 a + 10 b + c). Modes captured by a generator are counted
by classifying each channel with a single-digit classifier (``--features classifier`` does this
automatically: it trains on ``channel_source`` and classifies the channels one by one).
"""

from __future__ import annotations

from typing import Literal

import torch

from gankit.data.base import DATASETS, InMemoryImages, make_generator
from gankit.seeds import StreamWord


class StackedImages(InMemoryImages):
    """An ``InMemoryImages`` of stacked single-channel images that knows the set it was stacked from."""

    def __init__(
        self, name: str, images: torch.Tensor, labels: torch.Tensor, num_classes: int, channel_source: InMemoryImages
    ) -> None:
        super().__init__(name, images, labels, num_classes=num_classes)
        self.channel_source = channel_source


def stack(base: InMemoryImages, num: int, channels: int = 3, seed: int = 0, name: str = "stacked") -> StackedImages:
    """``num`` images whose channels are independent uniform draws from ``base`` (1-channel, labelled)."""
    if base.shape[0] != 1 or base.labels is None:
        raise ValueError(f"stacking needs a labelled 1-channel set, got {base!r}")
    if num < 1 or channels < 1:
        raise ValueError(f"num and channels must be >= 1, got {num} and {channels}")
    idx = torch.randint(len(base), (num, channels), generator=make_generator(seed, StreamWord.STACKING))
    images = base.images[idx.reshape(-1), 0].reshape(num, channels, *base.shape[1:])
    k = base.num_classes
    labels = torch.zeros(num, dtype=torch.int64)
    for c in range(channels):  # channel 0 is the most significant digit
        labels = labels * k + base.labels[idx[:, c]]
    return StackedImages(name, images, labels, k**channels, base)


@DATASETS.register("stacked-mnist")
def stacked_mnist(
    path: str = "",
    split: Literal["train", "test"] = "train",
    resolution: int = 28,
    num: int = 0,
    seed: int = 0,
    base: Literal["mnist", "digits"] = "mnist",
) -> StackedImages:
    """Stacked MNIST: 3 random digits as RGB, 1000 modes (Metz et al. 2017; VEEGAN; PacGAN).

    ``num`` images (default: as many as the base split); ``base=digits`` stacks scikit-learn's
    built-in digits instead (offline, 16 px by default), for quick checks.
    """
    if base == "mnist":
        if not path:
            raise ValueError(
                "stacked-mnist needs data.path=/path/to/mnist (the IDX files); "
                "or data.base=digits for the built-in digits"
            )
        source = DATASETS.build("mnist", path=path, split=split, resolution=resolution)
    else:
        source = DATASETS.build("digits", resolution=resolution if resolution != 28 else 16)
    return stack(source, num or len(source), 3, seed, name="stacked-mnist")
