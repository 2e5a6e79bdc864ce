"""Maxout discriminator (Goodfellow et al., 2013, "Maxout Networks"), the PacGAN 2-D benchmark's D.

A maxout unit is the maximum of ``pieces`` affine functions of its input,
``h_i(x) = max_{j in 1..k} (x^T W_{.ij} + b_ij)``, a learned convex piecewise-linear activation.
The original GAN used maxout discriminators (Goodfellow et al., 2014, Sec. 5), and the mode-collapse
benchmarks of VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al., 2018, Sec. 5.1 and their
code, fjxmlzn/PacGAN) use three maxout layers of 200 units with 5 pieces each on the 2-D mixtures.
No batch norm: gradient penalties (WGAN-GP) need per-sample gradients that do not couple the batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.models.base import D_INJECTED, DISCRIMINATORS, DOut, assert_shape, normal_init_, refuse_labels
from gankit.models.mlp import _check_shape
from gankit.nn.minibatch import MinibatchDiscrimination


class Maxout(nn.Module):
    """``out_features`` maxout units of ``pieces`` pieces each: Linear(in, out * pieces), then the
    max over pieces. Unit i's pieces are the consecutive outputs i*pieces .. i*pieces + pieces - 1."""

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x).view(x.shape[0], self.out_features, self.pieces)  # (N, units, pieces)
        return z.amax(dim=2)


@DISCRIMINATORS.register("maxout", injected=D_INJECTED)
class MaxoutDiscriminator(nn.Module):
    """Maxout discriminator: flatten -> ``layers`` x (Maxout(hidden, pieces) -> dropout) -> 1 logit.

    The PacGAN-paper defaults (3 layers of 200 units, 5 pieces). ``features`` are the last maxout
    activations (before dropout), for feature matching. ``minibatch_discrimination``: number of
    kernels B of a minibatch-discrimination layer before the head (Salimans et al. 2016; 0 = none).
    ``init_std`` > 0: linear weights from N(0, init_std), zero biases (PacGAN's code uses 0.02).
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int = 0,
        hidden: int = 200,
        layers: int = 3,
        pieces: int = 5,
        dropout: float = 0.0,
        minibatch_discrimination: int = 0,
        init_std: float = 0.0,
    ) -> None:
        super().__init__()
        model = "discriminator 'maxout'"
        refuse_labels(num_classes, model)
        if hidden < 1 or layers < 1 or pieces < 1:
            raise ValueError(f"{model}: hidden={hidden}, layers={layers} and pieces={pieces} must be >= 1")
        if minibatch_discrimination < 0:
            raise ValueError(f"{model}: minibatch_discrimination={minibatch_discrimination} must be >= 0")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{model}: dropout={dropout} must be in [0, 1)")
        self.in_shape = _check_shape(in_shape, "in_shape", model)
        self.num_classes = num_classes

        width = math.prod(self.in_shape)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(Maxout(width, hidden, pieces))
            width = hidden
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.mbd: nn.Module = nn.Identity()
        if minibatch_discrimination:
            mbd = MinibatchDiscrimination(width, minibatch_discrimination)
            self.mbd, width = mbd, mbd.out_features
        self.head = nn.Linear(width, 1)
        normal_init_(self, init_std)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        """(N, *in_shape) -> DOut(logits (N,), features (N, hidden)). ``y`` is unused."""
        assert_shape(x, [None, *self.in_shape], "x")
        h = x.flatten(1)
        for block in self.blocks:
            features = block(h)
            h = self.dropout(features)  # after every maxout layer, the head's input included
        return DOut(logits=self.head(self.mbd(h)).squeeze(1), features=features)
