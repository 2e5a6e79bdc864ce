"""Mixed precision for the training step: autocast, and fp16's gradient scaling.

bf16 has float32's exponent range, so it needs autocast only. fp16 needs a ``GradScaler``
(Micikevicius et al. 2018): the loss is multiplied by a large factor before backward, so small
gradients survive fp16, and the gradients are divided again before the optimiser step; a step whose
gradients overflowed is skipped and the factor lowered. Gradient penalties take a gradient *inside*
the loss (a double backward), and that inner gradient must be scaled the same way. PyTorch's AMP
notes ("Gradient penalty") scale the output before ``autograd.grad`` and unscale the result:
``input_gradients`` does this through ``gankit.amp.penalty_scale()`` while a phase runs under fp16.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """What a phase runs under: ``amp`` none, bf16 or fp16, on ``device_type`` ("cpu", "cuda")."""

    amp: Literal["none", "bf16", "fp16"] = "none"
    device_type: str = "cpu"

    @property
    def enabled(self) -> bool:
        return self.amp != "none"

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=DTYPES[self.amp])

    def make_scaler(self) -> torch.amp.GradScaler | None:
        """One scaler per optimiser (its own skip/backoff history); None unless fp16."""
        return torch.amp.GradScaler(self.device_type) if self.amp == "fp16" else None
