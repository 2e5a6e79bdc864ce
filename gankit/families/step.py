"""The step contract between the trainer and a family: phases, the batch and the step context.

A family turns a recipe into a list of :class:`Phase` (cadence as data, after StyleGAN2-ADA's
``training_loop``: n_critic, lazy regularisation and G/D alternation are numbers here, never branches
in the loop). The trainer, not the family, draws each phase's real batch and calls the phase's loss
with it and a :class:`StepContext`, so a family never reaches for data or for the trainer's state,
and a trick gets what it needs from the same two arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn


@dataclass
class Batch:
    """One real batch as the trainer drew it, already on the training device.

    ``derive`` memoises what a family computes from it (a translation family's (input, target) pair with
    its random masks), so a phase that reuses the batch (``Phase.batch = "reuse"``) sees the very same
    derived tensors, with no second draw of the global RNG.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)

    def derive(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]

    def labels(self, family: str) -> torch.Tensor:
        """The labels, or a clear error for a family that needs them."""
        if self.y is None:
            raise ValueError(f"family {family!r} needs labels, but the data source gave none")
        return self.y


@dataclass
class StepContext:
    """What the trainer tells a family's loss about the current step.

    ``step`` is the generator step (annealed tricks, lazy penalties and pre-training read it);
    ``logging`` is False on steps whose terms are not logged (diagnostics-only terms are skipped);
    ``batch_size`` is the size of every real batch of the run, which G batches match; latents and
    labels come from :meth:`noise` and :meth:`labels`: the global RNG (which checkpoints keep), or
    under DDP one global draw sliced per rank (``sharding``).
    """

    device: torch.device
    batch_size: int
    step: int = 0
    logging: bool = True
    sharding: Any = None
    last_batch: Batch | None = None  # the latest batch drawn this step (``Phase.batch = "reuse"``)

    def noise(self, n: int, dim: int) -> torch.Tensor:
        """Latents z ~ N(0, I), (n, dim)."""
        if self.sharding is not None:
            return self.sharding.randn(n, dim, self.device)
        return torch.randn(n, dim, device=self.device)

    def labels(self, n: int, num_classes: int) -> torch.Tensor:
        """Class labels drawn uniformly, (n,)."""
        if self.sharding is not None:
            return self.sharding.randint(num_classes, n, self.device)
        return torch.randint(num_classes, (n,), device=self.device)


LossFn = Callable[[Batch | None, StepContext], dict[str, torch.Tensor]]
BatchRule = Literal["fresh", "reuse", "none"]


@dataclass
class Phase:
    name: str  # "D" or "G": also the prefix of its logged terms
    module: nn.Module  # the network this phase trains
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn  # (batch, ctx) -> {"loss": total, other named terms ...}
    frozen: tuple[nn.Module, ...] = ()  # networks that must not accumulate gradients here
    repeats: int = 1  # e.g. n_critic discriminator updates per generator update
    interval: int = 1  # run on generator steps where step % interval == 0
    start: int = 0  # and step >= start (SRGAN's D waits while G pre-trains on the content loss)
    post_step: tuple[Callable[[], None], ...] = field(default_factory=tuple)  # e.g. weight clipping
    scaler: torch.amp.GradScaler | None = None  # fp16 loss scaling; set by the trainer
    # The real batch each loss call gets: a fresh one, the one an earlier phase drew this step (pix2pix's
    # G trains on the batch D just saw, as in the authors' code; fresh when D did not run), or none.
    batch: BatchRule = "fresh"

    def __post_init__(self) -> None:
        # Parameter lists walked once: module.parameters() recurses through every submodule, and at
        # the toy benchmark's 12 ms steps those walks were most of what gankit added to a plain loop.
        self.params = [p for p in self.module.parameters()]
        self.frozen_params = [p for m in self.frozen for p in m.parameters()]
