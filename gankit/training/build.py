"""Recipe -> built pieces (data, networks, objective, penalties, optimisers). No training here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from gankit.config import ConfigError, Optim, Recipe
from gankit.data import DATASETS
from gankit.data.split import SPLIT_OPTIONS, split_holdout
from gankit.families import FAMILIES, Family
from gankit.metrics import METRICS
from gankit.models import DISCRIMINATORS, ENCODERS, GENERATORS
from gankit.models.cyclegan import TwoWay
from gankit.nn.minibatch import check_groups
from gankit.objectives import OBJECTIVES
from gankit.penalties import PENALTIES
from gankit.tricks import build_tricks as build


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={spec} was asked for but CUDA is not available; use device=cpu or device=auto")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps was asked for but MPS is not available; use device=cpu or device=auto")
    return dev


@dataclass
class Shapes:
    kind: str  # "image" or "points"
    shape: tuple[int, ...]
    num_classes: int
    in_shape: tuple[int, ...] | None = None  # paired data: the input images' shape (pix2pix's A)


def build_data(recipe: Recipe) -> Any:
    """The training data. With ``data.holdout`` the held-out images are kept apart, as the source's
    ``heldout`` attribute (a test set for the semi-supervised family)."""
    opts = dict(recipe.data.options)
    split = {k: opts.pop(k) for k in SPLIT_OPTIONS if k in opts}
    source: Any = DATASETS.build(recipe.data.name, **opts)
    if split.get("holdout"):
        try:
            source, heldout = split_holdout(source, split["holdout"], recipe.seed)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        source.heldout = heldout
    return source


def family_of(recipe: Recipe) -> type[Family]:
    """The recipe's family class (looked up once by the trainer and handed to the builders)."""
    return cast("type[Family]", FAMILIES.get(recipe.family.name))


def _shape_hint(err: ValueError, recipe: Recipe, shapes: Shapes) -> str:
    """A model's refusal of the data's image shape, plus what to change in the recipe."""
    msg = str(err)
    if shapes.kind != "image" or "shape" not in msg:
        return msg
    c, h, w = shapes.shape
    hint = f"; dataset {recipe.data.name!r} gives {c}x{h}x{w} images"
    if recipe.data.name in DATASETS.names() and "resolution" in DATASETS.options(recipe.data.name):
        hint += "; resize them with data.resolution=..."
    return msg + hint


def build_networks(
    recipe: Recipe, shapes: Shapes, tricks: Sequence[tuple[str, Any]] = (), family: type[Family] | None = None
) -> tuple[nn.Module, nn.Module | None]:
    family = family or family_of(recipe)
    adversarial = family.adversarial
    if adversarial and recipe.discriminator is None:
        raise ConfigError(
            f"family {recipe.family.name!r} needs a discriminator: add discriminator={{name: ...}} "
            "(see `gankit list discriminators`)"
        )
    if not adversarial and recipe.discriminator is not None:
        raise ConfigError(
            f"family {recipe.family.name!r} trains no discriminator; remove `discriminator` from the recipe"
        )
    conditional = family.conditional
    n_cls = shapes.num_classes if conditional else 0
    d_cls = shapes.num_classes if conditional or family.classifier_d else 0
    if (conditional or d_cls) and shapes.num_classes < 1:
        raise ConfigError(
            f"family {recipe.family.name!r} needs labelled data; dataset {recipe.data.name!r} has no "
            "classes (use digits, mnist, or an image folder with one subfolder per class)"
        )
    g_in = _translation_input(recipe, family, shapes)
    if family.two_way:
        assert g_in is not None
        return _two_way_networks(recipe, shapes, g_in)
    try:
        G = GENERATORS.build(
            recipe.generator.name,
            out_shape=shapes.shape,
            num_classes=n_cls,
            **recipe.generator.options,
            **({"in_shape": g_in} if g_in is not None else {}),
        )
    except ValueError as err:
        raise ConfigError(_shape_hint(err, recipe, shapes)) from None
    if not adversarial:  # a standalone autoencoder: G alone
        return G, None
    d_shape = family.d_in_shape(shapes.shape, G.z_dim, g_in)  # BiGAN / VEEGAN: (x, z) pairs; pix2pix: (a, b)
    for _, t in tricks:  # e.g. PacGAN: D sees m samples stacked along channels
        try:
            d_shape = t.d_in_shape(d_shape)
        except ValueError as err:
            raise ConfigError(f"tricks: {err}") from None
    assert recipe.discriminator is not None
    d_opts = dict(recipe.discriminator.options)
    for key, value in family.d_options.items():  # e.g. AC-GAN's class head
        if key in recipe.discriminator.options and recipe.discriminator.options[key] != value:
            raise ConfigError(
                f"discriminator.{key}={d_opts[key]!r} contradicts family {recipe.family.name!r}, "
                f"which needs {value!r}; remove it from the recipe"
            )
        d_opts[key] = value
    D = DISCRIMINATORS.build(recipe.discriminator.name, in_shape=d_shape, num_classes=d_cls, **d_opts)
    _check_growth(G, D)
    return G, D


