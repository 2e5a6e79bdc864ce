"""SRGAN's networks (Ledig et al. 2017, Fig. 4).

``srresnet`` G: Conv 9x9 (64) + PReLU; B residual blocks (Conv 3x3, BN, PReLU, Conv 3x3, BN, + skip);
Conv 3x3, BN, + the long skip from the first layer; log2(scale) sub-pixel upsampling blocks
(Conv 3x3 to 256 channels, PixelShuffle x2: Shi et al. 2016, PReLU); Conv 9x9 to the image, then tanh
(gankit images are in [-1, 1]). ``skip: bicubic`` (not in SRGAN: the global residual learning of
VDSR, Kim et al. 2016) adds the network's output, without tanh, to the bicubic upsampling of the
input, its last convolution starting at zero so G starts as bicubic: far fewer steps to beat it.
``norm: none`` drops the batch norm from the residual blocks, as EDSR (Lim et al. 2017) found better
for super-resolution: eval-mode running statistics shift every output pixel a little.

``srgan`` D: Conv 3x3 (64) + LeakyReLU 0.2, then seven Conv 3x3 + BN + LeakyReLU blocks alternating
stride 2 and 1 with 64, 128, 128, 256, 256, 512, 512 channels, Dense 1024, LeakyReLU, Dense 1.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.models.base import D_INJECTED, DISCRIMINATORS, GENERATORS, DOut, assert_shape
from gankit.models.unet import TRANSLATION_G_INJECTED, _image
from gankit.nn.norm import check_norm, norm2d


class _Residual(nn.Module):
    def __init__(self, ch: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, 1, 1, bias=norm == "none"),
            norm2d(norm, ch),
            nn.PReLU(ch),
            nn.Conv2d(ch, ch, 3, 1, 1, bias=norm == "none"),
            norm2d(norm, ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@GENERATORS.register("srresnet", injected=TRANSLATION_G_INJECTED)
class SRResNet(nn.Module):
    """SRResNet: a low-resolution image (C, h, w) -> (C, s h, s w), s = 2, 4, 8 (from the shapes)."""

    z_dim = 0
    fully_convolutional = True  # trained on patches, it upsamples images of any size (gankit translate)

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        blocks: int = 16,
        width: int = 64,
        skip: Literal["none", "bicubic"] = "none",
        norm: Literal["batch", "none"] = "batch",
    ) -> None:
        super().__init__()
        model = "generator 'srresnet'"
        c, h, w = _image(in_shape, "in_shape", model)
        c2, H, W = _image(out_shape, "out_shape", model)
        scale = H // h
        if c != c2 or H != scale * h or W != scale * w or scale < 2 or scale & (scale - 1):
            raise ValueError(
                f"{model} upsamples by a power of 2 keeping the channels; {tuple(in_shape)} -> "
                f"{tuple(out_shape)} is not one"
            )
        if num_classes:
            raise ValueError(f"{model} is not class-conditional (num_classes={num_classes})")
        if blocks < 1 or width < 1:
            raise ValueError(f"{model}: blocks and width must be >= 1, got {blocks}, {width}")
        self.in_shape, self.out_shape, self.scale, self.num_classes = (c, h, w), (c, H, W), scale, 0
        self.head = nn.Sequential(nn.Conv2d(c, width, 9, 1, 4), nn.PReLU(width))
        check_norm(norm, model)
        self.body = nn.Sequential(
            *[_Residual(width, norm) for _ in range(blocks)],
            nn.Conv2d(width, width, 3, 1, 1, bias=norm == "none"),
            norm2d(norm, width),
        )
        up: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            up += [nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.skip = skip
        last = nn.Conv2d(width, c, 9, 1, 4)
        if skip == "bicubic":
            nn.init.zeros_(last.weight)
            assert last.bias is not None  # a Conv2d has one by default
            nn.init.zeros_(last.bias)
        self.up = nn.Sequential(*up, last, *([nn.Tanh()] if skip == "none" else []))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(x, [None, self.in_shape[0], None, None], "input image")
        h = self.head(x)
        out = self.up(h + self.body(h))
        if self.skip == "bicubic":
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
            if not self.training:  # images leave G in [-1, 1]; training losses see the raw sum
                out = out.clamp(-1, 1)
        return out


@DISCRIMINATORS.register("srgan", injected=D_INJECTED)
class SRGANDiscriminator(nn.Module):
    """SRGAN's discriminator: eight 3x3 convolutions (four of stride 2), Dense 1024, Dense 1.

    ``features`` are the last convolution's maps, flattened (the content loss's fallback when no VGG weights
    are given)."""

    def __init__(self, in_shape: tuple[int, ...], num_classes: int = 0, width: int = 64, dense: int = 1024) -> None:
        super().__init__()
        model = "discriminator 'srgan'"
        c, h, w = _image(in_shape, "in_shape", model)
        if num_classes:
            raise ValueError(f"{model} is not class-conditional (num_classes={num_classes})")
        if h % 16 or w % 16:
            raise ValueError(f"{model} halves the image four times; {h}x{w} is not divisible by 16")
        self.in_shape, self.num_classes = (c, h, w), 0
        layers: list[nn.Module] = [nn.Conv2d(c, width, 3, 1, 1), nn.LeakyReLU(0.2)]
        ch = width
        for i, mult in enumerate((1, 2, 2, 4, 4, 8, 8)):
            stride = 2 if i % 2 == 0 else 1
            layers += [
                nn.Conv2d(ch, width * mult, 3, stride, 1, bias=False),
                nn.BatchNorm2d(width * mult),
                nn.LeakyReLU(0.2),
            ]
            ch = width * mult
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(ch * (h // 16) * (w // 16), dense), nn.LeakyReLU(0.2), nn.Linear(dense, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        assert_shape(x, [None, *self.in_shape], "x")
        f = self.body(x).flatten(1)
        return DOut(logits=self.head(f)[:, 0], features=f)
