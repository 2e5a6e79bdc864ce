"""StyleGAN (Karras et al. 2019, "A Style-Based Generator Architecture for GANs"), small and pure PyTorch,
with StyleGAN2's modulated/demodulated convolution as an option (Karras et al. 2020, Sec. 2.2).

Generator ``stylegan`` = mapping network f: z -> w (Sec. 2) + synthesis network g driven by one w per
layer ("ws", shape (N, num_ws, w_dim), num_ws = 2 log2(R) - 2):

- ``conv: adain``     StyleGAN (Fig. 1b): learned constant 4x4 input; per layer [upsample], conv 3x3,
  noise, bias, LReLU, AdaIN(w_i); one 1x1 toRGB at the end. Styles 0-1 drive 4x4, 2-3 drive 8x8, ...
- ``conv: modulated`` StyleGAN2 (Fig. 2d, config E/F "skip" G): learned constant; per layer [upsample],
  modulated + demodulated conv 3x3 (Eqs. 1-3), noise, bias, LReLU x sqrt(2); a modulated 1x1 toRGB (no
  demodulation) at every resolution, summed over upsampled resolutions. Style 0 drives the 4x4 conv,
  2r-1 and 2r the two convs of resolution 4 * 2^r, and each toRGB uses the next layer's style.

Style mixing regularisation (Sec. 3.1): in training mode, with probability ``mixing_prob`` (paper 0.9)
a second z2 is mapped and layers [cutoff, num_ws) use w2, cutoff ~ U{1, ..., num_ws - 1}, one draw per
batch as in the official code. Truncation in W (Sec. 4.1 / App. B): w' = w_avg + psi (w - w_avg), with
w_avg an EMA (decay ``w_avg_beta`` = 0.995) of the batch mean of w, updated at every training-mode
forward (the D and the G step alike, as the official code's mapping network does; never from z2).

Discriminator ``stylegan``: StyleGAN2's residual D (Fig. 7, "resnet" D) with ProGAN's layers:
fromRGB 1x1; per resolution conv 3x3, downsample, conv 3x3, plus a downsampled 1x1 skip, summed and
scaled by 1/sqrt(2); at 4x4 minibatch stddev (ProGAN Sec. 3), conv 3x3, dense, dense -> logit.

Deviations (all for a small, dependency-free CPU model):
- no FIR filters: bilinear up-sampling in G (instead of nearest + [1, 2, 1] blur / transposed conv +
  FIR) and 2x2 average pooling in D (instead of FIR + strided conv);
- no progressive growing (StyleGAN1 grew like ProGAN): trained at full resolution, as StyleGAN2;
- the constant input is N(0, 1) (StyleGAN1 used ones, which makes the first instance norm 0/0 until
  the noise weights move), as in StyleGAN2;
- a tanh on the output, because gankit's generators emit images in [-1, 1] (DESIGN.md);
- truncation applies to every layer unless ``truncation_cutoff`` is given (StyleGAN1 Fig. 8 truncated
  only the coarse layers; StyleGAN2 truncates all);
- the width table is ``width`` channels at the output resolution, doubling per halving, capped at
  ``max_channels`` (the paper: 512 up to 64x64, then halving, i.e. width 32 at 1024, max 512).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.models.base import D_INJECTED, DISCRIMINATORS, G_INJECTED, GENERATORS, DOut, assert_shape, refuse_labels
from gankit.nn.equalized import EqualizedConv2d, EqualizedLinear
from gankit.nn.minibatch import MinibatchStdDev
from gankit.nn.mode import eval_mode
from gankit.nn.style import AdaIN, MappingNetwork, ModulatedConv2d, NoiseInjection, NoiseMode

RESOLUTIONS = (8, 16, 32, 64, 128, 256, 512, 1024)
SQRT2 = math.sqrt(2.0)


def stylegan_channels(resolution: int, width: int = 32, max_channels: int = 256) -> dict[int, int]:
    """Channels per feature-map resolution 4 .. R: ``width`` at R, doubled at every halving, capped."""
    return {
        4 * 2**i: min(max_channels, width * resolution // (4 * 2**i)) for i in range(int(math.log2(resolution)) - 1)
    }


def _image(shape: tuple[int, ...], what: str, model: str) -> tuple[int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in RESOLUTIONS or shape[0] < 1:
        raise ValueError(
            f"{model}: {what}={shape} is not supported; use (C, R, R) with C >= 1 and R a power of two in {RESOLUTIONS}"
        )
    return shape[0], shape[1]


def _check(num_classes: int, width: int, max_channels: int, model: str) -> None:
    refuse_labels(num_classes, model)
    if width < 1 or max_channels < 1:
        raise ValueError(f"{model}: width={width} and max_channels={max_channels} must be >= 1")


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class AdaINLayer(nn.Module):
    """StyleGAN layer (Fig. 1b): [upsample, conv 3x3], noise, bias, LReLU(0.2), AdaIN(w). Without a conv
    it is the epilogue applied to the learned constant."""

    def __init__(
        self, in_channels: int, out_channels: int, resolution: int, w_dim: int, conv: bool = True, up: bool = False
    ) -> None:
        super().__init__()
        self.up = up
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, padding=1, bias=False) if conv else None
        self.noise = NoiseInjection(out_channels, resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.adain = AdaIN(out_channels, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "auto") -> torch.Tensor:
        if self.up:
            x = _up(x)
        if self.conv is not None:
            x = self.conv(x)
        x = F.leaky_relu(self.noise(x, mode=noise_mode) + self.bias.view(1, -1, 1, 1), 0.2)
        return self.adain(x, w)


class ModulatedLayer(nn.Module):
    """StyleGAN2 layer (Fig. 2d): [upsample], modulated/demodulated conv 3x3, noise, bias, LReLU(0.2) x sqrt(2)
    (the official bias_act gain, which keeps the second moment of the demodulated activations near 1)."""

    def __init__(
        self, in_channels: int, out_channels: int, resolution: int, w_dim: int, up: bool = False, fused: bool = True
    ) -> None:
        super().__init__()
        self.up = up
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, fused=fused)
        self.noise = NoiseInjection(out_channels, resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "auto") -> torch.Tensor:
        if self.up:
            x = _up(x)
        x = self.noise(self.conv(x, w), mode=noise_mode) + self.bias.view(1, -1, 1, 1)
        return F.leaky_relu(x, 0.2) * SQRT2


class ModulatedToRGB(nn.Module):
    """StyleGAN2's tRGB: modulated 1x1 conv without demodulation, plus a bias."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, fused: bool = True) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, w_dim, demodulate=False, fused=fused)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.view(1, -1, 1, 1)


