"""Standing batch-norm statistics for an averaged generator (Brock et al. 2019, BigGAN, Sec. 3 and
App. C: "standing statistics").

An exponential moving average of G's weights (``ema``) also averages the running means and variances
of its batch-norm layers, but those are statistics of the *live* networks the average passed through,
not of the averaged weights, so an averaged G in eval mode normalises with the wrong numbers. Running
the averaged G in training mode over some batches of latents and keeping the cumulative mean of the
batch statistics (momentum None) gives it statistics of its own.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batch_norm_layers(net: nn.Module) -> list[_BatchNorm]:
    """The batch-norm layers of ``net`` that keep running statistics."""
    return [m for m in net.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def standing_statistics(
    G: nn.Module,
    z_dim: int,
    batches: int,
    batch_size: int,
    generator: torch.Generator,
    labels: torch.Tensor | None = None,
) -> int:
    """Recompute the running statistics of G's batch-norm layers as the mean over ``batches`` batches of
    ``batch_size`` latents (``z_dim`` wide) drawn from ``generator``; a conditional G gets the class ids
    ``labels`` (one per latent of a batch) with every batch. Returns the number of layers recomputed
    (0: G has none, nothing is run). G's mode is restored afterwards."""
    layers = batch_norm_layers(G)
    if not layers or batches < 1:
        return 0
    momenta = [m.momentum for m in layers]
    was_training = G.training
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
        G.train()
        device = next(G.parameters()).device
        for _ in range(batches):
            z = torch.randn(batch_size, z_dim, generator=generator).to(device)
            G(z) if labels is None else G(z, labels.to(device))
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        G.train(was_training)
    return len(layers)
