"""DCGAN generator and discriminator (Radford, Metz & Chintala, 2016, "Unsupervised Representation
Learning with Deep Convolutional Generative Adversarial Networks", Sec. 3).

The paper's "Architecture guidelines for stable Deep Convolutional GANs", each followed below:
  1. replace pooling with strided convolutions (D) and fractional-strided convolutions (G);
  2. use batchnorm in both G and D, except the G output layer and the D input layer;
  3. remove fully connected hidden layers;
  4. ReLU in G for all layers except the output, which uses tanh;
  5. LeakyReLU in D (slope 0.2, Sec. 4).
Weights start from N(0, 0.02) (Sec. 4, "Details of adversarial training").

One class serves every resolution: channels come from a width table (``dcgan_channels``) instead of
a class per image size. The paper's 64x64 LSUN generator (1024 channels at 4x4) is this table with
``width=128, max_channels=1024``; the defaults give the common half-width variant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from gankit.models.base import D_INJECTED, DISCRIMINATORS, G_INJECTED, GENERATORS, DOut, assert_shape
from gankit.nn.conditional import ConditionalBatchNorm2d, Projection, one_hot
from gankit.nn.minibatch import MinibatchStdDev
from gankit.nn.vbn import VirtualBatchNorm, reference_z, vbn_forward

SUPPORTED_RESOLUTIONS = (8, 16, 32, 64, 128, 256)
Init = Literal["dcgan", "default"]


def dcgan_channels(resolution: int, width: int = 64, max_channels: int = 512) -> dict[int, int]:
    """Channels per feature-map resolution r = 4, 8, ..., resolution/2.

    ``min(max_channels, width * (resolution // r) // 2)``: channels halve each time the map doubles,
    as in Radford et al.'s Fig. 1 (1024 -> 512 -> 256 -> 128). R=64, width=64 gives
    {4: 512, 8: 256, 16: 128, 32: 64}.
    """
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ValueError(f"dcgan: resolution {resolution} is not supported; use one of {SUPPORTED_RESOLUTIONS}")
    if width <= 0 or max_channels <= 0:
        raise ValueError(f"dcgan: width={width} and max_channels={max_channels} must be positive")
    return {
        4 * 2**i: min(max_channels, width * (resolution // (4 * 2**i)) // 2)
        for i in range(resolution.bit_length() - 3)  # r = 4 .. resolution/2
    }


def dcgan_init_(module: nn.Module) -> None:
    """Radford et al. (2016), Sec. 4: "All weights were initialized from a zero-centered Normal
    distribution with standard deviation 0.02" -- conv weights ~ N(0, 0.02), biases 0.

    Deviation: norm scales are drawn from N(1, 0.02), as in the authors' and PyTorch's reference
    code, since a zero-centred scale would start every normalised layer switched off.
    Apply with ``net.apply(dcgan_init_)``.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, VirtualBatchNorm)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _image_shape(shape: tuple[int, ...], what: str, model: str) -> tuple[int, int]:
    """Check a (C, H, W) image shape for DCGAN and return (C, R)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        raise ValueError(f"{model}: {what}={shape} is not an image; DCGAN needs (C, H, W)")
    c, h, w = shape
    if h != w:
        raise ValueError(f"{model}: {what}={shape} is not square (H={h}, W={w}); DCGAN needs H == W")
    if c <= 0 or h not in SUPPORTED_RESOLUTIONS:
        raise ValueError(
            f"{model}: {what}={shape} is not supported; C must be >= 1 and H = W one of {SUPPORTED_RESOLUTIONS}"
        )
    return c, h


def _label_maps(y: torch.Tensor | None, num_classes: int, like: torch.Tensor, model: str) -> torch.Tensor:
    """One-hot labels as (N, K, H, W) constant maps shaped like ``like`` (concatenation cGAN)."""
    if y is None:
        raise ValueError(f"{model} is class-conditional (num_classes={num_classes}): call it with labels y")
    h = one_hot(y, num_classes, like)[:, :, None, None]
    return h.expand(-1, -1, like.shape[2], like.shape[3])


def _check_init(init: str, model: str) -> None:
    if init not in ("dcgan", "default"):
        raise ValueError(f"{model}: init={init!r}; valid choices: dcgan, default")


@GENERATORS.register("dcgan", injected=G_INJECTED)
class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al., 2016): z -> 4x4 -> ... -> R x R by fractional-strided convs.

    Project-and-reshape is a 4x4 transposed conv on z viewed as a 1x1 map (guideline 3: no fully
    connected layer), then ConvTranspose2d(4, stride 2, pad 1) doubles the map until R. BatchNorm and
    ReLU follow every layer but the last, which maps to C channels with tanh (guidelines 2 and 4).
    """

    ref_z: torch.Tensor  # the reference batch's latents, a buffer registered only with virtual_batch_norm

    def __init__(
        self,
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        z_dim: int = 100,
        width: int = 64,
        max_channels: int = 512,
        init: Init = "dcgan",
        virtual_batch_norm: int = 0,
        conditioning: Literal["concat", "batchnorm"] = "concat",
    ) -> None:
        """``virtual_batch_norm``: size of a fixed reference batch of z; every BatchNorm becomes
        virtual batch norm (Salimans et al. 2016; 0 = off). ``conditioning`` (with num_classes > 0):
        ``concat``, the one-hot label beside z (Mirza & Osindero 2014), or ``batchnorm``, class-conditional
        batch norm in every hidden layer (the G of Miyato & Koyama 2018)."""
        super().__init__()
        model = "generator 'dcgan'"
        if virtual_batch_norm < 0:
            raise ValueError(f"{model}: virtual_batch_norm must be >= 0, got {virtual_batch_norm}")
        norm: Callable[[int], nn.Module] = VirtualBatchNorm if virtual_batch_norm else nn.BatchNorm2d
        if num_classes < 0 or (num_classes and virtual_batch_norm):
            raise ValueError(
                f"{model}: num_classes={num_classes} must be >= 0, and a class-conditional G cannot "
                "use virtual_batch_norm (its reference batch has no labels)"
            )
        _check_init(init, model)
        if conditioning not in ("concat", "batchnorm"):
            raise ValueError(f"{model}: conditioning={conditioning!r}; valid choices: concat, batchnorm")
        if z_dim <= 0:
            raise ValueError(f"{model}: z_dim={z_dim} must be positive")
        c, res = _image_shape(out_shape, "out_shape", model)
        self.out_shape = (c, res, res)
        self.num_classes = num_classes
        self.z_dim = z_dim
        self.channels = dcgan_channels(res, width, max_channels)
        self.concat = num_classes if conditioning == "concat" else 0
        if num_classes and not self.concat:
            norm = lambda ch: ConditionalBatchNorm2d(ch, num_classes)  # noqa: E731

        # bias=False before BatchNorm: its mean subtraction cancels a bias anyway.
        layers: list[nn.Module] = [  # a cGAN's one-hot label joins z as K more input channels
            nn.ConvTranspose2d(z_dim + self.concat, self.channels[4], 4, 1, 0, bias=False),
            norm(self.channels[4]),
            nn.ReLU(),
        ]
        for r, ch in self.channels.items():
            if 2 * r == res:  # output layer: no BatchNorm (guideline 2), tanh (guideline 4)
                layers += [nn.ConvTranspose2d(ch, c, 4, 2, 1), nn.Tanh()]
            else:
                nxt = self.channels[2 * r]
                layers += [nn.ConvTranspose2d(ch, nxt, 4, 2, 1, bias=False), norm(nxt), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        if virtual_batch_norm:
            self.register_buffer("ref_z", reference_z(virtual_batch_norm, z_dim).view(-1, z_dim, 1, 1))
        if init == "dcgan":
            self.apply(dcgan_init_)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(N, z_dim) [, labels (N,)] -> (N, C, R, R) in [-1, 1]. With num_classes > 0 the label enters
        by concatenation to z or through the conditional batch norms; otherwise ``y`` is unused."""
        assert_shape(z, [None, self.z_dim], "z")
        z = z.view(z.shape[0], self.z_dim, 1, 1)  # z as a 1x1 map, z_dim channels
        if self.concat:
            z = torch.cat([z, _label_maps(y, self.num_classes, z, "generator 'dcgan'")], dim=1)
        elif self.num_classes:
            if y is None:
                raise ValueError(
                    f"generator 'dcgan' is class-conditional (num_classes={self.num_classes}): call it with labels y"
                )
            for layer in self.net:
                z = layer(z, y) if isinstance(layer, ConditionalBatchNorm2d) else layer(z)
            return z
        if hasattr(self, "ref_z"):
            return vbn_forward(self.net, self.ref_z, z)
        return self.net(z)


@DISCRIMINATORS.register("dcgan", injected=D_INJECTED)
class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al., 2016): R x R -> ... -> 4x4 by strided convs -> 1 logit.

    Conv2d(4, stride 2, pad 1) halves the map (guideline 1: no pooling) with LeakyReLU(0.2)
    (guideline 5); normalisation on every block but the input one (guideline 2). A 4x4 valid conv to one
    channel replaces the fully connected head (guideline 3). ``norm="layer"`` (GroupNorm with one
    group) is for critics with gradient penalties, whose per-sample gradients batch norm would couple
    (Gulrajani et al., 2017, Sec. 4); ``"none"`` drops normalisation.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int = 0,
        width: int = 64,
        max_channels: int = 512,
        norm: Literal["batch", "layer", "none"] = "batch",
        init: Init = "dcgan",
        minibatch_stddev: int = 0,
        conditioning: Literal["concat", "auxiliary", "projection"] = "concat",
    ) -> None:
        """``minibatch_stddev``: group size of a minibatch-stddev channel on the 4x4 map before the head
        (Karras et al. 2018; 0 = none). ``conditioning`` (with num_classes > 0): ``concat``, the label as K
        constant input maps (Mirza & Osindero 2014); ``auxiliary``, an unconditional D with a class
        head on its features for AC-GAN (Odena et al. 2017); or ``projection``, the logit plus
        embed(y)^T phi(x) on the flattened 4x4 features (Miyato & Koyama 2018, Eq. 3)."""
        super().__init__()
        model = "discriminator 'dcgan'"
        if minibatch_stddev < 0:
            raise ValueError(f"{model}: minibatch_stddev must be >= 0, got {minibatch_stddev}")
        if num_classes < 0:
            raise ValueError(f"{model}: num_classes={num_classes} must be >= 0")
        if conditioning not in ("concat", "auxiliary", "projection"):
            raise ValueError(f"{model}: conditioning={conditioning!r}; valid choices: concat, auxiliary, projection")
        _check_init(init, model)
        if norm not in ("batch", "layer", "none"):
            raise ValueError(f"{model}: norm={norm!r}; valid choices: batch, layer, none")
        c, res = _image_shape(in_shape, "in_shape", model)
        self.in_shape = (c, res, res)
        self.num_classes = num_classes
        self.channels = dcgan_channels(res, width, max_channels)

        layers: list[nn.Module] = []
        self.concat = num_classes if conditioning == "concat" else 0
        in_ch = c + self.concat  # a cGAN's one-hot label arrives as K constant input maps
        for i, r in enumerate(sorted(self.channels, reverse=True)):  # output maps R/2, R/4, ..., 4
            out_ch = self.channels[r]
            normed = norm != "none" and i > 0  # never on the input block (guideline 2)
            layers.append(nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=not normed))
            if normed:
                layers.append(nn.BatchNorm2d(out_ch) if norm == "batch" else nn.GroupNorm(1, out_ch))
            layers.append(nn.LeakyReLU(0.2))
            in_ch = out_ch
        self.body = nn.Sequential(*layers)
        self.stddev = MinibatchStdDev(minibatch_stddev) if minibatch_stddev else None
        self.head = nn.Conv2d(self.channels[4] + (1 if minibatch_stddev else 0), 1, 4, 1, 0)
        features = self.channels[4] * 16
        self.classifier = nn.Linear(features, num_classes) if num_classes and conditioning == "auxiliary" else None
        if init == "dcgan":
            self.apply(dcgan_init_)
        # after init: the projection keeps its own (Xavier) initialisation
        self.projection = (
            Projection(features, num_classes, model) if num_classes and conditioning == "projection" else None
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        """(N, C, R, R) [, labels (N,)] -> DOut(logits (N,), features (N, ch[4] * 16)). With num_classes > 0
        the one-hot label enters as K constant maps beside the image (Mirza & Osindero 2014)."""
        assert_shape(x, [None, *self.in_shape], "x")
        if self.concat:
            x = torch.cat([x, _label_maps(y, self.num_classes, x, "discriminator 'dcgan'")], dim=1)
        h = self.body(x)  # (N, ch[4], 4, 4)
        logits = self.head(self.stddev(h) if self.stddev is not None else h).view(x.shape[0])
        phi = h.flatten(1)
        if self.projection is not None:
            logits = logits + self.projection(phi, y)
        class_logits = self.classifier(phi) if self.classifier is not None else None
        return DOut(logits=logits, features=phi, class_logits=class_logits)
