"""Progressive GAN (Karras, Aila, Laine & Lehtinen, 2018, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation"): a generator and a discriminator that grow from ``start`` x ``start``
to R x R during training, each new resolution faded in smoothly (Sec. 2, Fig. 2).

Architecture (Table 2, Sec. 4): G is PixelNorm(z) -> 4x4 block -> one block per doubling
(nearest upsample, two 3x3 convs), with LeakyReLU(0.2) and pixelwise feature normalisation after
every conv (Sec. 4.2) and a 1x1 toRGB per resolution; D mirrors it (1x1 fromRGB, blocks of two 3x3
convs + 2x2 average pooling) and ends with minibatch stddev (Sec. 3), conv3x3, conv4x4 (a linear
layer on the flattened 4x4 map) and a linear layer to one logit. Every layer uses the equalised
learning rate (Sec. 4.1). Channels come from one formula (``progan_channels``), not a class per
resolution.

Growth is a pure function of the generator step (``growth``), so resume and sampling restore it
from the checkpoint's step: ``net.set_step(step)``. The data flow never changes with growth: G always
returns (N, C, R, R), its current r x r output nearest-upsampled to R; D always takes (N, C, R, R) and
average-pools it to r. A freshly built network, before any ``set_step``, is at its final stage
(r = R, alpha = 1): an ordinary full-resolution GAN.

Deviations from the paper:
  - G ends in tanh (the paper's toRGB output is linear), to meet gankit's [-1, 1] image contract.
    tanh is applied after the fade-in and commutes with nearest upsampling, so the fade-in
    identities (alpha = 0 is the previous stage upsampled) hold exactly.
  - The paper also fades the *real* images during a transition (Fig. 2 caption). Here D receives
    the trainer's reals unchanged and only pools them to r; blurring inside D would blur the fakes
    as well, which is not the paper's transform.
  - Growth is counted in generator steps, not in real images shown (the paper: 800k images at 4x4,
    then 800k per fade and per stable phase, App. A.1; 50k steps each at its batch size 16).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gankit.models.base import D_INJECTED, DISCRIMINATORS, G_INJECTED, GENERATORS, DOut, assert_shape, refuse_labels
from gankit.nn.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
from gankit.nn.minibatch import MinibatchStdDev

MAX_RESOLUTION = 1024  # the paper's CelebA-HQ size


def growth(step: int, start: int, resolution: int, fade_steps: int, stable_steps: int) -> tuple[int, float]:
    """(current resolution r, fade-in weight alpha) at generator step ``step``.

    Stage 0 trains at ``start`` for ``stable_steps`` steps; each next resolution (2 * previous) is
    faded in over ``fade_steps`` steps, alpha = t / fade_steps rising linearly from 0, then trained
    at alpha = 1 for ``stable_steps`` (the paper's App. A.1 alternates the two phases). Past the
    last stage the network stays at (resolution, 1.0). Alpha is 0 on the first step of a fade, where
    the new network equals the old one upsampled, so the switch is continuous.
    """
    if step < 0:
        raise ValueError(f"progan growth: step={step} must be >= 0")
    if start < 1 or resolution < start:
        raise ValueError(f"progan growth: start={start} must be >= 1 and <= resolution={resolution}")
    if fade_steps < 1 or stable_steps < 1:
        raise ValueError(f"progan growth: fade_steps={fade_steps} and stable_steps={stable_steps} must be >= 1")
    if step < stable_steps:
        return start, 1.0
    stage, t = divmod(step - stable_steps, fade_steps + stable_steps)
    r = start * 2 ** (stage + 1)
    if r > resolution:
        return resolution, 1.0
    return r, min(1.0, t / fade_steps)


def growth_end(start: int, resolution: int, fade_steps: int, stable_steps: int) -> int:
    """The first step at which ``growth`` reaches the full resolution with alpha = 1."""
    doublings = int(math.log2(resolution // start))
    return stable_steps + (doublings - 1) * (fade_steps + stable_steps) + fade_steps if doublings else 0


def progan_channels(resolution: int, width: int = 64, max_channels: int = 512) -> dict[int, int]:
    """Channels of the feature maps at r = 4, 8, ..., resolution: ``min(max_channels, width * resolution / r)``.

    ``width`` channels at full resolution, doubling with every halving, capped: the paper's 1024x1024
    network (Table 2: 512 up to 32x32, then 256, 128, 64, 32, 16) is ``width=16, max_channels=512``.
    """
    return {4 * 2**i: min(max_channels, width * resolution // (4 * 2**i)) for i in range(resolution.bit_length() - 2)}


def _check_options(
    shape: tuple[int, ...],
    what: str,
    model: str,
    num_classes: int,
    width: int,
    max_channels: int,
    start: int,
    fade_steps: int,
    stable_steps: int,
) -> tuple[int, int]:
    """Validate the options G and D share; return (C, R)."""
    refuse_labels(num_classes, model)
    if num_classes < 0:
        raise ValueError(f"{model}: num_classes={num_classes} must be >= 0")
    shape = tuple(int(s) for s in shape)
    if start < 4 or start & (start - 1) or start > MAX_RESOLUTION // 2:
        raise ValueError(f"{model}: start={start} must be a power of two from 4 to {MAX_RESOLUTION // 2}")
    valid = [start * 2**i for i in range(1, int(math.log2(MAX_RESOLUTION // start)) + 1)]
    if len(shape) != 3 or shape[0] < 1 or shape[1] != shape[2] or shape[1] not in valid:
        raise ValueError(
            f"{model}: {what}={shape} is not supported; use (C, R, R) with C >= 1 and R a power "
            f"of two from 2 * start to {MAX_RESOLUTION}, one of {tuple(valid)} for start={start}"
        )
    if width < 1 or max_channels < 1:
        raise ValueError(f"{model}: width={width} and max_channels={max_channels} must be >= 1")
    if fade_steps < 1 or stable_steps < 1:
        raise ValueError(
            f"{model}: fade_steps={fade_steps} and stable_steps={stable_steps} must be >= 1 "
            "(the paper: 800k real images each, e.g. 50000 steps at batch 16)"
        )
    return shape[0], shape[1]


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _down(x: torch.Tensor, factor: int) -> torch.Tensor:
    # 2x2 pooling repeated, so the path to r/2 is the path to r pooled once more, bit for bit.
    while factor > 1:
        x, factor = F.avg_pool2d(x, 2), factor // 2
    return x


class _Growing(nn.Module):
    """The growth state G and D share: a step (None = never set = final stage) and its (r, alpha)."""

    res: int
    start: int
    fade_steps: int
    stable_steps: int

    def _init_growth(self, res: int, start: int, fade_steps: int, stable_steps: int) -> None:
        self.res, self.start, self.fade_steps, self.stable_steps = res, start, fade_steps, stable_steps
        self._step: int | None = None
        self._stage: tuple[int, float] = (res, 1.0)

    def set_step(self, step: int) -> None:
        """Move to the stage of generator step ``step`` (called by the trainer before every step)."""
        self._step = int(step)
        self._stage = growth(self._step, self.start, self.res, self.fade_steps, self.stable_steps)

    @property
    def step(self) -> int | None:
        """The step of the last ``set_step`` call (None: never called, the final stage)."""
        return self._step

    @property
    def resolution(self) -> int:
        """The resolution r the network works at now (R before any ``set_step``)."""
        return self._stage[0]

    @property
    def alpha(self) -> float:
        """The fade-in weight of the newest block (1.0 when stable)."""
        return self._stage[1]

    def _active_resolutions(self) -> set[int]:
        """Resolutions whose toRGB / fromRGB the current stage uses."""
        r, alpha = self._stage
        return {r, r // 2} if alpha < 1.0 else {r}

    def inactive_parameters(self) -> set[str]:
        """Names of parameters the current stage does not use; they receive no gradient (grad None).

        Blocks above r, and the toRGB / fromRGB of every resolution other than r (and r/2 during a fade).
        """
        r, used_rgb = self.resolution, self._active_resolutions()
        out = set()
        for name, _ in self.named_parameters():
            kind, key = name.split(".")[:2]
            if (kind == "blocks" and int(key) > r) or (kind == "rgb" and int(key) not in used_rgb):
                out.add(name)
        return out

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, alpha={self.alpha:.4g}, step={self._step}"


@GENERATORS.register("progan", injected=G_INJECTED)
class ProGANGenerator(_Growing):
    """Progressive GAN generator (Karras et al. 2018, Table 2): z -> 4x4 -> ... -> r, upsampled to R.

    Fade-in (Fig. 2): while block r is new, out = lerp(up2(toRGB_{r/2}(h)), toRGB_r(block_r(h)), alpha)
    with h the r/2 feature map, then tanh and nearest upsampling to R.
    """

    def __init__(
        self,
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        z_dim: int = 128,
        width: int = 64,
        max_channels: int = 512,
        start: int = 4,
        fade_steps: int = 1000,
        stable_steps: int = 1000,
    ) -> None:
        """``width``/``max_channels``: see ``progan_channels``; ``start``, ``fade_steps``, ``stable_steps``:
        see ``growth``. The paper: z_dim 512, 800k images per phase. Give D the same growth options."""
        super().__init__()
        model = "generator 'progan'"
        c, res = _check_options(
            out_shape, "out_shape", model, num_classes, width, max_channels, start, fade_steps, stable_steps
        )
        if z_dim < 1:
            raise ValueError(f"{model}: z_dim={z_dim} must be >= 1")
        self._init_growth(res, start, fade_steps, stable_steps)
        self.out_shape, self.num_classes, self.z_dim = (c, res, res), num_classes, z_dim
        self.channels = ch = progan_channels(res, width, max_channels)
        blocks: dict[str, nn.Module] = {
            # Official code: a dense layer with gain sqrt(2)/4 stands in for the paper's "Conv 4x4" on z.
            "4": nn.Sequential(
                PixelNorm(),
                EqualizedLinear(z_dim, 16 * ch[4], gain=math.sqrt(2) / 4),
                nn.Unflatten(1, (ch[4], 4, 4)),
                _lrelu(),
                PixelNorm(),
                EqualizedConv2d(ch[4], ch[4], 3, padding=1),
                _lrelu(),
                PixelNorm(),
            ),
        }
        for r in list(ch)[1:]:
            blocks[str(r)] = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                EqualizedConv2d(ch[r // 2], ch[r], 3, padding=1),
                _lrelu(),
                PixelNorm(),
                EqualizedConv2d(ch[r], ch[r], 3, padding=1),
                _lrelu(),
                PixelNorm(),
            )
        self.blocks = nn.ModuleDict(blocks)
        # toRGB for every resolution that can be the output or the faded-out branch; linear, gain 1.
        self.rgb = nn.ModuleDict({str(r): EqualizedConv2d(ch[r], c, 1, gain=1.0) for r in ch if r >= start})

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(N, z_dim) -> (N, C, R, R) in [-1, 1], whatever the stage. ``y`` is unused."""
        assert_shape(z, [None, self.z_dim], "z")
        r, alpha = self._stage
        h = z
        for key, block in self.blocks.items():
            if int(key) >= r:
                break
            h = block(h)  # h: the r/2 feature map (z itself when r = 4)
        x = self.rgb[str(r)](self.blocks[str(r)](h))
        if alpha < 1.0:
            low = F.interpolate(self.rgb[str(r // 2)](h), scale_factor=2, mode="nearest")
            x = torch.lerp(low, x, alpha)
        x = torch.tanh(x)
        return F.interpolate(x, scale_factor=self.res // r, mode="nearest") if r < self.res else x


@DISCRIMINATORS.register("progan", injected=D_INJECTED)
class ProGANDiscriminator(_Growing):
    """Progressive GAN discriminator (Karras et al. 2018, Table 2): (N, C, R, R) pooled to r -> ... -> 1 logit.

    Fade-in (Fig. 2): while block r is new, h = lerp(fromRGB_{r/2}(pool2(x_r)), block_r(fromRGB_r(x_r)), alpha)
    with x_r the input average-pooled to r. The last block: minibatch stddev (Sec. 3), conv3x3, conv4x4
    (a linear layer on the flattened 4x4 map), linear to 1 logit; ``features`` are its input.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 64,
        max_channels: int = 512,
        start: int = 4,
        fade_steps: int = 1000,
        stable_steps: int = 1000,
        mbstd_group: int = 4,
    ) -> None:
        """Options as for the generator (use the same growth options); ``mbstd_group``: the minibatch
        stddev group size (the official code: 4)."""
        super().__init__()
        model = "discriminator 'progan'"
        c, res = _check_options(
            in_shape, "in_shape", model, num_classes, width, max_channels, start, fade_steps, stable_steps
        )
        if mbstd_group < 1:
            raise ValueError(f"{model}: mbstd_group={mbstd_group} must be >= 1")
        self._init_growth(res, start, fade_steps, stable_steps)
        self.in_shape, self.num_classes = (c, res, res), num_classes
        self.channels = ch = progan_channels(res, width, max_channels)
        self.rgb = nn.ModuleDict(
            {str(r): nn.Sequential(EqualizedConv2d(c, ch[r], 1), _lrelu()) for r in ch if r >= start}
        )
        self.blocks = nn.ModuleDict(
            {  # R, R/2, ..., 8: each ends at half its resolution
                str(r): nn.Sequential(
                    EqualizedConv2d(ch[r], ch[r], 3, padding=1),
                    _lrelu(),
                    EqualizedConv2d(ch[r], ch[r // 2], 3, padding=1),
                    _lrelu(),
                    nn.AvgPool2d(2),
                )
                for r in reversed(list(ch)[1:])
            }
        )
        self.final = nn.Sequential(  # the 4x4 block, always active
            MinibatchStdDev(mbstd_group),
            EqualizedConv2d(ch[4] + 1, ch[4], 3, padding=1),
            _lrelu(),
            nn.Flatten(),
            EqualizedLinear(16 * ch[4], ch[4]),
            _lrelu(),
        )
        self.head = EqualizedLinear(ch[4], 1, gain=1.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        """(N, C, R, R) -> DOut(logits (N,), features (N, channels[4])), whatever the stage. ``y`` is unused."""
        assert_shape(x, [None, *self.in_shape], "x")
        r, alpha = self._stage
        x = _down(x, self.res // r)
        h = self.rgb[str(r)](x)
        if r > 4:
            h = self.blocks[str(r)](h)
            if alpha < 1.0:
                h = torch.lerp(self.rgb[str(r // 2)](_down(x, 2)), h, alpha)
        for key, block in self.blocks.items():
            if int(key) < r:
                h = block(h)
        h = self.final(h)
        return DOut(logits=self.head(h).squeeze(1), features=h)
