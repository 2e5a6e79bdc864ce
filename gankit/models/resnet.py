"""ResNet generator and discriminator of SN-GAN (Miyato et al. 2018, App. B) and WGAN-GP (Gulrajani et
al. 2017, App. F), with an optional SAGAN self-attention block (Zhang et al. 2019) at one resolution.

Width tables, not a class per resolution: ``G_TABLE[R]`` gives the start resolution and the channel
multipliers of each up block; ``D_TABLE[R]`` the multipliers and which blocks halve the map. With
``width`` = 64, R = 32 gives SN-GAN's 256-channel G and D blocks; R = 48 and 64 give the 512 -> 64
pyramids of its STL-10 and ImageNet models. Spectral norm comes from the ``spectral-norm`` penalty
(``penalties: [{name: spectral-norm}]``), applied to every layer after construction.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from gankit.models.base import D_INJECTED, DISCRIMINATORS, G_INJECTED, GENERATORS, DOut, assert_shape
from gankit.nn.attention import SelfAttention
from gankit.nn.conditional import Projection
from gankit.nn.resblocks import DBlock, GBlock

# resolution -> (start resolution, [(in multiplier, out multiplier) per up block])
G_TABLE: dict[int, tuple[int, list[tuple[int, int]]]] = {
    16: (4, [(4, 4), (4, 4)]),
    32: (4, [(4, 4), (4, 4), (4, 4)]),
    48: (6, [(8, 4), (4, 2), (2, 1)]),
    64: (4, [(16, 8), (8, 4), (4, 2), (2, 1)]),
}
# resolution -> [(out multiplier, halves the map) per block]
D_TABLE: dict[int, list[tuple[int, bool]]] = {
    16: [(4, True), (4, True), (4, False)],
    32: [(4, True), (4, True), (4, False), (4, False)],
    48: [(1, True), (2, True), (4, True), (8, False), (16, False)],
    64: [(1, True), (2, True), (4, True), (8, True), (16, False)],
}


def _image(shape: tuple[int, ...], table: dict, model: str) -> tuple[int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in table or shape[0] < 1:
        raise ValueError(f"{model}: shape {shape} is not supported; use (C, R, R) with R one of {sorted(table)}")
    return shape[0], shape[1]


def _check(num_classes: int, attention: int, table_res: list[int], model: str) -> None:
    if num_classes < 0:
        raise ValueError(f"{model}: num_classes={num_classes} must be >= 0")
    if attention and attention not in table_res:
        raise ValueError(
            f"{model}: attention={attention} is not a feature-map resolution of this network; "
            f"use 0 (none) or one of {table_res}"
        )


def _init(module: nn.Module, init: str) -> None:
    if init == "xavier":  # SN-GAN's and SAGAN's code: Xavier-uniform weights, zero biases
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


@GENERATORS.register("resnet", injected=G_INJECTED)
class ResNetGenerator(nn.Module):
    """SN-GAN / WGAN-GP ResNet generator: z -> Linear -> s x s -> up blocks -> BN, ReLU, conv3x3, tanh.

    With ``num_classes`` > 0 the blocks' batch norms are class-conditional (Miyato & Koyama 2018)."""

    def __init__(
        self,
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        z_dim: int = 128,
        width: int = 64,
        attention: int = 0,
        init: Literal["xavier", "default"] = "xavier",
    ) -> None:
        super().__init__()
        model = "generator 'resnet'"
        c, res = _image(out_shape, G_TABLE, model)
        start, mults = G_TABLE[res]
        resolutions = [start * 2 ** (i + 1) for i in range(len(mults))]
        _check(num_classes, attention, resolutions[:-1], model)
        if z_dim <= 0 or width < 2:
            raise ValueError(f"{model}: z_dim={z_dim} and width={width} must be positive (width >= 2)")
        self.out_shape, self.z_dim, self.num_classes = (c, res, res), z_dim, num_classes
        self.start, self.ch0 = start, mults[0][0] * width
        self.linear = nn.Linear(z_dim, start * start * self.ch0)
        blocks: list[nn.Module] = []
        for (m_in, m_out), r in zip(mults, resolutions):
            blocks.append(GBlock(m_in * width, m_out * width, num_classes=num_classes))
            if r == attention:
                blocks.append(SelfAttention(m_out * width))
        self.blocks = nn.Sequential(*blocks)
        last = mults[-1][1] * width
        self.out = nn.Sequential(nn.BatchNorm2d(last), nn.ReLU(), nn.Conv2d(last, c, 3, 1, 1), nn.Tanh())
        _init(self, init)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(N, z_dim) -> (N, C, R, R) in [-1, 1]."""
        assert_shape(z, [None, self.z_dim], "z")
        h = self.linear(z).view(z.shape[0], self.ch0, self.start, self.start)
        if self.num_classes:
            if y is None:
                raise ValueError("generator 'resnet' is class-conditional: call G(z, y)")
            for block in self.blocks:
                h = block(h, y) if isinstance(block, GBlock) else block(h)
            return self.out(h)
        return self.out(self.blocks(h))


@DISCRIMINATORS.register("resnet", injected=D_INJECTED)
class ResNetDiscriminator(nn.Module):
    """SN-GAN ResNet discriminator: optimized block, residual down blocks, ReLU, global sum pooling, linear.

    With ``num_classes`` > 0 it is the projection discriminator (Miyato & Koyama 2018, Eq. 3):
    logits = psi(phi(x)) + embed(y)^T phi(x)."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 64,
        attention: int = 0,
        init: Literal["xavier", "default"] = "xavier",
        conditioning: Literal["projection", "auxiliary"] = "projection",
    ) -> None:
        """``conditioning`` (with num_classes > 0): ``projection`` (Miyato & Koyama 2018) or
        ``auxiliary``, a class head on the features for AC-GAN (Odena et al. 2017)."""
        super().__init__()
        model = "discriminator 'resnet'"
        if conditioning not in ("projection", "auxiliary"):
            raise ValueError(f"{model}: conditioning={conditioning!r}; valid choices: projection, auxiliary")
        c, res = _image(in_shape, D_TABLE, model)
        table = D_TABLE[res]
        resolutions, r = [], res
        for _, down in table:
            r = r // 2 if down else r
            resolutions.append(r)
        _check(num_classes, attention, resolutions[:-1], model)
        if width < 2:
            raise ValueError(f"{model}: width={width} must be >= 2")
        self.in_shape, self.num_classes = (c, res, res), num_classes
        blocks: list[nn.Module] = []
        ch = c
        for i, ((mult, down), r) in enumerate(zip(table, resolutions)):
            blocks.append(DBlock(ch, mult * width, down=down, first=i == 0))
            ch = mult * width
            if r == attention:
                blocks.append(SelfAttention(ch))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(ch, 1)
        self.projection = Projection(ch, num_classes, model) if num_classes and conditioning == "projection" else None
        self.classifier = nn.Linear(ch, num_classes) if num_classes and conditioning == "auxiliary" else None
        _init(self, init)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        """(N, C, R, R) -> DOut(logits (N,), features (N, channels) after global sum pooling)."""
        assert_shape(x, [None, *self.in_shape], "x")
        h = torch.relu(self.blocks(x)).sum(dim=(2, 3))
        logits = self.head(h).squeeze(1)
        if self.projection is not None:
            logits = logits + self.projection(h, y)
        class_logits = self.classifier(h) if self.classifier is not None else None
        return DOut(logits=logits, features=h, class_logits=class_logits)
