"""What a checkpoint holds for a run (``TrainState``) and how a run is put back from one: the weights
(safetensors), the training state (``weights_only`` torch file) and the metadata. Resuming from it
continues bit-exactly: every RNG, stream position and optimiser moment is in here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from gankit.config import Recipe
from gankit.families import Family, Phase
from gankit.runlog import checkpoint as ck
from gankit.training import distributed
from gankit.training.best import BestTracker
from gankit.training.build import Shapes
from gankit.version import __version__


@dataclass
class TrainState:
    """Everything a run's checkpoint keeps, and nothing else: the networks, optimisers, data stream,
    objective (BEGAN's k_t), best score, tricks, family buffers, EMA, latent sharding, loss scalers
    and the step. The trainer assembles one and trains through it; ``state_dict`` /
    ``load_state_dict`` make a resume continue bit-exactly (every RNG, stream position and optimiser
    moment is in here)."""

    G: nn.Module
    D: nn.Module | None
    E: nn.Module | None
    ema: AveragedModel | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    stream: Any
    objective: Any
    best: BestTracker
    tricks: list[tuple[str, Any]]
    family: Family
    phases: list[Phase]
    sharding: distributed.Sharding | None = None
    dist: distributed.DistInfo = field(default_factory=distributed.DistInfo)
    step: int = 0

    def ema_started(self) -> bool:
        return self.ema is not None and int(self.ema.n_averaged) > 0

    def tensors(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint keeps (safetensors): G, D, the EMA of G once it has begun, E."""
        out = ck.join_prefix("G", self.G.state_dict())
        if self.D is not None:
            out.update(ck.join_prefix("D", self.D.state_dict()))
        if self.ema is not None and self.ema_started():  # before, the average is the initial G: sampling uses G
            out.update(ck.join_prefix("G_ema", self.ema.module.state_dict()))
        if self.E is not None:
            out.update(ck.join_prefix("E", self.E.state_dict()))
        return out

    def state_dict(self) -> dict[str, Any]:
        """Everything else an exact resume needs (collective under DDP: every rank must call it)."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        if self.dist.enabled:  # each rank's own stream, so a resume with the same world is exact
            rng["ranks"] = distributed.gather_objects(torch.get_rng_state())
        state = {
            "step": self.step,
            "optim": {"g": self.opt_g.state_dict(), **({"d": self.opt_d.state_dict()} if self.opt_d else {})},
            "rng": rng,
            "stream": self.stream.state_dict(),
            "objective": self.objective.state_dict(),
            "best": self.best.state_dict(),
            "tricks": {name: trick.state_dict() for name, trick in self.tricks},
        }
        family = self.family.state_dict()
        if family:  # CycleGAN's histories of fakes
            state["family"] = family
        if self.ema is not None:
            state["ema_n_averaged"] = self.ema.n_averaged.detach().cpu()
        if self.sharding is not None:
            state["sharding"] = self.sharding.state_dict()
        scalers = {p.name: p.scaler.state_dict() for p in self.phases if p.scaler is not None}
        if scalers:
            state["scalers"] = scalers
        return state

    def load_state_dict(self, weights: dict[str, torch.Tensor], state: dict[str, Any], ckpt: Path) -> None:
        """Put back ``weights`` (a checkpoint's tensors) and ``state`` (its ``state_dict``)."""
        ck.load_into(self.G, weights, "G", ckpt)
        if self.D is not None:
            ck.load_into(self.D, weights, "D", ckpt)
        if self.E is not None:
            ck.load_into(self.E, weights, "E", ckpt)
        if self.ema is not None and any(k.startswith("G_ema.") for k in weights):
            ck.load_into(self.ema.module, weights, "G_ema", ckpt)
            self.ema.n_averaged.copy_(state.get("ema_n_averaged", torch.tensor(0)))
        self.opt_g.load_state_dict(state["optim"]["g"])
        if self.opt_d is not None:
            self.opt_d.load_state_dict(state["optim"]["d"])
        self.stream.load_state_dict(state["stream"])
        self.objective.load_state_dict(state["objective"])
        self.best.load_state_dict(state.get("best", {}))
        for name, trick in self.tricks:
            trick.load_state_dict(state.get("tricks", {}).get(name, {}))
        self.family.load_state_dict(state.get("family", {}))
        for phase in self.phases:
            if phase.scaler is not None and phase.name in state.get("scalers", {}):
                phase.scaler.load_state_dict(state["scalers"][phase.name])
        ranks = state["rng"].get("ranks")
        if self.dist.enabled and ranks and len(ranks) == self.dist.world:
            torch.set_rng_state(ranks[self.dist.rank])
        else:
            torch.set_rng_state(state["rng"]["torch"])
        if self.sharding is not None:
            self.sharding.load_state_dict(state.get("sharding", {}))
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.step = int(state["step"])


def metadata(recipe: Recipe, shapes: Shapes, step: int) -> dict[str, str]:
    """The checkpoint's string metadata: format, versions, step, the recipe and the data shapes."""
    return {
        "format": ck.FORMAT,
        "gankit": __version__,
        "step": str(step),
        "recipe": json.dumps(recipe.model_dump(mode="json")),
        "shapes": json.dumps(
            {
                "kind": shapes.kind,
                "shape": list(shapes.shape),
                "num_classes": shapes.num_classes,
                **({"in_shape": list(shapes.in_shape)} if shapes.in_shape else {}),
            }
        ),
    }


def recipe_identity(recipe: dict[str, Any]) -> dict[str, str]:
    """What makes a checkpoint *this run's*: the recipe's ``name``, its family and its data set's name.

    Two recipes can build networks of the same shapes (gan-ring and gan-grid: the same MLPs on 2-D
    points), so a shape check alone accepts one's checkpoint in the other's run and silently continues
    the wrong experiment. These three never change within a run (``gankit train --resume`` refuses to
    change them without ``--force``), while everything else a resume may legitimately alter
    (steps, rates under --force, ...) is left out."""

    def name(part: Any) -> str:
        return str(part.get("name", "?")) if isinstance(part, dict) else str(part)

    return {
        "recipe": str(recipe.get("name", "?")),
        "family": name(recipe.get("family", "unconditional")),
        "data": name(recipe.get("data", "?")),
    }


def _describe(identity: dict[str, str]) -> str:
    return f"recipe {identity['recipe']!r} (family {identity['family']!r}, data {identity['data']!r})"


def check_identity(recipe: Recipe, ckpt: Path, meta: dict[str, str], force: bool = False) -> None:
    """Refuse, unless ``force``, a checkpoint whose recipe identity (``recipe_identity``) is not ``recipe``'s."""
    theirs = recipe_identity(ck.recipe_from_metadata(meta))
    ours = recipe_identity(recipe.model_dump(mode="json"))
    if theirs != ours and not force:
        raise ck.CheckpointError(
            f"{ckpt} was written by {_describe(theirs)}, but this run is {_describe(ours)}: it is another "
            "experiment's checkpoint (copied into this run's checkpoints/?). Resume the run it came from, or "
            "pass --force to load it into this one anyway."
        )


def restore(state: TrainState, recipe: Recipe, ckpt: Path, force: bool = False) -> None:
    """Load ``ckpt`` into ``state``. Both files are verified against their sha256 digests, and a
    checkpoint of another recipe identity is refused unless ``force`` (``check_identity``)."""
    weights, meta = ck.load_weights(ckpt)
    check_identity(recipe, ckpt, meta, force)
    state.load_state_dict(weights, ck.load_state(ckpt), ckpt)