def _translation_input(recipe: Recipe, family: type[Family], shapes: Shapes) -> tuple[int, ...] | None:
    """The input shape of an image-to-image G (None for z -> x families); checks that G and the
    family agree on which kind of G this is."""
    image_to_image = "in_shape" in GENERATORS.entry(recipe.generator.name).injected
    if not family.translates:
        if image_to_image:
            raise ConfigError(
                f"generator {recipe.generator.name!r} maps images to images; use it with family "
                "pix2pix, inpainting, srgan or cyclegan, or pick a noise -> image generator for "
                f"family {recipe.family.name!r}"
            )
        return None
    if not image_to_image:
        choices = ", ".join(n for n in GENERATORS.names() if "in_shape" in GENERATORS.entry(n).injected)
        raise ConfigError(
            f"family {recipe.family.name!r} needs an image-to-image generator ({choices}); "
            f"{recipe.generator.name!r} maps noise to images"
        )
    try:
        return tuple(family.g_in_shape(shapes.shape, shapes.in_shape, recipe.family.options))
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _two_way_networks(recipe: Recipe, shapes: Shapes, a_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """CycleGAN's pair of generators (A -> B, B -> A) and pair of discriminators (on B, on A), each
    pair built from the one recipe entry and trained by one optimiser."""
    b_shape = tuple(shapes.shape)
    g, d = recipe.generator, recipe.discriminator
    assert d is not None
    G = TwoWay(
        GENERATORS.build(g.name, in_shape=a_shape, out_shape=b_shape, num_classes=0, **g.options),
        GENERATORS.build(g.name, in_shape=b_shape, out_shape=a_shape, num_classes=0, **g.options),
        ("ab", "ba"),
    )
    D = TwoWay(
        DISCRIMINATORS.build(d.name, in_shape=b_shape, num_classes=0, **d.options),
        DISCRIMINATORS.build(d.name, in_shape=a_shape, num_classes=0, **d.options),
        ("b", "a"),
    )
    return G, D


GROWTH_KEYS = ("start", "fade_steps", "stable_steps")


def _check_growth(G: nn.Module, D: nn.Module) -> None:
    """Growing networks (ProGAN) must grow in step: the same start, fade and stable lengths."""
    if not (callable(getattr(G, "set_step", None)) and callable(getattr(D, "set_step", None))):
        return
    diff = [k for k in GROWTH_KEYS if getattr(G, k, None) != getattr(D, k, None)]
    if diff:
        detail = ", ".join(f"{k}: G {getattr(G, k, None)} vs D {getattr(D, k, None)}" for k in diff)
        raise ConfigError(
            f"generator and discriminator must grow on the same schedule ({detail}); "
            f"set the same {', '.join(diff)} in both"
        )


def build_encoder(recipe: Recipe, shapes: Shapes, z_dim: int, family: type[Family] | None = None) -> nn.Module | None:
    """The encoder x -> z of the bidirectional families, or None; checks the recipe asks for it
    exactly when the family uses it."""
    family = family or family_of(recipe)
    if recipe.encoder is None:
        if family.needs_encoder:
            raise ConfigError(
                f"family {recipe.family.name!r} needs an encoder x -> z: add "
                "encoder={name: mlp-encoder} (see `gankit list encoders`)"
            )
        return None
    if not family.needs_encoder:
        raise ConfigError(
            f"encoder: family {recipe.family.name!r} has no encoder; remove it, or use family=bigan / family=veegan"
        )
    return ENCODERS.build(recipe.encoder.name, in_shape=shapes.shape, z_dim=z_dim, **recipe.encoder.options)


def check_family(recipe: Recipe, family: type[Family] | None = None) -> None:
    """Refuse objective / trick choices the family cannot use, before anything is built."""
    family = family or family_of(recipe)
    try:
        family.check(recipe.objective.name, [t.name for t in recipe.tricks])
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if family.translates and recipe.eval.metrics:
        raise ConfigError(
            f"eval.metrics: family {recipe.family.name!r} scores its outputs against their targets "
            "itself (L1, PSNR, SSIM on data.holdout images); remove eval.metrics and set data.holdout"
        )


def build_tricks(recipe: Recipe) -> list[tuple[str, Any]]:
    try:
        return build(recipe.tricks, recipe.objective.name)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def build_generator(recipe: Recipe, shapes: Shapes) -> nn.Module:
    """G alone, with every G-side construction hook applied (as in training), for sampling."""
    G, D = build_networks(recipe, shapes)
    for _, pen in build_penalties(recipe):
        pen.on_build(G if pen.target == "G" else D)
    return G


def build_objective(recipe: Recipe) -> Any:
    return OBJECTIVES.build(recipe.objective.name, **recipe.objective.options)


def build_penalties(recipe: Recipe) -> list[tuple[str, Any]]:
    return [(c.name, PENALTIES.build(c.name, **c.options)) for c in recipe.penalties]


def build_metrics(recipe: Recipe) -> list[tuple[str, Any]]:
    return [(c.name, METRICS.build(c.name, **c.options)) for c in recipe.eval.metrics]


def make_optimizer(cfg: Optim, params: Any) -> torch.optim.Optimizer:
    impl: dict[str, Any] = {}
    if cfg.impl != "auto":
        if cfg.impl == "fused" and cfg.type not in ("adam", "adamw", "sgd"):
            raise ConfigError(f"optim impl=fused exists for adam, adamw and sgd, not {cfg.type}; use foreach")
        impl = {"fused": True} if cfg.impl == "fused" else {"foreach": cfg.impl == "foreach"}
    if cfg.type == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, **impl)
    if cfg.type == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, **impl)
    if cfg.type == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=cfg.lr, eps=cfg.eps, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **impl
        )
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **impl)


