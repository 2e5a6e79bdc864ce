"""Unpaired image sets for CycleGAN: a collection A and a collection B of the same image size, with
no correspondence between them (their sizes may differ).

A stream draws a batch from each side independently (two resumable ``FiniteStream``s) and stacks
them on the channel axis, A first, so the trainer's one-stream contract holds; ``shape`` is B's and
``in_shape`` A's, as for paired data.

* ``unpaired-folder``: the user's two folders (``trainA``/``trainB`` as in the CycleGAN datasets, or
  ``A``/``B``).
* ``unpaired``: built-in tasks on digits or MNIST: the set is shuffled and halved, and the second
  half transformed, so no B image is the twin of an A image: ``invert`` (MNIST <-> inverted MNIST) and
  ``rotate`` (MNIST <-> MNIST turned 90 degrees). Labels are kept for the class-agreement score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from gankit.data.base import DATASETS, DataPathError, DataSource, FiniteStream, InMemoryImages, make_generator
from gankit.data.folder import _progress, existing_folder, find_images, load_square
from gankit.seeds import StreamWord


class UnpairedStream:
    """Independent batches of A and B, stacked on channels; resumable as two finite streams."""

    def __init__(self, a: InMemoryImages, b: InMemoryImages, batch_size: int, seed: int) -> None:
        self.a = FiniteStream(a.images, None, batch_size, seed)
        self.b = FiniteStream(b.images, None, batch_size, seed + 1)  # side k streams from seed + k

    def next(self) -> tuple[torch.Tensor, None]:
        return torch.cat([self.a.next()[0], self.b.next()[0]], dim=1), None

    def state_dict(self) -> dict[str, Any]:
        return {"a": self.a.state_dict(), "b": self.b.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.a.load_state_dict(state["a"])
        self.b.load_state_dict(state["b"])


class UnpairedImages(DataSource):
    """Two finite image sets A and B of one spatial size."""

    kind: Literal["image", "points"] = "image"

    def __init__(self, name: str, a: InMemoryImages, b: InMemoryImages) -> None:
        if a.shape[1:] != b.shape[1:]:
            raise ValueError(f"A and B images must have one size: A {a.shape}, B {b.shape}; set data.resolution")
        self.name, self.a, self.b = name, a, b
        self.shape, self.in_shape = tuple(b.shape), tuple(a.shape)
        self.num_classes = 0  # labels, where there are some, belong to a and b

    def __len__(self) -> int:
        return len(self.a) + len(self.b)

    def stream(self, batch_size: int, seed: int) -> UnpairedStream:
        return UnpairedStream(self.a, self.b, batch_size, seed)

    def sample_real(self, n: int, seed: int = 0) -> tuple[torch.Tensor, None]:
        return self.b.sample_real(n, seed)[0], None

    def split_holdout(self, holdout: int, seed: int) -> tuple[UnpairedImages, UnpairedImages]:
        """``holdout`` images of each side kept apart (so 2 x holdout in all)."""
        from gankit.data.split import split_holdout

        parts = [split_holdout(side, holdout, seed + k) for k, side in enumerate((self.a, self.b))]
        return (
            UnpairedImages(f"{self.name}[-{holdout} held out]", parts[0][0], parts[1][0]),
            UnpairedImages(f"{self.name}[{holdout} held out]", parts[0][1], parts[1][1]),
        )


def _side(root: Path, split: str, side: str) -> Path:
    for name in (f"{split}{side}", side):
        if (root / name).is_dir():
            return root / name
    raise DataPathError(
        f"no folder {split}{side}/ or {side}/ under {str(root)!r}; an unpaired set holds two "
        "folders of images, trainA/ and trainB/ (or A/ and B/)"
    )


@DATASETS.register("unpaired-folder")
def unpaired_folder(
    path: str,
    split: Literal["train", "test"] = "train",
    resolution: int = 256,
    channels_a: Literal[1, 3] = 3,
    channels_b: Literal[1, 3] = 3,
    max_images: int = 0,
) -> UnpairedImages:
    """Two folders of unpaired images (``trainA``/``trainB``, ``testA``/``testB`` or ``A``/``B``),
    each image resized and centre-cropped to a ``resolution`` square."""
    root = existing_folder(path, "unpaired folder", "/path/to/set")
    sides = []
    for side, channels in (("A", channels_a), ("B", channels_b)):
        folder = _side(root, split, side)
        files = find_images(folder)
        if not files:
            raise DataPathError(f"no images in {str(folder)!r}")
        if 0 < max_images < len(files):
            files = files[:max_images]
        mode: Literal["L", "RGB"] = "L" if channels == 1 else "RGB"
        arr = np.stack(
            [
                load_square(f, resolution, mode).reshape(resolution, resolution, channels)
                for f in _progress(files, f"loading {len(files)} {side} images")
            ]
        )
        sides.append(InMemoryImages(f"unpaired-{side}", torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()))
    return UnpairedImages("unpaired-folder", *sides)


@DATASETS.register("unpaired")
def unpaired(
    task: Literal["invert", "rotate"],
    base: Literal["digits", "mnist"] = "digits",
    path: str | None = None,
    split: Literal["train", "test"] = "train",
    resolution: int = 32,
    seed: int = 0,
) -> UnpairedImages:
    """Built-in unpaired tasks: digits (or MNIST, ``path``) as A, the other half of them inverted
    (``invert``) or turned 90 degrees anticlockwise (``rotate``) as B."""
    from gankit.data.paired import digit_source

    source = digit_source(base, path, split, resolution)
    perm = torch.randperm(len(source), generator=make_generator(seed, StreamWord.HALVES))
    half = len(source) // 2
    a, b = source.subset(perm[:half].sort().values, "A"), source.subset(perm[half:].sort().values, "B")
    b_images = 255 - b.images if task == "invert" else torch.rot90(b.images, 1, dims=(2, 3)).contiguous()
    b = InMemoryImages(f"{task}ed", b_images, b.labels, b.num_classes)
    return UnpairedImages(f"unpaired-{task}-{base}", a, b)
