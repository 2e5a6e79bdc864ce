"""Encoders x -> z, for the bidirectional families (BiGAN / ALI's E, VEEGAN's reconstructor F)."""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.models.base import ENCODERS, assert_shape, normal_init_
from gankit.models.mlp import Activation, _check_hidden, _check_shape, make_activation


@ENCODERS.register("mlp-encoder", injected=("in_shape", "z_dim"))
class MLPEncoder(nn.Module):
    """Deterministic MLP encoder: flatten -> Linear/[BN]/activation stack -> z (N, z_dim).

    BiGAN (Donahue et al. 2017, Sec. 3) and ALI (Dumoulin et al. 2017) learn E jointly with G so that
    (x, E(x)) and (G(z), z) become indistinguishable; VEEGAN (Srivastava et al. 2017, Sec. 3) trains
    its reconstructor F_gamma the same shape of network with ||z - F(G(z))||^2. The latent size is the
    generator's ``z_dim``, which the framework passes in.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        z_dim: int,
        hidden: list[int] = [256, 256],  # noqa: B006  (never mutated; list for YAML)
        activation: Activation = "leaky-relu",
        batch_norm: bool = False,
        init_std: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_shape = _check_shape(in_shape, "in_shape", "encoder 'mlp-encoder'")
        self.z_dim = int(z_dim)
        layers: list[nn.Module] = []
        width = math.prod(self.in_shape)
        for h in _check_hidden(hidden, "encoder 'mlp-encoder'"):
            layers.append(nn.Linear(width, h, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(make_activation(activation))
            width = h
        layers.append(nn.Linear(width, self.z_dim))
        self.net = nn.Sequential(*layers)
        normal_init_(self.net, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, *in_shape) -> (N, z_dim)."""
        assert_shape(x, [None, *self.in_shape], "x")
        return self.net(x.flatten(1))