def check_distributed(recipe: Recipe, family_cls: type[Family], enabled: bool, world: int) -> None:
    """Refuse a torchrun run that the family or the global batch cannot take (called before the networks
    are converted or wrapped for DDP and before the optimisers are built)."""
    if not enabled:
        return
    if not family_cls.distributed:
        raise ConfigError(
            f"family {recipe.family.name!r} does not run under torchrun yet (DDP is wired for the "
            "GAN families whose G and D are single networks); train it in one process"
        )
    per_rank = recipe.perf.accumulate * world
    if recipe.schedule.batch_size % per_rank:
        raise ConfigError(
            f"schedule.batch_size={recipe.schedule.batch_size} is the global batch: it must divide "
            f"into {world} ranks x perf.accumulate={recipe.perf.accumulate}"
        )


def compiled(
    which: str, G: nn.Module, D: nn.Module | None, penalties: list[tuple[str, Any]]
) -> tuple[nn.Module, nn.Module | None]:
    """The networks the family trains: torch.compile'd where ``perf.compile`` (``which``) asks. Checkpoints,
    EMA and sampling keep using the plain modules (same parameters, no ``_orig_mod`` key prefixes)."""
    if which == "none":
        return G, D
    if which in ("d", "both") and D is not None:
        double = [name for name, pen in penalties if pen.target == "D" and pen.double_backward]
        if double:
            raise ConfigError(
                f"perf.compile={which} with the gradient penalty {double[0]}: torch.compile does not "
                "support the double backward a gradient penalty takes; use perf.compile=g"
            )
    g = torch.compile(G) if which in ("g", "both") else G
    d = torch.compile(D) if which in ("d", "both") and D is not None else D
    return g, d  # type: ignore[return-value]  # compile(module) is an OptimizedModule; its stub says Callable


def check_d_rows(D: nn.Module | None, tricks: Sequence[tuple[str, Any]], micro: int) -> None:
    """Refuse, before the run directory is written, a batch that D's minibatch-stddev groups do not divide:
    D sees ``micro`` rows a call (per rank and micro-batch), fewer when a trick packs them (PacGAN)."""
    if D is None:
        return
    rows = micro
    for _, trick in tricks:
        rows = trick.d_rows(rows)
    try:
        check_groups(D, rows)
    except ValueError as err:
        raise ConfigError(str(err)) from None
