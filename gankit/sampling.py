"""Load a trained generator from a checkpoint (no pickled code) and write samples to disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from gankit.files import atomic_write
from gankit.latent import class_morph, generate, interpolation_grid, z_dim_of
from gankit.metrics.classes import requested_labels
from gankit.models.base import set_step
from gankit.models.stylegan import StyleGANGenerator, style_mixing_grid
from gankit.recipes.load import validate_recipe
from gankit.runlog import checkpoint as ck
from gankit.training import autoperf
from gankit.training.build import Shapes, build_generator, resolve_device
from gankit.viz import save_image_grid, save_samples


def read_checkpoint(source: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str], Any, Shapes]:
    """(weights, metadata with "checkpoint", recipe, data shapes) of a run directory or checkpoint folder."""
    ckpt = ck.find_checkpoint(source)
    tensors, meta = ck.load_weights(ckpt)
    recipe = validate_recipe(ck.recipe_from_metadata(meta))
    s = json.loads(meta["shapes"])
    in_shape = tuple(s["in_shape"]) if s.get("in_shape") else None
    return (
        tensors,
        {**meta, "checkpoint": str(ckpt)},
        recipe,
        Shapes(s["kind"], tuple(s["shape"]), int(s["num_classes"]), in_shape),
    )


def load_generator(
    source: str | Path, device: str = "auto", use_ema: bool = True
) -> tuple[torch.nn.Module, Any, Shapes, dict[str, str]]:
    """(G in eval mode, recipe, shapes, metadata) from a run directory or a checkpoint folder."""
    tensors, meta, recipe, shapes = read_checkpoint(source)
    G = build_generator(recipe, shapes)
    prefix = "G_ema" if use_ema and any(k.startswith("G_ema.") for k in tensors) else "G"
    ck.load_into(G, tensors, prefix, meta["checkpoint"])
    set_step(int(meta["step"]), G)  # a growing G (ProGAN) at the resolution it had reached
    dev = resolve_device(device)
    # the memory format the trainer used on this device, so G draws what the trainer's G drew, bit for bit
    plan = autoperf.resolve(recipe.perf, autoperf.probe(dev), image=shapes.kind == "image")
    plan.place(G, dev, shapes.kind).eval()
    meta = {**meta, "weights": prefix}
    return G, recipe, shapes, meta


def to_uint8_nhwc(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW floats -> uint8 NHWC, rounding to nearest."""
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def resolve_labels(labels: Any, num: int, num_classes: int) -> torch.Tensor | None:
    """The (num,) int64 class ids to ask a generator for: ``None`` gives the classes in turn
    (:func:`requested_labels`, as training grids, evaluation and ``gankit sample`` do) for a conditional
    generator and nothing for an unconditional one; an int asks every sample for that class; a list,
    array or tensor of ``num`` ids gives one per sample. Ids outside 0..num_classes-1 are refused."""
    if labels is None:
        return requested_labels(num, num_classes) if num_classes else None
    if not num_classes:
        raise ValueError("this generator is unconditional: it takes no labels (leave labels=None)")
    if isinstance(labels, bool):
        raise ValueError(f"labels must be class ids (int, list, array or tensor), got {labels!r}")
    try:
        y = labels.detach().cpu() if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"labels must be class ids (int, list, array or tensor), got {labels!r}") from None
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids, got dtype {y.dtype}")
    y = y.to(torch.int64)
    if y.dim() == 0:
        y = y.expand(num).clone()
    if y.dim() != 1 or len(y) != num:
        raise ValueError(f"labels must be one class id or {num} of them (one per sample), got shape {tuple(y.shape)}")
    bad = y[(y < 0) | (y >= num_classes)]
    if len(bad):
        raise ValueError(
            f"label {int(bad[0])} is out of range: this generator has {num_classes} classes (0..{num_classes - 1})"
        )
    return y


