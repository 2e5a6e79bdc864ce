"""CycleGAN's networks (Zhu et al. 2017, App. 7.2) and the two-way container its family trains.

``cyclegan`` G, after Johnson et al. (2016): c7s1-64, d128, d256, R256 x ``blocks`` (9 for 256 px,
6 for 128 px), u128, u64, c7s1-C, tanh; instance norm and ReLU; reflection padding. Its Ds are
70 x 70 PatchGANs with instance norm (``patchgan`` with ``norm: instance``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from gankit.models.base import GENERATORS, assert_shape, normal_init_
from gankit.models.unet import TRANSLATION_G_INJECTED, _image
from gankit.nn.norm import check_norm, norm2d


class _ResBlock(nn.Module):
    def __init__(self, ch: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            norm2d(norm, ch),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            norm2d(norm, ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@GENERATORS.register("cyclegan", injected=TRANSLATION_G_INJECTED)
class CycleGANGenerator(nn.Module):
    """CycleGAN's generator: Johnson et al.'s residual translation network, image -> image.

    Two stride-2 downsamplings, residual blocks, two stride-2 transposed convolutions; image (C_in, H, W) ->
    image (C_out, H, W)."""

    z_dim = 0

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 64,
        blocks: int = 9,
        norm: Literal["batch", "instance", "none"] = "instance",
    ) -> None:
        super().__init__()
        model = "generator 'cyclegan'"
        c_in, h, w = _image(in_shape, "in_shape", model)
        c_out, h2, w2 = _image(out_shape, "out_shape", model)
        if (h, w) != (h2, w2) or h % 4 or w % 4:
            raise ValueError(
                f"{model} keeps the image size, which must be divisible by 4; got {tuple(in_shape)} -> "
                f"{tuple(out_shape)}"
            )
        if num_classes:
            raise ValueError(f"{model} is not class-conditional (num_classes={num_classes})")
        check_norm(norm, model)
        self.in_shape, self.out_shape, self.num_classes = (c_in, h, w), (c_out, h, w), 0
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(c_in, width, 7), norm2d(norm, width), nn.ReLU()]
        ch = width
        for _ in range(2):
            layers += [nn.Conv2d(ch, 2 * ch, 3, 2, 1), norm2d(norm, 2 * ch), nn.ReLU()]
            ch *= 2
        layers += [_ResBlock(ch, norm) for _ in range(blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1), norm2d(norm, ch // 2), nn.ReLU()]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, c_out, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        normal_init_(self, 0.02)  # as in the authors' code

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(x, [None, *self.in_shape], "input image")
        return self.net(x)


class TwoWay(nn.Module):
    """Two networks trained as one: CycleGAN's G (``ab``: A -> B, ``ba``: B -> A) or its Ds (``b``
    judges B, ``a`` judges A). One optimiser steps both, as in the authors' code."""

    # The two networks, attributes named by ``names``: G's ``ab`` and ``ba``, or D's ``b`` and ``a``.
    ab: nn.Module
    ba: nn.Module
    a: nn.Module
    b: nn.Module

    def __init__(self, first: nn.Module, second: nn.Module, names: tuple[str, str]) -> None:
        super().__init__()
        self.names = names
        self.add_module(names[0], first)
        self.add_module(names[1], second)
        self.z_dim = 0
        self.num_classes = 0

    def forward(self, *args: object, **kw: object) -> None:
        raise TypeError(f"call one of the two networks ({', '.join(self.names)}), not the pair")
