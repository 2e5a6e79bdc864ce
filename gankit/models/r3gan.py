"""R3GAN's modernised ResNet generator and discriminator (Huang et al. 2024, "The GAN is dead; long live
the GAN! A Modern GAN Baseline", Sec. 4 and Fig. 3), pure PyTorch.

What makes them "modern" (ConvNeXt-style), against the SN-GAN / StyleGAN2 backbones:

* **Residual blocks are inverted bottlenecks with grouped convolutions**: x + conv1x1(act(gconv3x3(act(
  conv1x1(x))))), the 1x1 layers expanding the channels by ``expansion`` and back, the 3x3 layer split
  into groups of ``group_size`` channels (ResNeXt). Leaky ReLU (0.2), biases, **no normalisation layer**
  anywhere: with RpGAN + R1 + R2 (the ``relativistic`` objective, ``r1`` and ``r2`` penalties) the
  training is stable without it.
* **Fix-up initialisation** (Zhang et al. 2019) on the authors' He ("MSR") initialisation: every weight
  N(0, gain^2 / fan_in); the last layer of every residual branch starts at zero (each block is the
  identity at initialisation) and the other layers of the branch have gain sqrt(2 / 1.04) * L^(-1/4)
  (L^(-1/(2m - 2)) for L blocks in the network and m = 3 layers per branch).
* **Low-pass resampling** between stages: bilinear x2 upsampling in G (the [1, 3, 3, 1] filter) and an
  antialiased bilinear /2 in D, each with a 1x1 convolution that changes the width at the lower of the
  two resolutions (the transition layers), instead of strided or transposed convolutions.
* **Basis layers** at 4x4: G's is a learned 4x4 map per channel, each channel scaled by a linear function
  of z (with a class embedding, for the conditional version); D ends with a 4x4 depthwise convolution to
  one vector and a linear logit (plus a projection of the class embedding, Miyato & Koyama 2018, when
  conditional).

Deviations: stage widths default to CPU sizes (``width`` at the output resolution, doubling per halving
up to ``max_channels``). G's last layer is a 1x1 convolution with a linear output, as in the paper;
``out_activation: tanh`` squashes it into the image range, an option for near-binary data such as MNIST,
where a linear G must learn an exact -1 background that a tanh reaches by saturating (README: classifier
FID 33.3 -> 20.6 at 4000 CPU steps). Under Adam a tanh can saturate for good (every sample black for
hundreds of steps); ``out_activation: clamp`` (:func:`gankit.nn.clamp.inward_clamp`) clamps to [-1, 1]
and passes only the gradients that lead back into the range, which avoids that (README: level with the
tanh over four seeds). ``minibatch_stddev`` adds ProGAN's stddev channel to D's 4x4 map, a layer the paper's
D does without; ``r3gan-mnist`` uses it (README: six seeds' mean FID 23.6 -> 19.4, class KL 0.018 -> 0.009).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from gankit.models.base import D_INJECTED, DISCRIMINATORS, G_INJECTED, GENERATORS, DOut, assert_shape
from gankit.nn.clamp import inward_clamp
from gankit.nn.minibatch import MinibatchStdDev

_Layer = TypeVar("_Layer", nn.Conv2d, nn.Linear)

# G's output: the paper's linear layer, or squashed into the image range (module docstring)
OUT_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda x: x,
    "tanh": torch.tanh,
    "clamp": inward_clamp,
}


LRELU_GAIN = math.sqrt(2 / (1 + 0.2**2))  # He gain of leaky ReLU(0.2)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _msr(layer: _Layer, gain: float = 1.0) -> _Layer:
    """The authors' initialisation: weights N(0, gain^2 / fan_in) (He et al. 2015; "MSR"), biases 0. PyTorch's
    default (uniform, std 1 / sqrt(3 fan_in)) starts every layer 2.4 times smaller than a leaky-ReLU net
    keeps its scale with."""
    with torch.no_grad():
        fan_in = layer.weight[0].numel()
        if gain:
            layer.weight.normal_(0.0, gain / math.sqrt(fan_in))
        else:
            layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


class InvertedBottleneck(nn.Module):
    """x + conv1x1(act(grouped conv3x3(act(conv1x1(x))))) with Fix-up initialisation (``scale``)."""

    def __init__(self, channels: int, expansion: int, group_size: int, scale: float) -> None:
        super().__init__()
        hidden = channels * expansion
        if hidden % group_size and group_size < hidden:
            raise ValueError(f"r3gan: the expanded width {hidden} is not a multiple of group_size={group_size}")
        gain = LRELU_GAIN * scale
        self.expand = _msr(nn.Conv2d(channels, hidden, 1), gain)
        self.spatial = _msr(nn.Conv2d(hidden, hidden, 3, padding=1, groups=max(1, hidden // group_size)), gain)
        self.project = _msr(nn.Conv2d(hidden, channels, 1, bias=False), 0.0)  # the block starts as the identity

    def nhwc(self) -> bool:
        """Whether the block was placed in NHWC (its 3x3 weights say so unless they fit both layouts)."""
        w = self.spatial.weight
        return w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(_act(self.spatial(_act(self.expand(x)))))


def _halve(h: torch.Tensor) -> torch.Tensor:
    """Antialiased bilinear /2 (the paper's low-pass downsampling). PyTorch's CPU kernel has no bf16 or
    fp16 version, which bf16 autocast on a CPU with AVX512-BF16 or AMX reaches: there it runs in float32
    and casts back."""
    low = h.device.type == "cpu" and h.dtype in (torch.bfloat16, torch.float16)
    out = F.interpolate(h.float() if low else h, scale_factor=0.5, mode="bilinear", antialias=True)
    return out.to(h.dtype)


def _stages(res: int, width: int, max_channels: int, model: str) -> list[int]:
    """Channel widths per resolution from 4x4 up to ``res`` (index 0 is 4x4)."""
    if res < 8 or res & (res - 1):
        raise ValueError(f"{model}: resolution {res} is not supported; use a power of 2 >= 8")
    n = int(math.log2(res)) - 1  # 4, 8, ..., res
    return [min(width * 2 ** (n - 1 - i), max_channels) for i in range(n)]


def _check(shape: tuple[int, ...], num_classes: int, width: int, blocks: int, model: str) -> tuple[int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"{model}: shape {shape} is not supported; use square images (C, R, R)")
    if num_classes < 0 or width < 1 or blocks < 1:
        raise ValueError(f"{model}: num_classes >= 0, width >= 1 and blocks >= 1 needed")
    return shape[0], shape[1]


@GENERATORS.register("r3gan", injected=G_INJECTED)
class R3GANGenerator(nn.Module):
    """R3GAN generator (Huang et al. 2024): z (+ class embedding) -> 4x4 basis -> [blocks, bilinear x2 +
    1x1 transition] per stage -> 1x1 to image; inverted-bottleneck residual blocks, no normalisation."""

    def __init__(
        self,
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        z_dim: int = 64,
        width: int = 32,
        max_channels: int = 128,
        blocks: int = 1,
        expansion: int = 2,
        group_size: int = 16,
        embed_dim: int = 32,
        out_activation: Literal["none", "tanh", "clamp"] = "none",
    ) -> None:
        super().__init__()
        model = "generator 'r3gan'"
        c, res = _check(out_shape, num_classes, width, blocks, model)
        if z_dim < 1:
            raise ValueError(f"{model}: z_dim={z_dim} must be >= 1")
        if out_activation not in OUT_ACTIVATIONS:
            choices = ", ".join(OUT_ACTIVATIONS)
            raise ValueError(f"{model}: out_activation={out_activation!r}; valid choices: {choices}")
        widths = _stages(res, width, max_channels, model)
        self.out_shape, self.z_dim, self.num_classes = (c, res, res), z_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        # the paper's generative basis: a learned 4x4 map per channel, each scaled by a linear function of z
        self.basis = nn.Parameter(torch.randn(widths[0], 4, 4))
        self.modulation = _msr(nn.Linear(z_dim + (embed_dim if num_classes else 0), widths[0], bias=False))
        scale = (blocks * len(widths)) ** -0.25
        self.stages = nn.ModuleList(
            nn.Sequential(*[InvertedBottleneck(w, expansion, group_size, scale) for _ in range(blocks)]) for w in widths
        )
        self.transitions = nn.ModuleList(_msr(nn.Conv2d(a, b, 1)) for a, b in zip(widths, widths[1:]))
        self.to_image = _msr(nn.Conv2d(widths[-1], c, 1))
        self.out_activation = out_activation
        self.widths = widths

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(N, z_dim) -> (N, C, R, R)."""
        assert_shape(z, [None, self.z_dim], "z")
        if self.embed is not None:
            if y is None:
                raise ValueError("generator 'r3gan' is class-conditional: call G(z, y)")
            z = torch.cat([z, self.embed(y)], dim=1)
        h = self.basis * self.modulation(z)[:, :, None, None]
        for i, stage in enumerate(self.stages):
            if i:  # the width changes at the low resolution, before the upsampling (cheaper; as the authors)
                h = F.interpolate(self.transitions[i - 1](h), scale_factor=2, mode="bilinear", align_corners=False)
            h = stage(h)
        return OUT_ACTIVATIONS[self.out_activation](self.to_image(h))


@DISCRIMINATORS.register("r3gan", injected=D_INJECTED)
class R3GANDiscriminator(nn.Module):
    """R3GAN discriminator (Huang et al. 2024): 1x1 from image -> [blocks, 1x1 transition + antialiased
    /2] per stage -> 4x4 depthwise basis -> linear logit (+ class projection); no normalisation."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 32,
        max_channels: int = 128,
        blocks: int = 1,
        expansion: int = 2,
        group_size: int = 16,
        minibatch_stddev: int = 0,
    ) -> None:
        """``minibatch_stddev``: group size of a minibatch-stddev channel on the 4x4 map before the basis
        (Karras et al. 2018; 0 = none, as the paper)."""
        super().__init__()
        model = "discriminator 'r3gan'"
        c, res = _check(in_shape, num_classes, width, blocks, model)
        if minibatch_stddev < 0:
            raise ValueError(f"{model}: minibatch_stddev must be >= 0, got {minibatch_stddev}")
        widths = _stages(res, width, max_channels, model)[::-1]  # from R down to 4x4
        self.in_shape, self.num_classes = (c, res, res), num_classes
        self.from_image = _msr(nn.Conv2d(c, widths[0], 1))
        scale = (blocks * len(widths)) ** -0.25
        self.stages = nn.ModuleList(
            nn.Sequential(*[InvertedBottleneck(w, expansion, group_size, scale) for _ in range(blocks)]) for w in widths
        )
        self.transitions = nn.ModuleList(_msr(nn.Conv2d(a, b, 1)) for a, b in zip(widths, widths[1:]))
        self.stddev = MinibatchStdDev(minibatch_stddev) if minibatch_stddev else None
        last = widths[-1] + (1 if minibatch_stddev else 0)
        self.basis = _msr(nn.Conv2d(last, last, 4, groups=last, bias=False))  # 4x4 depthwise -> one vector
        self.head = _msr(nn.Linear(last, 1))
        self.projection = nn.Embedding(num_classes, last) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        assert_shape(x, [None, *self.in_shape], "D input")
        h = self.from_image(x)
        if cast(InvertedBottleneck, cast(nn.Sequential, self.stages[0])[0]).nhwc():
            # a 1-channel image and the 1x1 from_image weight fit NCHW and NHWC alike, so the convolution
            # returns NCHW, and the whole first stage's residual stream stayed so in an NHWC network
            # (perf.channels_last): layout conversions at every layer, 2 % of R3GAN's CPU step
            h = h.contiguous(memory_format=torch.channels_last)
        for i, stage in enumerate(self.stages):
            if i:
                h = self.transitions[i - 1](_halve(h))
            h = stage(h)
        if self.stddev is not None:
            h = self.stddev(h)
        # the 4x4 depthwise basis on a 4x4 map is one weighted sum per channel: written so (in float32), its
        # backward and double backward (R1, R2) skip a slow bf16 depthwise-convolution kernel (3 % of the CPU step)
        h = h.to(torch.promote_types(h.dtype, torch.float32))
        features = (h * self.basis.weight.squeeze(1)).sum((2, 3))
        logits = self.head(features).squeeze(1)
        if self.projection is not None:
            if y is None:
                raise ValueError("discriminator 'r3gan' is class-conditional: call D(x, y)")
            logits = logits + (self.projection(y) * features).sum(1)
        return DOut(logits=logits, features=features)
