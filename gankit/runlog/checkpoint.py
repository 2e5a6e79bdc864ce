"""Checkpoints that never execute code and are never half-written.

Layout: ``checkpoints/step-XXXXXXX/`` holding ``weights.safetensors`` (G, D, EMA G, ...; the resolved
recipe in its metadata, so a checkpoint rebuilds its networks with no pickled code) and ``state.pt``
(optimisers, RNG, data stream, step; read with ``torch.load(weights_only=True)``). A checkpoint is
written into a temporary folder and renamed into place: a crash mid-write leaves the previous one
intact and the temporary folder is ignored.

Integrity (format ``gankit-checkpoint-2``): the weights' metadata records three sha256 digests,
``sha256_tensors`` (every tensor's name, dtype, shape and bytes, in key order), ``sha256_state`` (the
bytes of ``state.pt``) and ``sha256_metadata`` (every other metadata entry, the two digests above
included). ``load_weights`` and ``load_state`` check them, so a flipped byte in tensor data, in the
recipe or in the training state is an error naming the file instead of NaN samples or a silently
different resume. The digests detect corruption and careless edits; they carry no secret, so someone
who rewrites the digests as well is not stopped (that would need a signature). Checkpoints written
before the digests (``gankit-checkpoint-1``, no ``sha256_*`` keys) still load, unverified.
"""

from __future__ import annotations

import hashlib
import io
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
FORMAT = "gankit-checkpoint-2"  # -1: the same files with no sha256 digests in the metadata
TENSORS_SHA = "sha256_tensors"
STATE_SHA = "sha256_state"
META_SHA = "sha256_metadata"


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


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of every tensor's name, dtype, shape and raw bytes, in key order.

    Computed over the tensors rather than the file's byte range so it does not depend on how
    safetensors lays the data out; the name, dtype and shape go in so that bytes moved between
    tensors or reinterpreted as another shape also change it. One pass of sha256 over the bytes is
    cheap next to writing them."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        v = tensors[key].detach().to("cpu").contiguous()
        h.update(json.dumps([key, str(v.dtype), list(v.shape)]).encode() + b"\n")
        # A byte view works for every dtype, bfloat16 included (which numpy itself lacks).
        # numpy's stubs declare ndarray's buffer protocol (__buffer__) only for Python >= 3.12
        h.update(memoryview(v.reshape(-1).view(torch.uint8).numpy()))  # type: ignore[arg-type]
    return h.hexdigest()