def draw_samples(
    G: torch.nn.Module,
    num: int,
    seed: int | None = 0,
    labels: Any = None,
    truncation: float = float("inf"),
    psi: float = 1.0,
    batch_size: int = 500,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(samples, labels asked for) of ``num`` draws of G: what ``gankit sample`` writes and what
    ``gankit.load(...).sample`` returns, one code path for both. ``labels`` as :func:`resolve_labels`
    takes them; the rest as :func:`generate`."""
    if isinstance(num, bool) or int(num) != num or num <= 0:
        raise ValueError(f"the number of samples must be a positive whole number, got {num!r}")
    y = resolve_labels(labels, int(num), int(getattr(G, "num_classes", 0) or 0))
    samples = generate(G, int(num), seed=seed, batch_size=batch_size, labels=y, truncation=truncation, psi=psi)
    return samples, y


def write_samples(
    source: str | Path,
    out: str | Path,
    num: int,
    seed: int = 0,
    device: str = "auto",
    use_ema: bool = True,
    truncation: float = float("inf"),
    psi: float = 1.0,
) -> dict[str, Any]:
    """Write ``num`` samples of a run's generator to ``out``: an .npz (uint8 NHWC ``images`` or float32
    ``points``, and int64 ``labels`` for a conditional generator) or a .png grid / scatter plot."""
    if num <= 0:
        raise ValueError(f"--num must be positive, got {num}")
    out = Path(out)
    if out.suffix not in (".npz", ".png"):
        raise ValueError(f"--out must end in .npz (arrays) or .png (a picture), got {out.name!r}")
    G, recipe, shapes, meta = load_generator(source, device=device, use_ema=use_ema)
    samples, labels = draw_samples(G, num, seed=seed, truncation=truncation, psi=psi)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        save_samples(samples, out, title=f"{recipe.name} ({meta['weights']}, step {meta.get('step', '?')})")
    else:
        arrays: dict[str, np.ndarray] = {}
        if shapes.kind == "image":
            arrays["images"] = to_uint8_nhwc(samples)
        else:
            arrays["points"] = samples.numpy().astype(np.float32)
        if labels is not None:
            arrays["labels"] = labels.numpy().astype(np.int64)
        # numpy's stub: a ``**`` dict might hold savez's own ``allow_pickle``; these keys are array names
        atomic_write(out, lambda tmp: np.savez(tmp, **arrays))  # type: ignore[arg-type]
    return {"out": out, "num": num, "weights": meta["weights"], "checkpoint": meta["checkpoint"]}


def _png_path(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix != ".png":
        raise ValueError(f"--out must end in .png, got {out.name!r}")
    return out


def write_interpolations(
    source: str | Path,
    out: str | Path,
    rows: int = 8,
    steps: int = 10,
    mode: str = "slerp",
    seed: int = 0,
    device: str = "auto",
    use_ema: bool = True,
) -> dict[str, Any]:
    """A PNG grid: each row walks from one random z to another in ``steps`` (lerp or slerp)."""

    out = _png_path(out)
    G, recipe, shapes, meta = load_generator(source, device=device, use_ema=use_ema)
    if shapes.kind != "image":
        raise ValueError("interpolation grids are for image generators; for 2-D data use `gankit sample --out x.png`")
    pairs = torch.randn(rows, 2, z_dim_of(G), generator=torch.Generator().manual_seed(seed))
    z = interpolation_grid(pairs, steps, mode)
    labels = None
    if getattr(G, "num_classes", 0):  # one class per row, so the walk shows style within a class
        labels = requested_labels(rows, cast(int, G.num_classes)).repeat_interleave(steps)
    images = generate(G, len(z), labels=labels, z=z)
    save_image_grid(images, out, nrow=steps)
    return {"out": out, "rows": rows, "steps": steps, "mode": mode, "checkpoint": meta["checkpoint"]}


def write_class_morph(
    source: str | Path,
    out: str | Path,
    class_a: int,
    class_b: int,
    rows: int = 8,
    steps: int = 10,
    seed: int = 0,
    device: str = "auto",
    use_ema: bool = True,
) -> dict[str, Any]:
    """A PNG grid of category morphs (BigGAN Fig. 8): each row keeps one z and walks the shared class
    embedding from class_a's to class_b's in ``steps`` frames."""

    out = _png_path(out)
    G, _, _, meta = load_generator(source, device=device, use_ema=use_ema)
    z = torch.randn(rows, z_dim_of(G), generator=torch.Generator().manual_seed(seed))
    images = torch.cat([class_morph(G, zi, class_a, class_b, steps) for zi in z])
    save_image_grid(images, out, nrow=steps)
    return {
        "out": out,
        "rows": rows,
        "steps": steps,
        "mode": f"class {class_a} -> {class_b}",
        "checkpoint": meta["checkpoint"],
    }


def write_style_mixing(
    source: str | Path,
    out: str | Path,
    crossover: int,
    rows: int = 4,
    cols: int = 6,
    seed: int = 0,
    device: str = "auto",
    use_ema: bool = True,
    psi: float = 1.0,
) -> dict[str, Any]:
    """StyleGAN's style-mixing figure (Karras et al. 2019, Fig. 3) as a PNG: column sources on top, row
    sources on the left, and each cell with the row's styles below ``crossover`` and the column's above."""

    out = _png_path(out)
    G, _, _, meta = load_generator(source, device=device, use_ema=use_ema)
    if not callable(getattr(G, "synthesis", None)):
        raise ValueError(f"style mixing needs a StyleGAN generator; this run's is {type(G).__name__}")
    gen = torch.Generator().manual_seed(seed)
    device_ = next(G.parameters()).device
    z_rows = torch.randn(rows, z_dim_of(G), generator=gen).to(device_)
    z_cols = torch.randn(cols, z_dim_of(G), generator=gen).to(device_)
    with torch.no_grad():  # G has StyleGAN's synthesis network (checked above)
        grid = style_mixing_grid(cast(StyleGANGenerator, G), z_rows, z_cols, crossover, psi=psi).float().cpu()
    save_image_grid(grid, out, nrow=cols + 1)
    return {
        "out": out,
        "rows": rows,
        "steps": cols,
        "mode": f"style mixing at layer {crossover} of {G.num_ws}",
        "checkpoint": meta["checkpoint"],
    }
