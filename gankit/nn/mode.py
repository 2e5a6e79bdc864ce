"""``eval_mode``: run networks in eval mode for a while, then put every flag back as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode (batch norm on running statistics, no dropout) inside the block,
    and restore the training flag of every module and submodule afterwards, also when the block raises.

    Sampling and scoring happen in the middle of training: leaving a network in eval mode would
    silently change the training that follows, and ``net.train(was)`` alone would also switch on a
    submodule that was deliberately frozen in eval mode (a fixed feature extractor), so each
    submodule's own flag is recorded and restored."""
    flags = {m: m.training for module in modules for m in module.modules()}
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module in modules:
            module.train(flags[module])  # through any train() override, as the hand-written copies did
        for m, flag in flags.items():
            m.training = flag
