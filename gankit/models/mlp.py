"""Multi-layer perceptron generator and discriminator, for toy 2-D data and flattened images.

The original GAN (Goodfellow et al., 2014, "Generative Adversarial Nets", Sec. 5) used MLPs for both
players ("the generator nets used a mixture of rectifier linear activations and sigmoid activations,
while the discriminator net used maxout activations" and dropout). Here both are plain stacks of
``Linear -> [BatchNorm] -> activation`` whose widths come from the ``hidden`` option, so the same
class serves a 2-D mixture of Gaussians and a flattened MNIST digit.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from gankit.models.base import D_INJECTED, DISCRIMINATORS, G_INJECTED, GENERATORS, DOut, assert_shape, normal_init_
from gankit.nn.conditional import one_hot
from gankit.nn.minibatch import MinibatchDiscrimination, MinibatchStdDev
from gankit.nn.noise import GaussianNoise
from gankit.nn.vbn import VirtualBatchNorm, reference_z, vbn_forward

Activation = Literal["relu", "leaky-relu", "tanh", "elu"]
ACTIVATIONS = ("relu", "leaky-relu", "tanh", "elu")


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by recipe name; ``leaky-relu`` uses slope 0.2 (Radford et al., 2016)."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky-relu":
        return nn.LeakyReLU(0.2)
    if name == "tanh":
        return nn.Tanh()
    if name == "elu":
        return nn.ELU()
    raise ValueError(f"unknown activation {name!r}; valid choices: {', '.join(ACTIVATIONS)}")


def _check_shape(shape: tuple[int, ...], what: str, model: str) -> tuple[int, ...]:
    """Normalise a data shape to a tuple of positive ints: (D,) for points or (C, H, W) for images."""
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (1, 3) or any(s <= 0 for s in shape):
        raise ValueError(f"{model}: {what}={shape} is not supported; use (D,) for points or (C, H, W) for images")
    return shape


def _check_hidden(hidden: list[int], model: str) -> list[int]:
    hidden = [int(h) for h in hidden]
    if any(h <= 0 for h in hidden):
        raise ValueError(f"{model}: hidden={hidden} must contain positive layer widths")
    return hidden


@GENERATORS.register("mlp", injected=G_INJECTED)
class MLPGenerator(nn.Module):
    """MLP generator (Goodfellow et al., 2014): z -> Linear/[BN]/activation stack -> out_shape.

    With ``num_classes`` > 0 it is the cGAN generator of Mirza & Osindero (2014): G(z, y) sees the
    one-hot label beside z (and the discriminator the one-hot beside x).

    ``out_activation="auto"`` gives tanh for (C, H, W) images, which live in [-1, 1] by convention, and
    the identity for points, whose range is the data's own.
    """

    ref_z: torch.Tensor  # the reference batch's latents, a buffer registered only with virtual_batch_norm

    def __init__(
        self,
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        z_dim: int = 16,
        # A list, not a tuple, so the validated option round-trips through YAML; it is never mutated.
        hidden: list[int] = [128, 128, 128],  # noqa: B006
        activation: Activation = "relu",
        batch_norm: bool = False,
        out_activation: Literal["auto", "tanh", "none"] = "auto",
        virtual_batch_norm: int = 0,
        init_std: float = 0.0,
    ) -> None:
        """``virtual_batch_norm``: size of the fixed reference batch of z for virtual batch
        normalisation after every hidden layer (Salimans et al. 2016; 0 = off). ``init_std`` > 0 draws
        the linear weights from N(0, init_std) with zero biases (``normal_init_``); 0 keeps PyTorch's."""
        super().__init__()
        if virtual_batch_norm < 0 or (virtual_batch_norm and batch_norm):
            raise ValueError("generator 'mlp': use batch_norm or virtual_batch_norm=N (N > 0), not both")
        if num_classes < 0 or (num_classes and virtual_batch_norm):
            raise ValueError(
                "generator 'mlp': num_classes must be >= 0, and a class-conditional G cannot use "
                "virtual batch norm (its reference batch has no labels)"
            )
        if z_dim <= 0:
            raise ValueError(f"generator 'mlp': z_dim={z_dim} must be positive")
        if out_activation not in ("auto", "tanh", "none"):
            raise ValueError(f"generator 'mlp': out_activation={out_activation!r}; use auto, tanh or none")
        self.out_shape = _check_shape(out_shape, "out_shape", "generator 'mlp'")
        self.num_classes = num_classes
        self.z_dim = z_dim
        self.hidden = _check_hidden(hidden, "generator 'mlp'")

        layers: list[nn.Module] = []
        width = z_dim + num_classes  # cGAN (Mirza & Osindero 2014): y enters as a one-hot beside z
        for h in self.hidden:
            # A bias right before BatchNorm is cancelled by its mean subtraction, so drop it.
            layers.append(nn.Linear(width, h, bias=not (batch_norm or virtual_batch_norm)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            if virtual_batch_norm:
                layers.append(VirtualBatchNorm(h))
            layers.append(make_activation(activation))
            width = h
        if virtual_batch_norm:
            self.register_buffer("ref_z", reference_z(virtual_batch_norm, z_dim))
        layers.append(nn.Linear(width, math.prod(self.out_shape)))
        use_tanh = out_activation == "tanh" or (out_activation == "auto" and len(self.out_shape) == 3)
        layers.append(nn.Tanh() if use_tanh else nn.Identity())
        self.net = nn.Sequential(*layers)
        normal_init_(self.net, init_std)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(N, z_dim) -> (N, *out_shape); ``y`` (N,) class ids when the G is class-conditional."""
        assert_shape(z, [None, self.z_dim], "z")
        if self.num_classes:
            if y is None:
                raise ValueError("generator 'mlp' is class-conditional: call G(z, y)")
            z = torch.cat([z, one_hot(y, self.num_classes, z)], dim=1)
        if hasattr(self, "ref_z"):
            return vbn_forward(self.net, self.ref_z, z).view(z.shape[0], *self.out_shape)
        return self.net(z).view(z.shape[0], *self.out_shape)


@DISCRIMINATORS.register("mlp", injected=D_INJECTED)
class MLPDiscriminator(nn.Module):
    """MLP discriminator (Goodfellow et al., 2014): flatten -> Linear/activation/dropout -> 1 logit.

    Dropout follows the original paper's discriminator; LeakyReLU(0.2) by default follows Radford et
    al. (2016). ``features`` are the last hidden activations (before dropout, so feature matching
    compares the signal rather than the dropout noise).
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int = 0,
        hidden: list[int] = [128, 128, 128],  # noqa: B006  (never mutated; list for YAML)
        activation: Activation = "leaky-relu",
        dropout: float = 0.0,
        minibatch_discrimination: int = 0,
        minibatch_stddev: int = 0,
        conditioning: Literal["concat", "auxiliary"] = "concat",
        noise: list[float] = [],  # noqa: B006  (never mutated; list for YAML)
        weight_norm: bool = False,
    ) -> None:
        """``minibatch_discrimination``: number of kernels B of a minibatch-discrimination layer before the
        head (Salimans et al. 2016; 0 = none); ``minibatch_stddev``: group size of a minibatch-stddev
        feature before the head (Karras et al. 2018; 0 = none). With num_classes > 0, ``conditioning``
        ``concat`` feeds the one-hot label beside x (cGAN), ``auxiliary`` adds a K-way class head on the
        features (AC-GAN, the semi-supervised K+1-class D). ``noise`` [input std, hidden std]: Gaussian
        noise in training (Salimans et al.'s MNIST D: [0.3, 0.5]); ``weight_norm``: every linear layer
        w = g v / ||v|| (Salimans & Kingma 2016)."""
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"discriminator 'mlp': num_classes={num_classes} must be >= 0")
        if minibatch_discrimination < 0 or minibatch_stddev < 0:
            raise ValueError("discriminator 'mlp': minibatch_discrimination and minibatch_stddev must be >= 0")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"discriminator 'mlp': dropout={dropout} must be in [0, 1)")
        if len(noise) > 2 or any(v < 0 for v in noise):
            raise ValueError(f"discriminator 'mlp': noise={noise} must be [input std] or [input std, hidden std], >= 0")
        if conditioning not in ("concat", "auxiliary"):
            raise ValueError(f"discriminator 'mlp': conditioning={conditioning!r}; valid choices: concat, auxiliary")
        self.in_shape = _check_shape(in_shape, "in_shape", "discriminator 'mlp'")
        self.num_classes = num_classes
        self.hidden = _check_hidden(hidden, "discriminator 'mlp'")

        self.concat = num_classes if conditioning == "concat" else 0
        wn = nn.utils.parametrizations.weight_norm if weight_norm else (lambda m: m)
        in_std, hidden_std = (list(noise) + [0.0, 0.0])[:2]
        self.input_noise = GaussianNoise(in_std)
        self.blocks = nn.ModuleList()
        width = math.prod(self.in_shape) + self.concat  # cGAN: the one-hot y beside the flattened x
        for h in self.hidden:
            self.blocks.append(nn.Sequential(wn(nn.Linear(width, h)), make_activation(activation)))
            width = h
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.hidden_noise = GaussianNoise(hidden_std)
        batch_layers: list[nn.Module] = []
        if minibatch_stddev:
            batch_layers.append(MinibatchStdDev(minibatch_stddev))
            width += 1
        if minibatch_discrimination:
            mbd = MinibatchDiscrimination(width, minibatch_discrimination)
            batch_layers.append(mbd)
            width = mbd.out_features
        self.batch_layers = nn.Sequential(*batch_layers)
        self.head = wn(nn.Linear(width, 1))
        self.classifier = wn(nn.Linear(width, num_classes)) if num_classes and conditioning == "auxiliary" else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DOut:
        """(N, *in_shape) -> DOut(logits (N,), features (N, hidden[-1])); ``y`` when class-conditional."""
        assert_shape(x, [None, *self.in_shape], "x")
        h = features = self.input_noise(x.flatten(1))  # with hidden=[] the features are the input itself
        if self.concat:
            if y is None:
                raise ValueError("discriminator 'mlp' is class-conditional: call D(x, y)")
            h = features = torch.cat([h, one_hot(y, self.num_classes, h)], dim=1)
        for block in self.blocks:
            features = block(h)
            # Noise and dropout follow each hidden layer (the head's input included) and are left out of
            # the features, so feature matching compares the signal.
            h = self.dropout(self.hidden_noise(features))
        h = self.batch_layers(h)
        class_logits = self.classifier(h) if self.classifier is not None else None
        return DOut(logits=self.head(h).squeeze(1), features=features, class_logits=class_logits)
