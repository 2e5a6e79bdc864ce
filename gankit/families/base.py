"""The family registry and the ``Family`` base class: what every family declares and may override.

A family says how a batch flows through the networks. Everything the rest of gankit needs to know
about it is a typed class attribute or a method here, so the trainer and ``training/build.py`` never
probe a family with ``getattr`` and a new family needs no edit outside its own file (and its import
in ``families/__init__.py``). The step contract itself (phases, batch, step context) is in
``gankit.families.step``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from gankit.config import ConfigError
from gankit.data.base import to_float
from gankit.families.step import Batch, Phase, StepContext
from gankit.nn.mode import eval_mode
from gankit.registry import Registry

# The built pieces and data the trainer hands every family; a family's own keyword arguments beyond
# these are its recipe options (``family: {name: pix2pix, l1_weight: 100}``).
FAMILY_INJECTED = (
    "G",
    "D",
    "objective",
    "penalties",
    "device",
    "tricks",
    "encoder",
    "labelled",
    "heldout",
    "probe_train",
)
FAMILIES = Registry("family", injected=FAMILY_INJECTED)


class Family:
    """What a family is: its abilities (class attributes, read before anything is built) and the
    methods the trainer calls. Subclasses set what differs; the defaults describe the plain z -> x game.
    """

    family_name: ClassVar[str] = ""
    adversarial: ClassVar[bool] = True  # trains a discriminator (False: the autoencoder family)
    conditional: ClassVar[bool] = False  # G(z, y) and D(x, y) with the data's classes
    classifier_d: ClassVar[bool] = False  # D has the data's K classes as outputs while G stays unconditional
    needs_encoder: ClassVar[bool] = False  # an encoder x -> z trains with G (BiGAN, VEEGAN)
    translates: ClassVar[bool] = False  # G maps images to images; the family draws grids and scores outputs
    two_way: ClassVar[bool] = False  # two generators and two discriminators (CycleGAN)
    distributed: ClassVar[bool] = True  # runs under torchrun (DDP is wired for single-network G and D)
    d_options: ClassVar[dict[str, Any]] = {}  # options the family imposes on the discriminator
    grid_legend: ClassVar[str] = ""  # how to read the family's own sample grids
    # What a family refuses, checked before anything is built (``check``): the objectives it works
    # with (empty: any) and the tricks it cannot compose with, each with the reason.
    objectives: ClassVar[tuple[str, ...]] = ()
    objectives_reason: ClassVar[str] = ""
    unsupported_tricks: ClassVar[tuple[str, ...]] = ()
    tricks_reason: ClassVar[str] = ""

    G: nn.Module
    D: nn.Module | None
    device: torch.device

    if TYPE_CHECKING:  # how the trainer builds a family (FAMILY_INJECTED); its recipe options follow as keywords

        def __init__(
            self,
            G: nn.Module,
            D: nn.Module | None,
            objective: Any,
            penalties: list[tuple[str, Any]],
            device: torch.device,
            tricks: Sequence[tuple[str, Any]] = (),
            **options: Any,
        ) -> None: ...

    @classmethod
    def check(cls, objective: str, tricks: list[str]) -> None:
        """Refuse objectives or tricks that make no sense in this family, with the reason."""
        if cls.objectives and objective not in cls.objectives:
            why = f": {cls.objectives_reason}" if cls.objectives_reason else ""
            raise ValueError(
                f"family {cls.family_name!r} works with objectives {', '.join(cls.objectives)}; got {objective!r}{why}"
            )
        bad = [t for t in tricks if t in cls.unsupported_tricks]
        if bad:
            raise ValueError(
                f"family {cls.family_name!r} does not compose with trick(s) {', '.join(bad)}: {cls.tricks_reason}"
            )

    @classmethod
    def d_in_shape(cls, shape: tuple[int, ...], z_dim: int, in_shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """What D judges: the data itself here; (x, z) pairs in the bidirectional families; (input,
        output) pairs in pix2pix (``in_shape``: what G reads, for the image-to-image families)."""
        return shape

    @classmethod
    def g_in_shape(
        cls, shape: tuple[int, ...], in_shape: tuple[int, ...] | None, options: dict[str, Any]
    ) -> tuple[int, ...]:
        """The input image shape an image-to-image G reads (``translates`` families only)."""
        raise NotImplementedError(f"family {cls.family_name!r} maps noise to samples; it has no input images")

    @classmethod
    def extra_inputs(cls, recipe: Any, source: Any) -> dict[str, Any]:
        """What the family takes beyond the networks (labelled subsets, held-out images), built from the
        recipe and the data source; the default takes nothing and refuses options meant for others."""
        if int(recipe.data.options.get("labels_per_class", 0)):
            raise ConfigError(
                f"data.labels_per_class is for family=semi-supervised; family {recipe.family.name!r} "
                "uses every label the data has (remove the option)"
            )
        return {}

    def phases(self, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer | None, n_critic: int) -> list[Phase]:
        raise NotImplementedError

    def d_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def g_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def scores(self, G: nn.Module | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        """Scores of the networks themselves (test error, linear probe, PSNR), with their protocol."""
        return {}, {}

    def sample_grid(self, G: nn.Module, train_images: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The family's own picture of G (``translates`` families): (images, images per row).
        ``train_images`` are uint8 training images, for when no images are held out."""
        raise NotImplementedError(f"family {self.family_name!r} draws ordinary sample grids")

    def state_dict(self) -> dict[str, Any]:
        """Buffers an exact resume needs beyond the networks (CycleGAN's histories of fakes)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@torch.no_grad()
def eval_batches(
    net: nn.Module, images: torch.Tensor, device: torch.device, fn: Callable[[Any], torch.Tensor], batch: int = 500
) -> torch.Tensor:
    """``fn(net(x))`` over uint8 ``images`` in batches, with ``net`` in eval mode (its mode is restored
    after); the results concatenated on the CPU. For scores of the networks themselves (test error,
    linear probe)."""
    with eval_mode(net):
        return torch.cat([fn(net(to_float(xb).to(device))).cpu() for xb in images.split(batch)])
