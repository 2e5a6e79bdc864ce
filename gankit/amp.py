"""The fp16 loss scale, exposed to gradient penalties while a phase computes its loss.

fp16 training multiplies the loss by a large factor before backward (``torch.amp.GradScaler``,
Micikevicius et al. 2018). A gradient penalty takes a gradient *inside* the loss (a double backward),
and that inner gradient must be scaled the same way (PyTorch's AMP notes, "Gradient penalty"): the
penalty scales its output before ``autograd.grad`` and unscales the result. The ground floor of the
layers, so that the penalties can read the scale the training step sets without importing the trainer.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

_SCALE: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("gankit_grad_scale", default=None)


def penalty_scale() -> torch.Tensor | None:
    """The current fp16 loss scale (a device tensor: no host sync), or None outside fp16 phases."""
    return _SCALE.get()


@contextlib.contextmanager
def scaling(scaler: torch.amp.GradScaler | None, device: torch.device) -> Iterator[None]:
    """Expose ``scaler``'s factor to gradient penalties while a phase computes its loss."""
    if scaler is None:
        yield
        return
    token = _SCALE.set(scaler.scale(torch.ones((), device=device)))
    try:
        yield
    finally:
        _SCALE.reset(token)
