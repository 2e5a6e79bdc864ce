"""Calling a family's loss terms by hand in tests, as the trainer does: a ``Batch`` and a ``StepContext``."""

import torch

from gankit.families import Batch, StepContext


def context(batch_size=16, z=None, labels=None, step=0, logging=True):
    """A CPU step context; ``z`` / ``labels`` fix what ``ctx.noise`` / ``ctx.labels`` return."""
    ctx = StepContext(torch.device("cpu"), batch_size, step=step, logging=logging)
    if z is not None:
        ctx.noise = lambda n, dim: z
    if labels is not None:
        ctx.labels = lambda n, k: labels
    return ctx


def batch(x, y=None):
    return Batch(x, y)
