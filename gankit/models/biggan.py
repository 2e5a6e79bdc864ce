"""BigGAN's generator, small (Brock, Donahue & Simonyan 2019, "Large Scale GAN Training for High Fidelity
Natural Image Synthesis", Sec. 3 and App. B).

What makes it BigGAN rather than the SN-GAN ResNet generator it grows from (gankit.models.resnet):
  * a **shared class embedding**: one nn.Embedding(num_classes, shared_dim) feeds every block, instead
    of a separate class-id table per batch norm;
  * **hierarchical latents**: z is split into len(blocks) + 1 equal chunks; the first goes to the
    initial linear layer and chunk i, concatenated with the shared embedding, conditions block i;
  * **conditional batch norm from [shared(y), z_i]** by linear projection (LinearConditionalBatchNorm2d).
The discriminator is a projection D: the paper's ResNet (``resnet`` with num_classes > 0, optionally
with attention), or the DCGAN-sized one (``dcgan`` with conditioning=projection) of the CPU recipe; spectral
norm in G and D, orthogonal regularisation (``orthogonal`` penalty), EMA of G and
the truncation trick (``gankit sample --truncation``) are recipe options, see biggan-mnist.yaml.
Width tables are resnet's ``G_TABLE``: R = 32 with width 64 gives the paper's CIFAR-10 model (256 ch).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from gankit.models.base import G_INJECTED, GENERATORS, assert_shape
from gankit.models.resnet import G_TABLE, _check, _image, _init
from gankit.nn.attention import SelfAttention
from gankit.nn.resblocks import GBlock


@GENERATORS.register("biggan", injected=G_INJECTED)
class BigGANGenerator(nn.Module):
    """BigGAN generator: z = [z_0, z_1, ..., z_k]; h = Linear(z_0) as s x s; block i gets cond
    [shared(y), z_i] in its conditional batch norms; BN, ReLU, conv3x3, tanh. With num_classes = 0 the
    conditioning is z_i alone (hierarchical latents without classes)."""

    def __init__(
        self,
        out_shape: tuple[int, ...],
        num_classes: int = 0,
        z_dim: int = 120,
        shared_dim: int = 128,
        width: int = 64,
        attention: int = 0,
        init: Literal["xavier", "default"] = "xavier",
    ) -> None:
        super().__init__()
        model = "generator 'biggan'"
        c, res = _image(out_shape, G_TABLE, model)
        start, mults = G_TABLE[res]
        resolutions = [start * 2 ** (i + 1) for i in range(len(mults))]
        _check(num_classes, attention, resolutions[:-1], model)
        chunks = len(mults) + 1
        if z_dim <= 0 or z_dim % chunks:
            raise ValueError(
                f"{model}: z_dim={z_dim} must split into {chunks} equal chunks at {res}x{res} "
                f"(one for the input layer, one per block): use a multiple of {chunks}, e.g. "
                f"{chunks * 20}"
            )
        if width < 2 or (num_classes and shared_dim < 1):
            raise ValueError(f"{model}: width={width} must be >= 2 and shared_dim={shared_dim} >= 1")
        self.out_shape, self.z_dim, self.num_classes = (c, res, res), z_dim, num_classes
        self.chunk = z_dim // chunks
        self.start, self.ch0 = start, mults[0][0] * width
        self.shared = nn.Embedding(num_classes, shared_dim) if num_classes else None
        cond_dim = self.chunk + (shared_dim if num_classes else 0)
        self.linear = nn.Linear(self.chunk, start * start * self.ch0)
        self.blocks = nn.ModuleList(GBlock(m_in * width, m_out * width, cond_dim=cond_dim) for m_in, m_out in mults)
        self.attention = nn.ModuleDict(
            {
                str(i): SelfAttention(m_out * width)
                for i, ((_, m_out), r) in enumerate(zip(mults, resolutions))
                if r == attention
            }
        )
        last = mults[-1][1] * width
        self.out = nn.Sequential(nn.BatchNorm2d(last), nn.ReLU(), nn.Conv2d(last, c, 3, 1, 1), nn.Tanh())
        _init(self, init)
        if self.shared is not None:
            nn.init.normal_(self.shared.weight, 0.0, 1.0)

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        """The shared class embedding of labels y, (N, shared_dim); interpolate these to morph classes."""
        if self.shared is None:
            raise ValueError("generator 'biggan' was built without classes (num_classes=0): nothing to embed")
        return self.shared(y)

    def forward(
        self, z: torch.Tensor, y: torch.Tensor | None = None, class_embedding: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N, z_dim) [+ labels y, or a class embedding directly] -> (N, C, R, R) in [-1, 1]."""
        assert_shape(z, [None, self.z_dim], "z")
        zs = z.split(self.chunk, dim=1)
        emb = None
        if self.shared is not None:
            if class_embedding is None:
                if y is None:
                    raise ValueError("generator 'biggan' is class-conditional: call G(z, y)")
                class_embedding = self.shared(y)
            emb = class_embedding
        h = self.linear(zs[0]).view(z.shape[0], self.ch0, self.start, self.start)
        for i, block in enumerate(self.blocks):
            cond = zs[i + 1] if emb is None else torch.cat([emb, zs[i + 1]], dim=1)
            h = block(h, cond)
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        return self.out(h)
