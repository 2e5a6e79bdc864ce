"""Datasets, registered by name in ``DATASETS``; each factory returns a ``DataSource``.

``ring``, ``grid`` (2-D toy mixtures), ``digits`` (sklearn 8x8), ``mnist`` (IDX files),
``image-folder`` (any folder of images), ``npz`` (image arrays), ``stacked-mnist`` (1000 modes),
``paired-folder`` / ``pairs`` (image-to-image pairs, gankit/data/paired.py), ``patches`` (photo crops),
``unpaired-folder`` / ``unpaired`` (CycleGAN's two collections, gankit/data/unpaired.py). See
``gankit/data/base.py`` for the contract.
"""

from gankit.data import arrays, cifar, digits, folder, mnist, paired, patches, stacked, toy, unpaired  # noqa: F401  (registers the datasets)
from gankit.data.base import DATASETS, BatchStream, DataPathError, DataSource, FiniteStream, InMemoryImages
from gankit.data.folder import ImageFolderSource
from gankit.data.mnist import IDXError, read_idx
from gankit.data.toy import GaussianMixture, MixtureStream

__all__ = [
    "DATASETS",
    "BatchStream",
    "DataPathError",
    "DataSource",
    "FiniteStream",
    "GaussianMixture",
    "IDXError",
    "ImageFolderSource",
    "InMemoryImages",
    "MixtureStream",
    "read_idx",
]
