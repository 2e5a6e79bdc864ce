"""PatchGAN discriminators (Isola et al. 2017, Sec. 3.2.2; Li & Wand 2016): D classifies every
N x N patch of the image as real or fake and the objective averages over patches, so D models
high frequencies (the L1 term handles low ones) with fewer parameters, on any image size.

``receptive_field`` picks the patch size N: 1 (PixelGAN: 1x1 convolutions), 16, 34, 70 (the
paper's default), 142, 286, or ``full`` (the smallest of those covering the whole image, so every
logit sees all of it: the paper's ImageGAN). Layers, as in the authors' code: n Conv 4x4 stride 2
(C64-C128-C256-...), one Conv 4x4 stride 1 (C512 at most), a Conv 4x4 stride 1 to one logit
map; LeakyReLU 0.2; norm on all but the first. N = 16, 34, 70, ... for n = 1, 2, 3, ....
"""

from __future__ import annotations

from typing import Literal, cast

import torch
from torch import nn

from gankit.models.base import D_INJECTED, DISCRIMINATORS, DOut, assert_shape
from gankit.models.dcgan import dcgan_init_
from gankit.nn.norm import check_norm, norm2d

FIELDS = {16: 1, 34: 2, 70: 3, 142: 4, 286: 5}  # receptive field -> strided layers


def receptive_field(n_strided: int) -> int:
    """N of a PatchGAN with ``n_strided`` stride-2 convs: back through two 4x4 stride-1 convs (7),
    then each stride-2 4x4 conv maps r -> 2r + 2."""
    r = 7
    for _ in range(n_strided):
        r = 2 * r + 2
    return r


@DISCRIMINATORS.register("patchgan", injected=D_INJECTED)
class PatchGAN(nn.Module):
    """PatchGAN / PixelGAN / ImageGAN: a map of real-vs-fake logits, one per receptive-field patch."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int = 0,
        receptive_field: Literal[1, 16, 34, 70, 142, 286, "full"] = 70,
        width: int = 64,
        max_width: int = 512,
        norm: Literal["batch", "instance", "none"] = "batch",
    ) -> None:
        super().__init__()
        model = "discriminator 'patchgan'"
        if len(in_shape) != 3:
            raise ValueError(f"{model} judges images; in_shape {tuple(in_shape)} is not (C, H, W)")
        if num_classes:
            raise ValueError(f"{model} is not class-conditional (num_classes={num_classes})")
        check_norm(norm, model)
        c, h, w = (int(s) for s in in_shape)
        self.in_shape, self.num_classes = (c, h, w), 0
        if receptive_field == "full":
            n = next((k for f, k in FIELDS.items() if f >= max(h, w)), max(FIELDS.values()))
            receptive_field = cast(Literal[16, 34, 70, 142, 286], next(f for f, k in FIELDS.items() if k == n))
        if receptive_field != 1 and receptive_field not in FIELDS:
            raise ValueError(
                f"{model}: receptive_field={receptive_field!r}; valid choices: 1, {', '.join(map(str, FIELDS))}, full"
            )
        self.receptive_field = int(receptive_field)
        if receptive_field == 1:  # PixelGAN: 1x1 convolutions judge each pixel alone
            layers: list[nn.Module] = [
                nn.Conv2d(c, width, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(width, 2 * width, 1, bias=norm == "none"),
                norm2d(norm, 2 * width),
                nn.LeakyReLU(0.2),
            ]
            last = 2 * width
        else:
            n = FIELDS[int(receptive_field)]
            layers = [nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2)]
            ch = width
            for i in range(1, n + 1):  # n - 1 more stride-2 convs, then one stride-1 conv
                out = min(width * 2**i, max_width)
                stride = 2 if i < n else 1
                layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=norm == "none"), norm2d(norm, out), nn.LeakyReLU(0.2)]
                ch = out
            last = ch
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(last, 1, 1 if receptive_field == 1 else 4, 1, 0 if receptive_field == 1 else 1)
        self.apply(dcgan_init_)
        self.eval()
        try:  # fail now, not at the first batch, when the image is too small
            with torch.no_grad():
                out = self.head(self.body(torch.zeros(1, c, h, w)))
        except RuntimeError:
            out = None
        self.train()
        if out is None or out.numel() == 0:
            raise ValueError(
                f"{model}: a {self.receptive_field}x{self.receptive_field} PatchGAN needs larger "
                f"images than {h}x{w}; use a smaller receptive_field"
            )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        """(N, C, H, W) -> DOut(logits (N, h, w): one per patch, features (N, F) pooled last maps)."""
        assert_shape(x, [None, *self.in_shape], "x")
        f = self.body(x)
        return DOut(logits=self.head(f)[:, 0], features=f.mean(dim=(2, 3)))