def metadata_digest(metadata: dict[str, str]) -> str:
    """sha256 of every metadata entry but ``sha256_metadata`` itself, in a canonical JSON form: the
    recipe rebuilds the networks at sampling time, so an altered byte there matters as much as one
    in the tensors."""
    rest = {k: v for k, v in metadata.items() if k != META_SHA}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _write_weights(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write the weights with ``metadata`` plus the tensors' digest and the digest of the metadata,
    and fsync them (the directory fsync alone does not put the file's data on disk)."""
    # safetensors refuses shared or strided storage: give it plain contiguous CPU copies.
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = {**metadata, "format": FORMAT, TENSORS_SHA: tensors_digest(flat)}
    meta[META_SHA] = metadata_digest(meta)
    save_file(flat, str(path), metadata=meta)
    _fsync_file(path)


def save_checkpoint(
    root: Path,
    step: int,
    tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
    metadata: dict[str, str],
    keep: int = 3,
) -> Path:
    """Write checkpoint ``step`` atomically under ``root`` and keep only the newest ``keep``.

    ``state`` is serialised to bytes first so that its sha256 can go into the weights' metadata (with
    the tensors' own digest): one file's header then vouches for both files."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:07d}"
    tmp = root / f".tmp-{PREFIX}{step:07d}-{os.getpid()}"
    for stale in [*root.glob(".tmp-*"), *root.glob(".old-*")]:  # left by a writer that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir()
    try:
        buf = io.BytesIO()
        torch.save(state, buf)
        state_bytes = buf.getvalue()
        _write_weights(tensors, tmp / WEIGHTS, {**metadata, STATE_SHA: hashlib.sha256(state_bytes).hexdigest()})
        with open(tmp / STATE, "wb") as fh:
            fh.write(state_bytes)
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
        p
        for p in root.iterdir()
        if p.is_dir()
        and p.name.startswith(PREFIX)
        and p.name[len(PREFIX) :].isdigit()
        and (p / WEIGHTS).is_file()
        and (p / STATE).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


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


def is_hashed(meta: dict[str, str]) -> bool:
    """Whether a checkpoint claims the digests of ``gankit-checkpoint-2``. One that claims the format
    but lost its digests counts as hashed, so stripping them does not switch verification off."""
    return meta.get("format") == FORMAT or any(k in meta for k in (TENSORS_SHA, STATE_SHA, META_SHA))


def _altered(path: Path, what: str) -> CheckpointError:
    """The error for a file whose digest no longer matches: which file, what changed, what to do."""
    ckpt = path.parent

    def step(p: Path) -> int:
        return int(p.name[len(PREFIX) :]) if p.name[len(PREFIX) :].isdigit() else -1

    earlier = [p.name for p in list_checkpoints(ckpt.parent) if p.name != ckpt.name and step(p) < step(ckpt)]
    if earlier:
        instead = (
            f"Use an earlier checkpoint ({ckpt.parent} keeps {', '.join(earlier)}): give its folder to "
            f"`gankit sample`, or move {ckpt.name} out of {ckpt.parent} and resume, which then continues "
            "from the newest one left."
        )
    else:
        instead = (
            f"{ckpt.parent} keeps no earlier checkpoint to fall back on; use another of the run's "
            "checkpoints (its checkpoints/ or best/ folder) if it has one, otherwise train again."
        )
    return CheckpointError(
        f"{path} was altered after it was written: {what} no longer match the sha256 recorded when the "
        f"checkpoint was saved (the file was tampered with, or the disk corrupted it). Do not use it. {instead}"
    )


def _verified_metadata(meta: dict[str, str], path: Path) -> dict[str, str]:
    """``meta`` if its digest matches (or it predates digests); checked first, since the other two
    digests are read from it."""
    if is_hashed(meta) and (META_SHA not in meta or metadata_digest(meta) != meta[META_SHA]):
        raise _altered(path, "its metadata (the recipe, step and digests)")
    return meta


def read_metadata(ckpt: Path) -> dict[str, str]:
    """The weights' metadata, verified, reading only the header (no tensor data)."""
    try:
        with safe_open(str(ckpt / WEIGHTS), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
    except Exception as err:  # safetensors raises its own types for truncated files
        raise CheckpointError(f"cannot read {ckpt / WEIGHTS}: {err}") from None
    return _verified_metadata(meta, ckpt / WEIGHTS)


def load_weights(ckpt: Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of ``ckpt``'s weights, verified against the digests in its metadata
    (checkpoints written before the digests load unverified)."""
    path = ckpt / WEIGHTS
    try:
        # Read on the CPU, where the digest is computed; moved to ``device`` once verified.
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as err:  # safetensors raises its own types for truncated files
        raise CheckpointError(f"cannot read {path}: {err}") from None
    _verified_metadata(meta, path)
    if is_hashed(meta) and tensors_digest(tensors) != meta.get(TENSORS_SHA):
        raise _altered(path, "the bytes of its tensor data")
    if torch.device(device).type != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, meta


def load_state(ckpt: Path) -> dict[str, Any]:
    """The training state of ``ckpt``, its bytes verified against the sha256 in the weights' metadata
    (so the weights file must be readable too) before ``torch.load(weights_only=True)`` parses them:
    altered bytes are named as such rather than parsed into a silently different resume."""
    meta = read_metadata(ckpt)
    path = ckpt / STATE
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err}") from None
    if is_hashed(meta) and hashlib.sha256(data).hexdigest() != meta.get(STATE_SHA):
        raise _altered(path, "its bytes")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read {path}: {err}") from None


def recipe_from_metadata(meta: dict[str, str]) -> dict[str, Any]:
    if "recipe" not in meta:
        raise CheckpointError("this weights file carries no gankit recipe in its metadata")
    try:
        return json.loads(meta["recipe"])
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"the recipe in this checkpoint's metadata is damaged ({err}); was weights.safetensors edited by hand?"
        ) from None


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
        parts = [
            f"{len(v)} {what} (e.g. {v[0]})"
            for v, what in ((missing, "missing"), (extra, "unexpected"), (shapes, "of another shape"))
            if v
        ]
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
