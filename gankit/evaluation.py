"""`gankit eval`: score a trained generator, or one set of images against another, with protocol.

Every bad input ends as a ``ValueError`` (or a subclass: ``ConfigError``, ``RegistryError``,
``DataPathError``) whose message names the problem and the fix, which `gankit eval` prints as one
``error:`` line with exit status 2: a missing path, an .npz without an ``images`` array or with
non-uint8 images, an empty folder, too many unreadable files in a folder (fewer are skipped with a
warning that counts them, as training does), real and generated images of different shapes, an
unknown metric or extractor, and a metric that cannot work on the data (gankit/metrics/checks.py).

With ``--real`` / ``--fake``, the counts default to what the files hold, and a metric is scored on
the images that exist: never on repeats, and the protocol records the true ``num_real`` / ``num_fake``.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, cast

import torch

from gankit.data import DATASETS, DataPathError
from gankit.data.base import to_float
from gankit.data.folder import EXTENSIONS, find_images, load_square
from gankit.files import atomic_write
from gankit.metrics import METRICS
from gankit.metrics.classes import requested_labels
from gankit.metrics.evaluate import Evaluator, reference_description
from gankit.metrics.image import ALIASES
from gankit.sampling import generate, load_generator
from gankit.training.build import build_data, resolve_device

DEFAULT_METRICS = "fid,kid,is,pr,dc"
RUN_NUM = 10000  # generated samples for a run when --num is not given: the FID standard (Heusel et al. 2017)


def metric_names(names: str) -> list[str]:
    """``"fid,kid,is"`` -> registered metric names (aliases resolved); unknown names fail, listing the valid ones."""
    out = [ALIASES.get(raw, raw) for raw in (n.strip() for n in names.split(",")) if raw]
    if not out:
        raise ValueError(f"--metrics is empty; give a comma-separated list such as {DEFAULT_METRICS}")
    for name in out:
        METRICS.entry(name)  # RegistryError naming the valid choices
    return out


def build_metric_list(
    names: str, features: str, num: int, num_real: int | None, feature_options: dict[str, Any]
) -> list[tuple[str, Any]]:
    """``"fid,kid,is"`` -> built METRICS entries sharing one extractor spec."""
    out = []
    for name in metric_names(names):
        if getattr(METRICS.get(name), "uses_features", False):
            m = METRICS.build(
                name, features=features, num_samples=num, num_real=num_real, feature_options=feature_options
            )
        else:
            m = METRICS.build(name, num_samples=num)
        out.append((name, m))
    return out


def load_images(
    path: str | Path,
    resolution: int | None = None,
    channels: int | None = None,
    *,
    what: str = "",
    max_unreadable: float = 0.01,
    limit_option: str | None = None,
) -> Any:
    """A DataSource from an .npz (arrays as `gankit sample` writes them) or a folder of images.

    A folder is decoded at ``resolution`` / ``channels`` (default: the first image's shorter side and
    mode). Unreadable files in it are skipped with a warning that counts them, up to
    ``max_unreadable`` of the folder, as training does (gankit/data/folder.py); more is an error.
    ``what`` names the path in messages (``--real``); ``limit_option`` names the setting that raises
    ``max_unreadable`` for the command (``--max-unreadable``), None: the messages name none."""

    p = Path(path).expanduser()
    label = f"{what} {str(p)!r}" if what else repr(str(p))
    if not p.exists():
        raise DataPathError(f"{label} does not exist; give an .npz file (uint8 'images') or a folder of images")
    if p.is_file() and p.suffix.lower() == ".npz":
        return _load_npz(p, label)
    if p.is_dir():
        return _load_folder(p, label, resolution, channels, max_unreadable, limit_option)
    raise DataPathError(f"{label} is neither an .npz file nor a folder of images")


def _load_npz(p: Path, label: str) -> Any:
    import zipfile

    import numpy as np

    # The npz dataset's own messages name recipe keys (data.key=...); here the file is given directly,
    # so its layout is checked first and explained in terms of the file.
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = list(z.files)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{label} cannot be read as an .npz file ({err}); write it with numpy.savez") from None
    if "images" not in arrays:
        raise ValueError(
            f"{label} has no array 'images' (its arrays: {', '.join(arrays) or 'none'}); store the "
            f"images as uint8 under 'images' (N, H, W), (N, H, W, C) or (N, C, H, W), as "
            f"`gankit sample --out FILE.npz` writes them"
        )
    src = DATASETS.build("npz", path=str(p))
    if len(src) == 0:
        raise ValueError(f"{label} holds no images (its 'images' array is empty)")
    return src


def _load_folder(
    p: Path, label: str, resolution: int | None, channels: int | None, max_unreadable: float, limit_option: str | None
) -> Any:

    files = find_images(p)
    if not files:
        raise DataPathError(f"no images found under {label} (looked for {', '.join(EXTENSIONS)}, any case)")
    if resolution is None or channels is None:
        from PIL import Image

        for f in files:  # the first readable file decides; unreadable ones are counted below
            try:
                with Image.open(f) as im:
                    resolution = resolution or min(im.size)
                    channels = channels or (1 if im.mode in ("L", "I", "I;16", "1", "LA") else 3)
                break
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                continue
        else:
            raise DataPathError(
                f"none of the {len(files)} image files under {label} can be read as images (first: {files[0].name})"
            )
    # Load with every file allowed to fail, then apply max_unreadable here: the dataset's own message
    # names the recipe key data.max_unreadable, which is not how this command is set.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            src = DATASETS.build(
                "image-folder", path=str(p), resolution=resolution, channels=channels, max_unreadable=1.0
            )
        except DataPathError:  # every file unreadable
            src = None
    for w in caught:  # pass on anything other than the unreadable-files note, which is redone below
        if "cannot be read as images" not in str(w.message):
            warnings.warn(w.message, stacklevel=3)
    kept = set(src.files) if src is not None else set()
    bad = [f for f in files if f not in kept]
    if bad:
        try:
            load_square(bad[0], resolution, "L" if channels == 1 else "RGB")
            reason = "unreadable"
        except ValueError as err:
            reason = str(err)
        head = f"{len(bad)} of {len(files)} files under {label} cannot be read as images (first: {reason})"
        if src is None or len(bad) > max_unreadable * len(files):
            raise_it = (
                f"raise {limit_option} (now {max_unreadable:g}) to skip them"
                if limit_option
                else f"more than max_unreadable={max_unreadable:g} of the folder"
            )
            raise DataPathError(f"{head}; remove or re-download them, or {raise_it}")
        warnings.warn(f"{head}; skipped them ({len(src)} images used)", stacklevel=3)
    return src


def load_pair(real: str | Path, fake: str | Path, max_unreadable: float = 0.01) -> tuple[Any, Any]:
    """The --real and --fake image sets, checked to have one shape (a --fake folder is decoded at
    --real's resolution and channels; an .npz is taken as stored)."""
    real_src = load_images(real, what="--real", max_unreadable=max_unreadable, limit_option="--max-unreadable")
    fake_src = load_images(
        fake,
        resolution=real_src.shape[-1],
        channels=real_src.shape[0],
        what="--fake",
        max_unreadable=max_unreadable,
        limit_option="--max-unreadable",
    )
    if tuple(fake_src.shape) != tuple(real_src.shape):

        def fmt(shape: tuple[int, ...]) -> str:
            return "x".join(map(str, shape))

        raise ValueError(
            f"--fake {str(fake)!r} holds {fmt(fake_src.shape)} images but --real {str(real)!r} holds "
            f"{fmt(real_src.shape)} (channels x height x width); the two sets must have one shape to be compared: "
            f"write the generated images at the reference's size and channels (a folder given to --fake is "
            f"decoded at --real's size and channels)"
        )
    return real_src, fake_src


def _write_json(path: Path, record: dict[str, Any], append: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        return
    atomic_write(path, json.dumps(record, indent=2))


def evaluate_run(
    run: str | Path,
    metrics: list[tuple[str, Any]],
    seed: int = 0,
    device: str = "auto",
    use_ema: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Scores of a run's generator (EMA weights when present) against its recipe's dataset.

    The record is also appended to RUN_DIR/eval.jsonl when ``run`` is a run directory."""

    if not Path(run).expanduser().exists():
        raise DataPathError(
            f"{str(run)!r} does not exist; give a run directory (or its checkpoints/step-N "
            f"folder) to evaluate, or --real PATH --fake PATH"
        )
    G, recipe, shapes, meta = load_generator(run, device=device, use_ema=use_ema)
    if shapes.kind != "image" and any(getattr(m, "uses_features", False) for _, m in metrics):
        raise ValueError(f"run {run} generates 2-D points; image metrics do not apply (use --metrics toy-mixture)")
    source = build_data(recipe)
    labels_for = (
        (lambda n: requested_labels(n, cast(int, G.num_classes))) if getattr(G, "num_classes", 0) else (lambda n: None)
    )
    ev = Evaluator(
        metrics,
        source,
        resolve_device(device),
        seed=seed,
        reference=reference_description(source, recipe.data.options),
        progress=progress,
        context="eval",
    )
    t0 = time.perf_counter()
    results, protocols = ev.evaluate(lambda n: generate(G, n, seed=seed, labels=labels_for(n)))
    record = {
        "run": str(run),
        "checkpoint": meta["checkpoint"],
        "step": int(meta.get("step", -1)),
        "weights": meta["weights"],
        "results": results,
        "protocol": protocols,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if (Path(run) / "config.yaml").is_file():
        _write_json(Path(run) / "eval.jsonl", record, append=True)
    return record


def evaluate_files(
    real: str | Path,
    fake: str | Path,
    metrics: list[tuple[str, Any]],
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    max_unreadable: float = 0.01,
    loaded: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Scores of the images in ``fake`` against those in ``real`` (folders or .npz files).

    ``loaded``: the two sets from ``load_pair(real, fake)`` when the caller has loaded them already
    (`gankit eval` does, to default ``--num`` to what the files hold). A metric asking for more images
    than a file holds scores those it holds, with a warning; the protocol records the true counts."""

    real_src, fake_src = loaded if loaded is not None else load_pair(real, fake, max_unreadable)
    fake_images = to_float(fake_src.images)

    def take(n: int) -> torch.Tensor:
        return fake_images[:n]  # the Evaluator never asks for more than fake_size

    ev = Evaluator(
        metrics,
        real_src,
        resolve_device(device),
        seed=seed,
        reference={**reference_description(real_src), "path": str(real)},
        progress=progress,
        context="eval",
        fake_size=len(fake_images),
    )
    t0 = time.perf_counter()
    results, protocols = ev.evaluate(take)
    return {
        "real": str(real),
        "fake": str(fake),
        "results": results,
        "protocol": protocols,
        "seconds": round(time.perf_counter() - t0, 2),
    }
