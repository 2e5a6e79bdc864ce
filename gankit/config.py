"""Recipe schema (pydantic), YAML loading and dotted command-line overrides.

A recipe is data + generator + discriminator + objective + penalties + tricks + optimisers + schedule +
EMA + evaluation + logging. Pieces chosen from a registry are *components*: a ``name`` plus that
piece's own options, checked against the registered factory's signature (gankit.registry), so
``gankit train gan-grid objective.name=hinge generator.z_dim=8`` is fully type-checked before training.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt


class ConfigError(ValueError):
    """A recipe that cannot run; the message names the key and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Component(BaseModel):
    """A registry name plus the options of that piece (validated against its registry later)."""

    model_config = ConfigDict(extra="allow")
    name: str

    @pydantic.model_validator(mode="before")
    @classmethod
    def _from_name(cls, v: Any) -> Any:
        """A bare name (``family: pix2pix``, ``objective=hinge``) is the piece with its defaults."""
        return {"name": v} if isinstance(v, str) else v

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Optim(_Strict):
    type: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    lr: PositiveFloat = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: NonNegativeFloat = 0.0
    momentum: NonNegativeFloat = 0.0  # sgd / rmsprop only
    eps: PositiveFloat = 1e-8
    # PyTorch's optimiser implementations: "foreach" batches the update over all tensors, "fused"
    # is one kernel (CUDA; CPU for Adam/AdamW), "for-loop" is per tensor; "auto" lets PyTorch choose.
    impl: Literal["auto", "foreach", "fused", "for-loop"] = "auto"


class Optimisers(_Strict):
    """Separate optimisers for G and D; different learning rates give TTUR (Heusel et al. 2017)."""

    g: Optim = Optim()
    d: Optim = Optim()


class Schedule(_Strict):
    steps: PositiveInt = 2000  # generator updates
    batch_size: PositiveInt = 64
    n_critic: PositiveInt = 1  # discriminator updates per generator update
    # Learning rates held until decay_start, then decayed linearly to 0 at the last step (CycleGAN's
    # schedule, Zhu et al. 2017, Sec. 4; Salimans et al. 2016 decay theirs too). 0: never decay.
    decay_start: NonNegativeInt = 0

    @pydantic.model_validator(mode="after")
    def _decay(self) -> Schedule:
        if self.decay_start and self.decay_start >= self.steps:
            raise ValueError(
                f"schedule.decay_start={self.decay_start} must be below schedule.steps={self.steps} "
                "(lower it with the steps, or set it to 0 for no decay)"
            )
        return self

    def lr_factor(self, step: int) -> float:
        """The fraction of the recipe's learning rates used at generator step ``step``."""
        if not self.decay_start or step < self.decay_start:
            return 1.0
        return max(0.0, (self.steps - step) / (self.steps - self.decay_start))


class Ramp(_Strict):
    """One hyperparameter as a function of the generator step (R3GAN's presets, Huang et al. 2024, App.):
    ``start`` until step ``begin``, then a ``cosine`` or ``linear`` ramp to ``end`` over ``steps`` steps
    (default: to the last step), then ``end``. A function of the step alone, so a resumed run continues
    it exactly. ``target``: ``optim.g.lr``, ``optim.d.lr``, ``optim.g.beta2``, ``optim.d.beta2``,
    ``ema.decay``, ``ema.half_life`` (in images), ``penalty.<name>.<option>`` (e.g. ``penalty.r1.gamma``)
    or ``trick.<name>.<option>`` (e.g. ``trick.ada.p`` with ``adaptive: false``)."""

    target: str
    start: float
    end: float
    kind: Literal["cosine", "linear"] = "cosine"
    begin: NonNegativeInt = 0
    steps: PositiveInt | None = None

    def value(self, step: int, total: int) -> float:
        span = self.steps if self.steps is not None else max(1, total - self.begin)
        t = min(1.0, max(0.0, (step - self.begin) / span))
        f = (1 - math.cos(math.pi * t)) / 2 if self.kind == "cosine" else t
        return self.start + (self.end - self.start) * f


class Performance(_Strict):
    """How the step runs, not what it computes (up to rounding): measured in benchmarks/step_time.py."""

    # "auto" (the default) picks the fastest numerically safe setting for the device at hand and
    # records why (gankit/training/autoperf.py); any other value is used as given.
    amp: Literal["auto", "none", "bf16", "fp16"] = "auto"  # autocast; fp16 adds a GradScaler per optimiser
    compile: Literal["auto", "none", "g", "d", "both"] = "auto"  # torch.compile of the networks trained
    channels_last: bool | Literal["auto"] = "auto"  # NHWC memory format for image networks
    cudnn_benchmark: bool | Literal["auto"] = "auto"  # CUDA: cuDNN times its algorithms for the batch shapes
    data_on_device: bool | Literal["auto"] = "auto"  # CUDA: an in-memory training set lives on the GPU
    accumulate: PositiveInt = 1  # micro-batches per optimiser step (schedule.batch_size must divide)
    sync_batchnorm: bool = False  # under torchrun: batch-norm statistics over the global batch


class EMA(_Strict):
    """Exponential moving average of G's weights (Karras et al. 2018; Yazici et al. 2019)."""

    enabled: bool = False
    decay: float = Field(default=0.999, gt=0.0, lt=1.0)
    start: int = Field(default=0, ge=0)  # generator step at which averaging begins
    # BigGAN's standing statistics: before the average is used (samples, evaluation, checkpoint), its
    # batch-norm statistics are recomputed from this many batches of latents; 0 keeps the averaged
    # running statistics (those of the live networks the average passed through).
    bn_batches: int = Field(default=0, ge=0)


