"""The U-Net generator of pix2pix (Isola et al. 2017, Sec. 3.2.1, App. 6.1.1).

An encoder-decoder whose decoder layer i also receives encoder layer n - i's maps (skip connections),
so low-level structure shared by input and output (edges, positions) bypasses the bottleneck.
Encoder: C64-C128-C256-C512-C512-... (Conv 4x4 stride 2, LeakyReLU 0.2, norm on all but the first
and the innermost); decoder: ReLU, ConvTranspose 4x4 stride 2, norm, dropout 0.5 on the first three
decoder layers (pix2pix's only noise source: "we provide noise only in the form of dropout"),
then tanh. Weights ~ N(0, 0.02).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from gankit.models.base import GENERATORS, assert_shape
from gankit.models.dcgan import dcgan_init_
from gankit.nn.norm import check_norm, norm2d

TRANSLATION_G_INJECTED = ("in_shape", "out_shape", "num_classes")


def _image(shape: tuple[int, ...], what: str, model: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"{model} maps images to images; {what} {tuple(shape)} is not (C, H, W)")
    return int(shape[0]), int(shape[1]), int(shape[2])


@GENERATORS.register("unet", injected=TRANSLATION_G_INJECTED)
class UNetGenerator(nn.Module):
    """pix2pix U-Net: image (C_in, H, W) -> image (C_out, H, W) through ``depth`` halvings with skips."""

    z_dim = 0  # no latent: the input image (and dropout) is all G sees

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 64,
        max_width: int = 512,
        depth: int = 0,
        norm: Literal["batch", "instance", "none"] = "batch",
        dropout: float = 0.5,
        dropout_layers: int = 3,
    ) -> None:
        """``depth`` halvings (0: as many as the size allows, down to 1x1 for a power of 2, as pix2pix's 8
        for 256 px); channels
        ``width * 2^i`` capped at ``max_width``; ``dropout`` on the ``dropout_layers`` innermost
        decoder layers."""
        super().__init__()
        model = "generator 'unet'"
        c_in, h, w = _image(in_shape, "in_shape", model)
        c_out, h2, w2 = _image(out_shape, "out_shape", model)
        if (h, w) != (h2, w2):
            raise ValueError(f"{model} keeps the image size; input {h}x{w} and output {h2}x{w2} differ")
        if num_classes:
            raise ValueError(f"{model} is not class-conditional (num_classes={num_classes})")
        check_norm(norm, model)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{model}: dropout={dropout} must be in [0, 1)")
        most = min(int(math.log2(h & -h)), int(math.log2(w & -w)))  # halvings that keep the size whole
        depth = depth or most
        if depth < 1 or h % 2**depth or w % 2**depth:
            raise ValueError(
                f"{model}: depth={depth} needs H and W divisible by 2^{depth}; the images are {h}x{w} "
                f"(use depth <= {most}, or a resolution that is a power of 2)"
            )
        self.in_shape, self.out_shape, self.depth = (c_in, h, w), (c_out, h, w), depth
        self.num_classes = 0
        ch = [min(width * 2**i, max_width) for i in range(depth)]
        self.down = nn.ModuleList()
        for i in range(depth):
            if i == 0:
                self.down.append(nn.Conv2d(c_in, ch[0], 4, 2, 1))
                continue
            normed = norm != "none" and i < depth - 1  # not on the 1x1 innermost maps
            self.down.append(
                nn.Sequential(
                    nn.LeakyReLU(0.2),
                    nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=not normed),
                    norm2d(norm if normed else "none", ch[i]),
                )
            )
        self.up = nn.ModuleList()
        for i in range(depth):  # up[i] produces the maps of down[i - 1]'s size (or the output)
            c_from = ch[i] if i == depth - 1 else 2 * ch[i]  # the innermost has no skip to concatenate
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_from, c_out, 4, 2, 1), nn.Tanh()))
                continue
            layers: list[nn.Module] = [
                nn.ReLU(),
                nn.ConvTranspose2d(c_from, ch[i - 1], 4, 2, 1, bias=norm == "none"),
                norm2d(norm, ch[i - 1]),
            ]
            if dropout and depth - i <= dropout_layers:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        self.apply(dcgan_init_)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(x, [None, *self.in_shape], "input image")
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        h = self.up[-1](skips[-1])
        for i in range(self.depth - 2, -1, -1):
            h = self.up[i](torch.cat([h, skips[i]], dim=1))
        return h
