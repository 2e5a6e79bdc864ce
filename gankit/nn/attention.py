"""Self-attention over feature-map positions (Zhang et al. 2019, SAGAN, Sec. 3; after Wang et al. 2018)."""

from __future__ import annotations

import torch
from torch import nn


class SelfAttention(nn.Module):
    """SAGAN's self-attention block.

    With 1x1 convs f, g, h (C -> C/8, C/8, C/2) and v (C/2 -> C) over the N = H W positions,
    beta_{j,i} = softmax_i(s_ij), s_ij = f(x_i)^T g(x_j); o_j = v(sum_i beta_{j,i} h(x_i)); the output is
    y = gamma * o + x with a learned gamma that starts at 0, so the block begins as the identity and
    lets the network learn to rely on non-local evidence. (As in the authors' code, f and h see a 2x2
    max-pooled map, which cuts the cost by 4 and changes nothing in the formula's form.)
    """

    def __init__(self, channels: int, pool: bool = True) -> None:
        super().__init__()
        if channels < 8:
            raise ValueError(f"self-attention needs >= 8 channels (C/8 queries), got {channels}")
        self.f = nn.Conv2d(channels, channels // 8, 1, bias=False)  # keys
        self.g = nn.Conv2d(channels, channels // 8, 1, bias=False)  # queries
        self.h = nn.Conv2d(channels, channels // 2, 1, bias=False)  # values
        self.v = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.pool = pool
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, hh, ww = x.shape
        pool = self.pool and hh % 2 == 0 and ww % 2 == 0
        keys, values = self.f(x), self.h(x)
        if pool:
            keys, values = nn.functional.max_pool2d(keys, 2), nn.functional.max_pool2d(values, 2)
        q = self.g(x).flatten(2)  # (N, C/8, HW)
        k = keys.flatten(2)  # (N, C/8, M)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (N, HW, M): beta_{j, i} over i
        o = (values.flatten(2) @ attn.transpose(1, 2)).view(n, c // 2, hh, ww)
        return x + self.gamma * self.v(o)