class Evaluation(_Strict):
    every: int = Field(default=0, ge=0)  # generator steps between evaluations; 0 = only at the end
    metrics: list[Component] = []
    # Keep a copy of the checkpoint with the best value of this score (e.g. fid, kid, modes) in
    # RUN_DIR/best/; "auto" minimises distances and maximises is/precision/recall/coverage/modes.
    best: str | None = None
    best_mode: Literal["auto", "min", "max"] = "auto"


class Logging(_Strict):
    every: PositiveInt = 50  # scalars to metrics.jsonl / TensorBoard
    sample_every: int = Field(default=500, ge=0)  # sample grid; 0 = only at the end
    checkpoint_every: int = Field(default=1000, ge=0)  # 0 = only at the end
    keep_checkpoints: PositiveInt = 3
    grid_size: PositiveInt = 64  # images (or thousands of points) in a sample grid
    tensorboard: bool = True


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


class Recipe(_Strict):
    name: str = "custom"
    description: str = ""
    family: Component = Component(name="unconditional")  # a name, or {name, options} (pix2pix's l1_weight)
    seed: int = 0
    device: str = "auto"
    data: Component
    generator: Component
    discriminator: Component | None = None  # every family but the standalone autoencoder needs one
    encoder: Component | None = None  # x -> z, for the bidirectional families (bigan, veegan)
    objective: Component = Component(name="non-saturating")
    penalties: list[Component] = []
    tricks: list[Component] = []
    optim: Optimisers = Optimisers()
    schedule: Schedule = Schedule()
    ramps: list[Ramp] = []  # hyperparameters that change with the step (Ramp)
    ema: EMA = EMA()
    perf: Performance = Performance()
    eval: Evaluation = Evaluation()
    log: Logging = Logging()

    @pydantic.model_validator(mode="after")
    def _accumulate(self) -> Recipe:
        k, b = self.perf.accumulate, self.schedule.batch_size
        if b % k:
            raise ValueError(
                f"perf.accumulate={k} must divide schedule.batch_size={b} (each optimiser step "
                f"sums {k} micro-batches of batch_size / accumulate)"
            )
        return self

    @pydantic.field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not _DEVICE.match(v):
            raise ValueError(f"device {v!r} is not one of auto, cpu, cuda, cuda:N, mps")
        return v


# -- loading -------------------------------------------------------------------------------------
def _format_validation(err: pydantic.ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key {loc!r}")
        else:
            lines.append(f"{loc}: {e['msg']}")
    return "; ".join(lines)


def validate_schema(raw: dict[str, Any]) -> Recipe:
    """``raw`` checked against the recipe schema alone (component names and options are checked
    against their registries by ``gankit.recipes.load.validate_recipe``)."""
    try:
        return Recipe.model_validate(raw)
    except pydantic.ValidationError as err:
        raise ConfigError(f"invalid recipe: {_format_validation(err)}") from None


def read_recipe_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of recipe keys, got {type(raw).__name__}")
    return raw


def merge_recipe(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` laid over ``parent``, for a recipe that names a ``base``.

    Mappings merge key by key, so ``optim: {g: {lr: 1e-3}}`` changes one number; a component whose
    ``name`` changes (``generator: {name: resnet}``) replaces the base's whole, because the old options
    belong to the old component; a list (``penalties``, ``ramps``) or a value replaces the base's.
    """
    import copy

    out = copy.deepcopy(parent)
    for key, value in child.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and value.get("name", old.get("name")) == old.get("name"):
            out[key] = merge_recipe(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# -- dotted overrides ----------------------------------------------------------------------------
def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.sub=value (e.g. schedule.steps=500)")
    key, _, value = item.partition("=")
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override key {key!r} is malformed")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return parts, parsed


def _is_component(node: dict[str, Any]) -> bool:
    return "name" in node and isinstance(node.get("name"), str)


def apply_overrides(resolved: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to a fully resolved recipe dict (all keys present).

    A key that does not exist fails with the valid keys at that level; inside a component
    (``generator.z_dim``) new keys are allowed and checked later against the registry.
    """
    import copy

    out = copy.deepcopy(resolved)
    created: set[int] = set()  # optional components created by an override accept any key
    for item in overrides:
        parts, value = parse_override(item)
        node: Any = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"{where}: index out of range (the list has {len(node)} items)")
                idx: Any = int(part)
            elif isinstance(node, dict):
                if part not in node and not ((_is_component(node) or id(node) in created) and last):
                    valid = ", ".join(sorted(node)) or "(none)"
                    raise ConfigError(f"unknown key {where!r}; valid keys here: {valid}")
                idx = part
            else:
                raise ConfigError(f"{'.'.join(parts[:depth])} is a value, it has no key {part!r}")
            if last:
                node[idx] = value
            else:
                if node[idx] is None:  # an optional component left out: `encoder.name=mlp-encoder` creates it
                    node[idx] = {}
                    created.add(id(node[idx]))
                node = node[idx]
    return out


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are indexed."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    if isinstance(d, list):
        out = {}
        for i, v in enumerate(d):
            out.update(flatten(v, f"{prefix}{i}."))
        return out or {prefix[:-1]: []}
    return {prefix[:-1]: d}


def diff_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    fa, fb = flatten(a), flatten(b)
    return sorted(k for k in set(fa) | set(fb) if fa.get(k, "<unset>") != fb.get(k, "<unset>"))


def dump_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
