"""Checkpoints that never execute code and are never half-written.

Layout: ``checkpoints/step-XXXXXXX/`` holding ``weights.safetensors`` (G, D, EMA G, ...; the resolved
recipe in its metadata, so a checkpoint rebuilds its networks with no pickled code) and ``state.pt``
(optimisers, RNG, data stream, step; read with ``torch.load(weights_only=True)``). A checkpoint is
written into a temporary folder and renamed into place: a crash mid-write leaves the previous one
intact and the temporary folder is ignored.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

WEIGHTS = "weights.safetensors"
STATE = "state.pt"
PREFIX = "step-"


class CheckpointError(RuntimeError):
    """A missing or unreadable checkpoint; the message says where we looked."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_weights(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    # safetensors refuses shared or strided storage: give it plain contiguous CPU copies.
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(flat, str(path), metadata=metadata)


def save_checkpoint(
    root: Path,
    step: int,
    tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
    metadata: dict[str, str],
    keep: int = 3,
) -> Path:
    """Write checkpoint ``step`` atomically under ``root`` and keep only the newest ``keep``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:07d}"
    tmp = root / f".tmp-{PREFIX}{step:07d}-{os.getpid()}"
    for stale in [*root.glob(".tmp-*"), *root.glob(".old-*")]:  # left by a writer that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir()
    try:
        _write_weights(tensors, tmp / WEIGHTS, metadata)
        with open(tmp / STATE, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if final.exists():  # re-saving a step (e.g. after resume): swap, never delete first
            old = root / f".old-{final.name}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for stale in list_checkpoints(root)[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir()
        if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()
        and (p / WEIGHTS).is_file() and (p / STATE).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def find_checkpoint(path: str | Path) -> Path:
    """A run directory (its newest checkpoint), a checkpoint folder, or its weights file."""
    p = Path(path)
    if p.is_file() and p.name == WEIGHTS:
        p = p.parent
    if (p / WEIGHTS).is_file():
        return p
    if (p / "checkpoints").is_dir():
        ckpts = list_checkpoints(p / "checkpoints")
        if ckpts:
            return ckpts[-1]
        raise CheckpointError(f"{p} is a run directory but holds no complete checkpoint yet")
    if not p.exists():
        raise CheckpointError(f"{p} does not exist; give a run directory or a checkpoints/step-N folder")
    raise CheckpointError(f"{p} is neither a run directory nor a checkpoint folder (no {WEIGHTS} found)")


def load_weights(ckpt: Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(ckpt / WEIGHTS), framework="pt", device=str(device)) as fh:
            meta = fh.metadata() or {}
            return {k: fh.get_tensor(k) for k in fh.keys()}, meta
    except Exception as err:  # safetensors raises its own types for truncated files
        raise CheckpointError(f"cannot read {ckpt / WEIGHTS}: {err}") from None


def load_state(ckpt: Path) -> dict[str, Any]:
    try:
        return torch.load(ckpt / STATE, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read {ckpt / STATE}: {err}") from None


def recipe_from_metadata(meta: dict[str, str]) -> dict[str, Any]:
    if "recipe" not in meta:
        raise CheckpointError("this weights file carries no gankit recipe in its metadata")
    try:
        return json.loads(meta["recipe"])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"the recipe in this checkpoint's metadata is damaged ({err}); "
                              "was weights.safetensors edited by hand?") from None


def load_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, ckpt: Path | str) -> None:
    """``module.load_state_dict`` of the ``prefix`` tensors, with a message that says what does not
    fit (a checkpoint of another recipe, or one whose tensors were changed) instead of a raw dump."""
    sd = split_prefix(tensors, prefix)
    if not sd:
        raise CheckpointError(f"{ckpt} holds no {prefix} weights; it was written by another kind of run")
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    extra = sorted(set(sd) - set(own))
    shapes = sorted(k for k in set(own) & set(sd) if own[k].shape != sd[k].shape)
    if missing or extra or shapes:
        parts = [f"{len(v)} {what} (e.g. {v[0]})" for v, what in
                 ((missing, "missing"), (extra, "unexpected"), (shapes, "of another shape")) if v]
        raise CheckpointError(
            f"the {prefix} weights in {ckpt} do not fit this recipe's network: {', '.join(parts)}. "
            "The checkpoint comes from another recipe (or was altered); resume it with its own run directory."
        )
    module.load_state_dict(sd)


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def join_prefix(prefix: str, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in sd.items()}
