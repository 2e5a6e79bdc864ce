"""Class conditioning layers: conditional batch norm (G) and the projection head (D)."""

from __future__ import annotations

import torch
from torch import nn


class ConditionalBatchNorm2d(nn.Module):
    """Conditional batch norm (de Vries et al. 2017; Dumoulin et al. 2017; used by Miyato & Koyama 2018):
    BN(x) without its own affine, then gamma_y * x_hat + beta_y with (gamma_y, beta_y) looked up per
    class (initialised to 1 and 0, so it starts as plain batch norm)."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.embed = nn.Embedding(num_classes, 2 * num_features)
        with torch.no_grad():
            self.embed.weight[:, :num_features].fill_(1.0)
            self.embed.weight[:, num_features:].zero_()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.embed(y).chunk(2, dim=1)
        return gamma[:, :, None, None] * self.bn(x) + beta[:, :, None, None]


class LinearConditionalBatchNorm2d(nn.Module):
    """BigGAN's conditional batch norm (Brock et al. 2019, Sec. 3 and App. B): the gains and biases are
    linear projections of a conditioning vector c (the shared class embedding concatenated with this
    block's chunk of z): gamma = 1 + W_g c, beta = W_b c, so it starts as plain batch norm."""

    def __init__(self, num_features: int, cond_dim: int) -> None:
        super().__init__()
        if cond_dim < 1:
            raise ValueError(f"conditional batch norm needs cond_dim >= 1, got {cond_dim}")
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Linear(cond_dim, num_features, bias=False)
        self.bias = nn.Linear(cond_dim, num_features, bias=False)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gamma, beta = 1.0 + self.gain(c), self.bias(c)
        return gamma[:, :, None, None] * self.bn(x) + beta[:, :, None, None]


class Projection(nn.Module):
    """The projection discriminator's class term (Miyato & Koyama 2018, Eq. 3):
    f(x, y) = psi(phi(x)) + y^T V phi(x), i.e. the inner product of a class embedding with D's features."""

    def __init__(self, num_features: int, num_classes: int, owner: str = "discriminator") -> None:
        super().__init__()
        self.owner = owner  # names the network in the error for missing labels
        self.embed = nn.Embedding(num_classes, num_features)
        nn.init.xavier_uniform_(self.embed.weight)  # as the authors' code (chainer-gan-lib)

    def forward(self, features: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if y is None:
            raise ValueError(f"{self.owner} is class-conditional (projection): call D(x, y)")
        return (self.embed(y) * features).sum(dim=1)


def one_hot(y: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot labels in the dtype and device of ``like`` (concatenation cGAN, Mirza & Osindero 2014)."""
    return nn.functional.one_hot(y, num_classes).to(like.dtype)
