"""Virtual batch normalisation (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 3.5).

Batch norm makes a sample's output depend on the other samples of its minibatch. VBN normalises each
sample x with the statistics of a *reference batch*, fixed once at the start, together with x itself:

    mu(x)   = 1/(N+1) * mean_spatial(x)   + N/(N+1) * mu_ref
    mu2(x)  = 1/(N+1) * mean_spatial(x^2) + N/(N+1) * mu2_ref
    VBN(x)  = gamma * (x - mu(x)) / sqrt(mu2(x) - mu(x)^2 + eps) + beta

where mu_ref, mu2_ref are the per-feature first and second moments of the reference batch's
activations at that layer (the reference batch itself is normalised by its own moments). The
reference batch goes through the network on every forward pass, so its statistics follow the current
weights (and carry gradients), as in the paper's code. Outputs never depend on the rest of the batch.
"""

from __future__ import annotations

import torch
from torch import nn


class VirtualBatchNorm(nn.Module):
    """One VBN layer for (N, C) or (N, C, H, W) activations; see the module docstring."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self._ref: tuple[torch.Tensor, torch.Tensor, int] | None = None  # set by the reference pass

    def _affine(self, x: torch.Tensor, mean: torch.Tensor, meansq: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        var = (meansq - mean * mean).clamp_min(0.0)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = tuple(range(2, x.ndim))
        if self._ref is None:  # the reference pass: record its moments, normalise it by them
            dims = (0, *spatial)
            mean, meansq = x.mean(dims, keepdim=True), (x * x).mean(dims, keepdim=True)
            self._ref = (mean, meansq, x.shape[0])
            return self._affine(x, mean, meansq)
        ref_mean, ref_meansq, n = self._ref
        new = 1.0 / (n + 1)
        own_mean = x.mean(spatial, keepdim=True) if spatial else x
        own_meansq = (x * x).mean(spatial, keepdim=True) if spatial else x * x
        mean = new * own_mean + (1 - new) * ref_mean
        meansq = new * own_meansq + (1 - new) * ref_meansq
        return self._affine(x, mean, meansq)


def reference_z(n: int, z_dim: int) -> torch.Tensor:
    """The fixed reference batch of z: the same for every run, and kept in checkpoints as a buffer."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(20160610))


def vbn_forward(net: nn.Module, reference: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` with every VirtualBatchNorm in ``net`` using the moments of ``net(reference)``."""
    layers = [m for m in net.modules() if isinstance(m, VirtualBatchNorm)]
    for m in layers:
        m._ref = None
    try:
        net(reference)
        return net(x)
    finally:
        for m in layers:
            m._ref = None
