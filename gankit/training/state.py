"""What a checkpoint holds for a ``Trainer`` and how a run is put back from one: the weights
(safetensors), the training state (``weights_only`` torch file) and the metadata. Resuming from it
continues bit-exactly: every RNG, stream position and optimiser moment is in here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

import gankit
from gankit.training import checkpoint as ck
from gankit.training import distributed


def tensors(t: Any) -> dict[str, torch.Tensor]:
    """The weights a checkpoint keeps (safetensors): G, D, the EMA of G once it has begun, E."""
    out = ck.join_prefix("G", t.G.state_dict())
    if t.D is not None:
        out.update(ck.join_prefix("D", t.D.state_dict()))
    if t._ema_started():  # before, the average is the initial G: sampling a checkpoint uses G
        out.update(ck.join_prefix("G_ema", t.ema.module.state_dict()))
    if t.E is not None:
        out.update(ck.join_prefix("E", t.E.state_dict()))
    return out


def training_state(t: Any) -> dict[str, Any]:
    """Everything else an exact resume needs: step, optimisers, RNGs, data stream, objective (BEGAN's
    k_t), best score, tricks, family buffers, EMA count, sharding, loss scalers."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    if t.dist.enabled:  # each rank's own stream, so a resume with the same world is exact
        rng["ranks"] = distributed.gather_objects(torch.get_rng_state())
    state = {
        "step": t.step,
        "optim": {"g": t.opt_g.state_dict(), **({"d": t.opt_d.state_dict()} if t.opt_d else {})},
        "rng": rng,
        "stream": t.stream.state_dict(),
        "objective": t.objective.state_dict(),
        "best": t.best.state_dict(),
        "tricks": {name: trick.state_dict() for name, trick in t.tricks},
    }
    if callable(getattr(t.family, "state_dict", None)):  # CycleGAN's histories of fakes
        state["family"] = t.family.state_dict()
    if t.ema is not None:
        state["ema_n_averaged"] = t.ema.n_averaged.detach().cpu()
    if t.sharding is not None:
        state["sharding"] = t.sharding.state_dict()
    scalers = {p.name: p.scaler.state_dict() for p in t.phases if p.scaler is not None}
    if scalers:
        state["scalers"] = scalers
    return state


def metadata(t: Any) -> dict[str, str]:
    """The checkpoint's string metadata: format, versions, step, the recipe and the data shapes."""
    return {
        "format": ck.FORMAT,
        "gankit": gankit.__version__,
        "step": str(t.step),
        "recipe": json.dumps(t.recipe.model_dump(mode="json")),
        "shapes": json.dumps({"kind": t.shapes.kind, "shape": list(t.shapes.shape),
                              "num_classes": t.shapes.num_classes,
                              **({"in_shape": list(t.shapes.in_shape)} if t.shapes.in_shape else {})}),
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

    return {"recipe": str(recipe.get("name", "?")), "family": name(recipe.get("family", "unconditional")),
            "data": name(recipe.get("data", "?"))}


def _describe(identity: dict[str, str]) -> str:
    return f"recipe {identity['recipe']!r} (family {identity['family']!r}, data {identity['data']!r})"


def check_identity(t: Any, ckpt: Path, meta: dict[str, str], force: bool = False) -> None:
    """Refuse, unless ``force``, a checkpoint whose recipe identity (``recipe_identity``) is not ``t``'s."""
    theirs = recipe_identity(ck.recipe_from_metadata(meta))
    ours = recipe_identity(t.recipe.model_dump(mode="json"))
    if theirs != ours and not force:
        raise ck.CheckpointError(
            f"{ckpt} was written by {_describe(theirs)}, but this run is {_describe(ours)}: it is another "
            "experiment's checkpoint (copied into this run's checkpoints/?). Resume the run it came from, or "
            "pass --force to load it into this one anyway."
        )


def restore(t: Any, ckpt: Path, force: bool = False) -> None:
    """Load ``ckpt`` into trainer ``t``: weights, then every piece of ``training_state``. Both files are
    verified against their sha256 digests, and a checkpoint of another recipe identity is refused
    unless ``force`` (``check_identity``)."""
    weights, meta = ck.load_weights(ckpt)
    check_identity(t, ckpt, meta, force)
    state = ck.load_state(ckpt)
    ck.load_into(t.G, weights, "G", ckpt)
    if t.D is not None:
        ck.load_into(t.D, weights, "D", ckpt)
    if t.E is not None:
        ck.load_into(t.E, weights, "E", ckpt)
    if t.ema is not None:
        if any(k.startswith("G_ema.") for k in weights):
            ck.load_into(t.ema.module, weights, "G_ema", ckpt)
            t.ema.n_averaged.copy_(state.get("ema_n_averaged", torch.tensor(0)))
    t.opt_g.load_state_dict(state["optim"]["g"])
    if t.opt_d is not None:
        t.opt_d.load_state_dict(state["optim"]["d"])
    t.stream.load_state_dict(state["stream"])
    t.objective.load_state_dict(state["objective"])
    t.best.load_state_dict(state.get("best", {}))
    for name, trick in t.tricks:
        trick.load_state_dict(state.get("tricks", {}).get(name, {}))
    if callable(getattr(t.family, "load_state_dict", None)):
        t.family.load_state_dict(state.get("family", {}))
    for phase in t.phases:
        if phase.scaler is not None and phase.name in state.get("scalers", {}):
            phase.scaler.load_state_dict(state["scalers"][phase.name])
    ranks = state["rng"].get("ranks")
    if t.dist.enabled and ranks and len(ranks) == t.dist.world:
        torch.set_rng_state(ranks[t.dist.rank])
    else:
        torch.set_rng_state(state["rng"]["torch"])
    if t.sharding is not None:
        t.sharding.load_state_dict(state.get("sharding", {}))
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    t.step = int(state["step"])
    t.set_network_step()
    # The optimisers' saved states carry the old rates: the recipe's rule (a resume with
    # `--force optim.g.lr=...` after a NaN stop) must win.
    t.set_learning_rates()
