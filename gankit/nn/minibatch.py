"""Layers that let the discriminator look at a whole minibatch, so a collapsed G is easy to spot."""

from __future__ import annotations

import torch
from torch import nn


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, Sec. 3.2).

    With features f(x_i) in R^A and a learned tensor T in R^(A x B x C): M_i = f(x_i) T in R^(B x C),
    c_b(x_i, x_j) = exp(-||M_i,b - M_j,b||_1), o(x_i)_b = sum_{j != i} c_b(x_i, x_j). The output is
    [f(x_i), o(x_i)] in R^(A + B). (The paper's sum includes j = i, which only adds the constant 1.)
    """

    def __init__(self, in_features: int, num_kernels: int = 50, kernel_dim: int = 5) -> None:
        super().__init__()
        self.num_kernels, self.kernel_dim = num_kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) * 0.1)
        self.out_features = in_features + num_kernels

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = (f @ self.T).view(-1, self.num_kernels, self.kernel_dim)  # (N, B, C)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # (N, N, B)
        o = torch.exp(-l1).sum(1) - 1.0  # drop the j = i term, exp(0) = 1
        return torch.cat([f, o], dim=1)


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN, Sec. 3): the standard deviation of
    every feature over groups of ``group_size`` samples, averaged to one number per group and
    appended as one extra channel (images) or feature (vectors)."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"minibatch stddev group_size must be >= 1, got {group_size}")
        self.group_size = group_size

    def group(self, n: int) -> int:
        """The group size for a batch of ``n`` (the whole batch when smaller); ValueError when it does not
        divide ``n``."""
        g = min(self.group_size, n)
        if n % g:
            raise ValueError(f"minibatch stddev: batch {n} is not divisible by group size {g}")
        return g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        g = self.group(n)
        y = x.reshape(g, n // g, *x.shape[1:])  # sample i sits in group i mod (n / g), as in ProGAN
        # the variance written out, in float32 or wider: torch.var over dim 0 of this strided view in bf16
        # (CPU autocast) took 0.7 ms a call; with its double backward (R1) 4 % of R3GAN's CPU step
        y = y.to(torch.promote_types(y.dtype, torch.float32))
        std = ((y - y.mean(0)).square().mean(0) + 1e-8).sqrt()  # (n/g, ...)
        stat = std.flatten(1).mean(1).to(x.dtype)  # one number per group
        stat = stat.repeat(g)  # back to (n,), in the same interleaved order
        extra = stat.view(n, 1, *([1] * (x.ndim - 2))).expand(n, 1, *x.shape[2:])
        out = torch.cat([x, extra], dim=1)
        if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            # cat returns NCHW here; left so, every convolution after it (and their backward, through
            # the whole D) mixes layouts, which made R3GAN's step 1.2x slower on the CPU (perf.channels_last)
            out = out.contiguous(memory_format=torch.channels_last)
        return out


def check_groups(module: nn.Module, rows: int) -> None:
    """Raise ValueError, before anything trains, when a minibatch-stddev layer of ``module`` cannot split
    the ``rows`` samples it will see into its groups (the layer would fail at the first step)."""
    for name, layer in module.named_modules():
        if not isinstance(layer, MinibatchStdDev):
            continue
        try:
            layer.group(rows)
        except ValueError:
            raise ValueError(
                f"D's minibatch stddev ({name}) takes groups of {min(layer.group_size, rows)} samples, which do "
                f"not divide the {rows} rows D sees a step; use a schedule.batch_size (per rank and micro-batch) "
                "that they divide, or a smaller group in the discriminator's options"
            ) from None
