"""Every seed gankit derives from a user's seed, named in one place.

A run draws many independent random streams from its one ``recipe.seed``: training batches, the
latents of the sample grids, the latents scored at each evaluation, held-out splits... Each stream
needs its own number, and two purposes sharing one would draw the same values (a grid that is a
subset of the evaluation set, a held-out split equal to the first training epoch). Numbering them by
hand in each file made such a collision easy to miss; here each one has a name and a line saying what
it seeds. The values are historic: changing one changes every result drawn with it, so never renumber
a member, only add new ones.

Two mechanisms, hence two enums (one ``IntEnum`` cannot hold both: equal values would become aliases):

* ``SeedPurpose``: **offsets** added to the seed, ``torch.Generator().manual_seed(seed + offset)``
  (``seeded``). Used by the trainer for its latents. Seed s's offset k equals seed s+k's offset 0, so
  runs of neighbouring seeds share streams across purposes; prefer a ``StreamWord`` for a new purpose.
* ``StreamWord``: **words hashed** with the seed by ``gankit.data.base.make_generator(seed, word, ...)``
  (numpy ``SeedSequence``), so distinct words give unrelated streams whatever the seeds. Used by the
  data sources and the translation tasks.
"""

from __future__ import annotations

import contextlib
import enum

import torch


class SeedPurpose(enum.IntEnum):
    """Offsets added to ``recipe.seed``: ``seed_for(recipe.seed, SeedPurpose.X)``."""

    GRID_LATENTS = 1  # the fixed latents of the sample grids saved during training (Trainer.fixed_z)
    EVAL_LATENTS = 2  # the latents scored at every evaluation (Trainer.evaluate; the benchmarks score the same z)
    DENSITY_LATENTS = 3  # the latents of the final 2-D density figure (Trainer.save_density)
    SHARDING = 4  # DDP: the one global draw of latents and labels that every rank slices (distributed.Sharding)
    STANDING_STATS = 5  # the latents that recompute the EMA generator's batch-norm statistics (ema.bn_batches)
    RANK_NOISE = 1000  # a stride, not an offset: rank r seeds torch's global RNG with seed + 1000 * r (rank_seed)


class StreamWord(enum.IntEnum):
    """Purpose words for ``make_generator(seed, word, ...)``: distinct words give unrelated streams."""

    STREAM = 0  # a data source's training batches (FiniteStream, with the epoch as a third word; toy mixtures)
    EVAL = 1  # the real samples drawn for scoring (DataSource.sample_real)
    HOLDOUT = 2  # which images are held out (data.split.split_holdout; the patch grid positions held out)
    LABELLED = 3  # which images keep their labels in a semi-supervised run (data.split.labelled_subset)
    MASKS = 4  # the hole positions of the mask (inpainting) task's training pairs (data/paired.py)
    SCORE_MASKS = 5  # the held-out masks scored at every evaluation, with seed 0 (families/translation.py)
    HALVES = 6  # the A/B halving of the built-in unpaired (CycleGAN) tasks (data/unpaired.py)
    STACKING = 7  # Stacked MNIST: which digit image fills each channel (data/stacked.py)
    # `gankit translate` draws each batch's inpainting masks from make_generator(batch_start, 7): a
    # batch offset in the seed's place. It shares 7 with STACKING (an alias, kept for identical outputs);
    # the two never meet in one computation.
    TRANSLATE_MASKS = 7


def seed_for(seed: int, purpose: SeedPurpose) -> int:
    """The seed of ``purpose`` for a run seeded ``seed`` (``seed + purpose``)."""
    if purpose is SeedPurpose.RANK_NOISE:
        raise ValueError("RANK_NOISE is a stride per rank: use rank_seed(seed, rank)")
    return seed + int(purpose)


def seeded(seed: int, purpose: SeedPurpose) -> torch.Generator:
    """A CPU generator seeded ``seed_for(seed, purpose)``."""
    return torch.Generator().manual_seed(seed_for(seed, purpose))


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s global RNG in a multi-process run (rank 0 keeps ``seed``): per-sample
    noise (dropout, penalty interpolation, instance noise) independent across ranks."""
    return seed + int(SeedPurpose.RANK_NOISE) * rank


def rng_untouched(device: torch.device | str = "cpu") -> contextlib.AbstractContextManager[None]:
    """A block whose use of torch's global RNG (CPU, and ``device``'s when it is a CUDA device) is undone
    on exit. Evaluating mid-run builds networks (a cached classifier is constructed, and so initialised,
    before its weights load) and may train probes: without this, a run's trajectory depended on
    ``eval.every``."""
    dev = torch.device(device)
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    return torch.random.fork_rng(devices=cuda)
