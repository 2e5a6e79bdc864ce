"""``gankit encode``: map data to latents with a trained BiGAN / VEEGAN encoder (no pickled code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.config import ConfigError
from gankit.evaluation import load_images
from gankit.files import atomic_write
from gankit.latent import z_dim_of
from gankit.runlog import checkpoint as ck
from gankit.sampling import read_checkpoint
from gankit.training.build import Shapes, build_data, build_encoder, build_generator, resolve_device


def load_encoder(source: str | Path, device: str = "auto") -> tuple[torch.nn.Module, Any, Shapes, dict[str, str]]:
    """(E in eval mode, recipe, shapes, metadata) from a run directory or checkpoint folder."""
    tensors, meta, recipe, shapes = read_checkpoint(source)
    if recipe.encoder is None:
        raise ConfigError(
            f"{meta['checkpoint']} comes from family {recipe.family.name!r}, which has no encoder; "
            "train with family=bigan or family=veegan to get one"
        )
    E = build_encoder(recipe, shapes, z_dim_of(build_generator(recipe, shapes)))
    assert E is not None
    ck.load_into(E, tensors, "E", meta.get("checkpoint", source))
    E.to(resolve_device(device)).eval()
    return E, recipe, shapes, meta


@torch.no_grad()
def encode(E: torch.nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    device = next(E.parameters()).device
    return torch.cat([E(c.to(device)).float().cpu() for c in x.split(batch_size)])


def encode_data(
    source: str | Path, out: str | Path, num: int = 10000, data: str | None = None, seed: int = 0, device: str = "auto"
) -> dict[str, Any]:
    """Encode ``num`` samples of the run's own data (or of ``data``: an .npz or image folder) to
    ``out`` (.npz with ``z`` and, when the data has them, ``labels``)."""
    if num <= 0:
        raise ValueError(f"--num must be positive, got {num}")
    out = Path(out)
    if out.suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {out.name!r}")
    E, recipe, shapes, meta = load_encoder(source, device)
    if data is None:
        src = build_data(recipe)
    else:
        src = load_images(
            data,
            resolution=shapes.shape[-1] if shapes.kind == "image" else None,
            channels=shapes.shape[0] if shapes.kind == "image" else None,
        )
    if tuple(src.shape) != tuple(shapes.shape):
        raise ValueError(
            f"the data has shape {tuple(src.shape)} but the encoder was trained on "
            f"{tuple(shapes.shape)}; give data of the run's shape"
        )
    try:
        num = min(num, len(src))  # a finite set is encoded at most once over
    except TypeError:
        pass  # endless sources (toy mixtures) have no length
    x, labels = src.sample_real(num, seed=seed)
    z = encode(E, x)
    arrays = {"z": z.numpy().astype(np.float32)}
    if labels is not None:
        arrays["labels"] = labels.numpy().astype(np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    # numpy's stub: a ``**`` dict might hold savez's own ``allow_pickle``; these keys are z and labels
    atomic_write(out, lambda tmp: np.savez(tmp, **arrays))  # type: ignore[arg-type]
    return {
        "out": out,
        "num": len(z),
        "z_dim": z.shape[1],
        "checkpoint": meta["checkpoint"],
        "labels": labels is not None,
    }