@GENERATORS.register("stylegan", injected=G_INJECTED)
class StyleGANGenerator(nn.Module):
    """StyleGAN generator (Karras et al. 2019): mapping z -> w, synthesis from a learned 4x4 constant driven
    by per-layer styles; ``conv: modulated`` for StyleGAN2's demodulated convs and skip toRGBs."""

    w_avg: torch.Tensor  # buffer: the running mean of w, the centre of truncation

    def __init__(
        self,
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        z_dim: int = 128,
        w_dim: int = 128,
        mapping_layers: int = 8,
        mapping_lr_mul: float = 0.01,
        width: int = 32,
        max_channels: int = 256,
        conv: Literal["adain", "modulated"] = "adain",
        fused: bool = True,
        mixing_prob: float = 0.9,
        w_avg_beta: float = 0.995,
    ) -> None:
        """Paper sizes: z_dim = w_dim = 512, mapping_layers = 8, mapping_lr_mul = 0.01, max_channels = 512,
        mixing_prob = 0.9, w_avg_beta = 0.995. ``fused``: grouped-conv modulated convs (see ModulatedConv2d)."""
        super().__init__()
        model = "generator 'stylegan'"
        c, res = _image(out_shape, "out_shape", model)
        _check(num_classes, width, max_channels, model)
        if conv not in ("adain", "modulated"):
            raise ValueError(f"{model}: conv={conv!r}; valid choices: adain, modulated")
        if z_dim < 1 or w_dim < 1 or mapping_layers < 1:
            raise ValueError(f"{model}: z_dim={z_dim}, w_dim={w_dim} and mapping_layers={mapping_layers} must be >= 1")
        if not 0.0 <= mixing_prob <= 1.0 or not 0.0 <= w_avg_beta < 1.0:
            raise ValueError(
                f"{model}: mixing_prob={mixing_prob} must be in [0, 1] and w_avg_beta={w_avg_beta} in [0, 1)"
            )
        self.out_shape, self.z_dim, self.w_dim, self.num_classes = (c, res, res), z_dim, w_dim, 0
        self.conv, self.mixing_prob, self.w_avg_beta = conv, float(mixing_prob), float(w_avg_beta)
        self.num_ws = 2 * int(math.log2(res)) - 2
        ch = stylegan_channels(res, width, max_channels)
        self.mapping_net = MappingNetwork(z_dim, w_dim, mapping_layers, lr_mul=mapping_lr_mul)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        layers: list[nn.Module] = []
        self.to_rgb = nn.ModuleList()
        if conv == "adain":
            layers += [AdaINLayer(ch[4], ch[4], 4, w_dim, conv=False), AdaINLayer(ch[4], ch[4], 4, w_dim)]
            for r in sorted(ch)[1:]:
                layers += [AdaINLayer(ch[r // 2], ch[r], r, w_dim, up=True), AdaINLayer(ch[r], ch[r], r, w_dim)]
            self.to_rgb.append(EqualizedConv2d(ch[res], c, 1, gain=1.0))
        else:
            layers.append(ModulatedLayer(ch[4], ch[4], 4, w_dim, fused=fused))
            self.to_rgb.append(ModulatedToRGB(ch[4], c, w_dim, fused=fused))
            for r in sorted(ch)[1:]:
                layers += [
                    ModulatedLayer(ch[r // 2], ch[r], r, w_dim, up=True, fused=fused),
                    ModulatedLayer(ch[r], ch[r], r, w_dim, fused=fused),
                ]
                self.to_rgb.append(ModulatedToRGB(ch[r], c, w_dim, fused=fused))
        self.layers = nn.ModuleList(layers)

    # -- the two networks ---------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """f: (N, z_dim) -> w (N, w_dim). Pure: no truncation, no w_avg update."""
        assert_shape(z, [None, self.z_dim], "z")
        return self.mapping_net(z)

    def synthesis(self, ws: torch.Tensor, noise_mode: NoiseMode = "auto") -> torch.Tensor:
        """g: ws (N, num_ws, w_dim) -> images (N, C, R, R) in [-1, 1]; ws[:, i] drives layer i (module doc)."""
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        if self.conv == "adain":
            for i, layer in enumerate(self.layers):
                x = layer(x, ws[:, i], noise_mode)
            return torch.tanh(self.to_rgb[0](x))
        rgb: torch.Tensor | None = None
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise_mode)
            if i % 2 == 0:  # the last layer of a resolution: add its tRGB, driven by the next style
                y = self.to_rgb[i // 2](x, ws[:, i + 1])
                rgb = y if rgb is None else _up(rgb) + y
        assert rgb is not None
        return torch.tanh(rgb)

    # -- truncation, w_avg, style mixing ----------------------------------------------------------
    def truncate(self, w: torch.Tensor, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
        """Broadcast w (N, w_dim) to ws (N, num_ws, w_dim), truncated towards w_avg in layers [0, cutoff):
        w' = w_avg + psi (w - w_avg) (StyleGAN Sec. 4.1). psi = 1 returns w exactly."""
        ws = w[:, None].repeat(1, self.num_ws, 1)
        if psi != 1.0:
            k = self.num_ws if cutoff is None else int(cutoff)
            ws[:, :k] = self.w_avg.to(ws.dtype).lerp(ws[:, :k], psi)  # w may be bf16/fp16 under autocast
        return ws

    def forward(
        self,
        z: torch.Tensor,
        y: torch.Tensor | None = None,
        psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: NoiseMode = "auto",
    ) -> torch.Tensor:
        """(N, z_dim) -> (N, C, R, R) in [-1, 1]. ``y`` is accepted for the common signature and unused.

        In training mode: w_avg tracks the batch mean of w, and with probability ``mixing_prob`` the
        layers from a random crossover on take their style from a second, random z (Sec. 3.1).
        Eval mode never mixes and, with ``noise_mode`` auto, uses the stored constant noise."""
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = self.truncate(w, psi, truncation_cutoff)
        if self.training and self.mixing_prob > 0 and torch.rand(()) < self.mixing_prob:
            cutoff = int(torch.randint(1, self.num_ws, ()))
            ws2 = self.truncate(self.mapping(torch.randn_like(z)), psi, truncation_cutoff)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return self.synthesis(ws, noise_mode)


@torch.no_grad()
def style_mixing_grid(
    G: StyleGANGenerator,
    z_rows: torch.Tensor,
    z_cols: torch.Tensor,
    crossover: int,
    psi: float = 1.0,
    noise_mode: NoiseMode = "const",
) -> torch.Tensor:
    """The layout of StyleGAN's Fig. 3, as ((rows + 1) * (cols + 1), C, R, R) images in row-major order.

    Row 0 is [blank, column sources G(z_cols)]; row i >= 1 is [row source G(z_rows[i-1]), then one mix per
    column]. A mix takes the styles of layers [0, crossover) from the ROW source and [crossover, num_ws)
    from the COLUMN source: rows play the paper's "source B" whose coarse styles (crossover 4 = 4^2-8^2)
    are copied. The blank cell is white (+1). Runs G in eval mode, without mixing; save it with
    ``gankit.viz.save_image_grid(grid, path, nrow=len(z_cols) + 1)``.
    """
    if not 0 <= crossover <= G.num_ws:
        raise ValueError(f"crossover={crossover} must be in [0, num_ws={G.num_ws}]")
    with eval_mode(G):
        ws_r = G.truncate(G.mapping(z_rows), psi)
        ws_c = G.truncate(G.mapping(z_cols), psi)
        rows, cols = ws_r.shape[0], ws_c.shape[0]
        mix = ws_c[None].repeat(rows, 1, 1, 1)  # (rows, cols, num_ws, w_dim)
        mix[:, :, :crossover] = ws_r[:, None, :crossover]
        img_r, img_c = G.synthesis(ws_r, noise_mode), G.synthesis(ws_c, noise_mode)
        img_m = G.synthesis(mix.flatten(0, 1), noise_mode).view(rows, cols, *img_c.shape[1:])
        grid = torch.cat([torch.ones_like(img_c[:1]), img_c])[None]  # (1, cols + 1, C, R, R)
        body = torch.cat([img_r[:, None], img_m], dim=1)  # (rows, cols + 1, C, R, R)
        return torch.cat([grid, body]).flatten(0, 1)


class DBlock(nn.Module):
    """StyleGAN2 residual D block (Fig. 7b): conv 3x3, LReLU, downsample, conv 3x3, LReLU, plus a
    downsampled 1x1 skip; (main + skip) / sqrt(2). Downsampling is 2x2 average pooling before the second
    conv (the paper: FIR blur then a strided conv, which also convolves at the lower resolution)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, padding=1)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, padding=1)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(F.avg_pool2d(x, 2))
        h = F.leaky_relu(self.conv0(x), 0.2)
        h = F.leaky_relu(self.conv1(F.avg_pool2d(h, 2)), 0.2)
        return (h + skip) / SQRT2


@DISCRIMINATORS.register("stylegan", injected=D_INJECTED)
class StyleGANDiscriminator(nn.Module):
    """StyleGAN2 residual discriminator (Karras et al. 2020, Fig. 7) with equalised lr, LReLU(0.2),
    average-pool downsampling and ProGAN's minibatch stddev at 4x4."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 32,
        max_channels: int = 256,
        mbstd_group: int = 4,
    ) -> None:
        """Paper sizes: max_channels = 512, mbstd_group = 4. The batch must divide by the stddev group."""
        super().__init__()
        model = "discriminator 'stylegan'"
        c, res = _image(in_shape, "in_shape", model)
        _check(num_classes, width, max_channels, model)
        self.in_shape, self.num_classes = (c, res, res), 0
        ch = stylegan_channels(res, width, max_channels)
        self.from_rgb = EqualizedConv2d(c, ch[res], 1)
        self.blocks = nn.Sequential(*[DBlock(ch[r], ch[r // 2]) for r in sorted(ch, reverse=True)[:-1]])
        self.mbstd = MinibatchStdDev(mbstd_group)
        self.conv = EqualizedConv2d(ch[4] + 1, ch[4], 3, padding=1)
        self.fc = EqualizedLinear(ch[4] * 16, ch[4])
        self.head = EqualizedLinear(ch[4], 1, gain=1.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        """(N, C, R, R) -> DOut(logits (N,), features (N, ch[4]) before the last dense layer). ``y`` unused."""
        assert_shape(x, [None, *self.in_shape], "x")
        h = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2))
        h = F.leaky_relu(self.conv(self.mbstd(h)), 0.2)
        features = F.leaky_relu(self.fc(h.flatten(1)), 0.2)
        return DOut(logits=self.head(features).squeeze(1), features=features)
