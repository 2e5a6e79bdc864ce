"""Splits that any finite labelled dataset supports, set as data options in a recipe:

* ``holdout: N`` keeps N images out of training, for a test score (semi-supervised test error);
* ``labels_per_class: k`` keeps the labels of k training images per class for the semi-supervised
  family (Salimans et al. 2016 use 100 MNIST labels: k = 10); the rest are trained on unlabelled.

Both are drawn from fixed seeded permutations, so a recipe names the same split on every machine.
"""

from __future__ import annotations

import torch

from gankit.data.base import InMemoryImages, make_generator, to_float
from gankit.seeds import StreamWord

SPLIT_OPTIONS = ("holdout", "labels_per_class")


def split_holdout(source: object, holdout: int, seed: int) -> tuple[InMemoryImages, InMemoryImages]:
    """(training part, held-out part) of a finite image set, by a permutation seeded with ``seed``
    (an unpaired set splits each of its sides)."""
    split = getattr(source, "split_holdout", None)
    if callable(split):
        return split(holdout, seed)
    if not isinstance(source, InMemoryImages):
        raise ValueError(f"data.holdout needs a finite image dataset; {getattr(source, 'name', source)!r} is not one")
    n = len(source)
    if not 0 < holdout < n:
        raise ValueError(f"data.holdout={holdout} must be between 1 and {n - 1} (the dataset has {n} images)")
    perm = torch.randperm(n, generator=make_generator(seed, StreamWord.HOLDOUT))
    train, test = perm[holdout:].sort().values, perm[:holdout].sort().values
    return (
        source.subset(train, f"{source.name}[-{holdout} held out]"),
        source.subset(test, f"{source.name}[{holdout} held out]"),
    )


def labelled_subset(source: object, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` images of every class with their labels, as float images in [-1, 1] and int64
    labels; a seeded choice, so the same recipe always labels the same images."""
    if not isinstance(source, InMemoryImages) or source.labels is None or source.num_classes < 1:
        name = getattr(source, "name", source)
        raise ValueError(f"data.labels_per_class needs a finite labelled image dataset; {name!r} is not one")
    perm = torch.randperm(len(source), generator=make_generator(seed, StreamWord.LABELLED))
    chosen = []
    for k in range(source.num_classes):
        idx = perm[source.labels.index_select(0, perm) == k][:per_class]
        if len(idx) < per_class:
            raise ValueError(f"data.labels_per_class={per_class}, but class {k} has only {len(idx)} training images")
        chosen.append(idx)
    idx = torch.cat(chosen)
    return to_float(source.images.index_select(0, idx)), source.labels.index_select(0, idx)
