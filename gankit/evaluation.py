"""`gankit eval`: score a trained generator, or one set of images against another, with protocol."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from gankit.metrics import METRICS
from gankit.metrics.evaluate import Evaluator, reference_description
from gankit.metrics.classes import requested_labels
from gankit.metrics.image import ALIASES

DEFAULT_METRICS = "fid,kid,is,pr,dc"


def build_metric_list(names: str, features: str, num: int, num_real: int | None,
                      feature_options: dict[str, Any]) -> list[tuple[str, Any]]:
    """``"fid,kid,is"`` -> built METRICS entries sharing one extractor spec."""
    out = []
    for raw in [n.strip() for n in names.split(",") if n.strip()]:
        name = ALIASES.get(raw, raw)
        METRICS.entry(name)  # unknown names fail here, listing the valid ones
        if getattr(METRICS.get(name), "uses_features", False):
            m = METRICS.build(name, features=features, num_samples=num, num_real=num_real,
                              feature_options=feature_options)
        else:
            m = METRICS.build(name, num_samples=num)
        out.append((name, m))
    if not out:
        raise ValueError(f"--metrics is empty; give a comma-separated list such as {DEFAULT_METRICS}")
    return out


def load_images(path: str | Path, resolution: int | None = None, channels: int | None = None) -> Any:
    """A DataSource from an .npz (arrays as `gankit sample` writes them) or a folder of images."""
    from gankit.data import DATASETS, DataPathError

    p = Path(path).expanduser()
    if p.suffix == ".npz":
        return DATASETS.build("npz", path=str(p))
    if p.is_dir():
        from gankit.data.folder import find_images

        files = find_images(p)
        if not files:
            raise DataPathError(f"no images found under {str(p)!r}")
        if resolution is None or channels is None:
            from PIL import Image

            with Image.open(files[0]) as im:
                resolution = resolution or min(im.size)
                channels = channels or (1 if im.mode in ("L", "I", "I;16", "1") else 3)
        return DATASETS.build("image-folder", path=str(p), resolution=resolution, channels=channels)
    raise DataPathError(f"{str(p)!r} is neither an .npz file nor a folder of images")


def _write_json(path: Path, record: dict[str, Any], append: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        return
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def evaluate_run(run: str | Path, metrics: list[tuple[str, Any]], seed: int = 0, device: str = "auto",
                 use_ema: bool = True, progress: bool = True) -> dict[str, Any]:
    """Scores of a run's generator (EMA weights when present) against its recipe's dataset.

    The record is also appended to RUN_DIR/eval.jsonl when ``run`` is a run directory."""
    from gankit.sampling import generate, load_generator
    from gankit.train.build import build_data, resolve_device

    G, recipe, shapes, meta = load_generator(run, device=device, use_ema=use_ema)
    if shapes.kind != "image" and any(getattr(m, "uses_features", False) for _, m in metrics):
        raise ValueError(f"run {run} generates 2-D points; image metrics do not apply (use --metrics toy-mixture)")
    source = build_data(recipe)
    labels_for = (lambda n: requested_labels(n, G.num_classes)) if getattr(G, "num_classes", 0) else (lambda n: None)
    ev = Evaluator(metrics, source, resolve_device(device), seed=seed,
                   reference=reference_description(source, recipe.data.options), progress=progress)
    t0 = time.perf_counter()
    results, protocols = ev.evaluate(lambda n: generate(G, n, seed=seed, labels=labels_for(n)))
    record = {"run": str(run), "checkpoint": meta["checkpoint"], "step": int(meta.get("step", -1)),
              "weights": meta["weights"], "results": results, "protocol": protocols,
              "seconds": round(time.perf_counter() - t0, 2)}
    if (Path(run) / "config.yaml").is_file():
        _write_json(Path(run) / "eval.jsonl", record, append=True)
    return record


def evaluate_files(real: str | Path, fake: str | Path, metrics: list[tuple[str, Any]], seed: int = 0,
                   device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Scores of the images in ``fake`` against those in ``real`` (folders or .npz files)."""
    from gankit.data.base import to_float
    from gankit.train.build import resolve_device

    real_src = load_images(real)
    fake_src = load_images(fake, resolution=real_src.shape[-1], channels=real_src.shape[0])
    fake_images = to_float(fake_src.images)

    def take(n: int) -> torch.Tensor:
        if n > fake_images.shape[0]:
            raise ValueError(f"{fake} holds {fake_images.shape[0]} images but a metric asks for {n}; lower --num")
        return fake_images[:n]

    ev = Evaluator(metrics, real_src, resolve_device(device), seed=seed,
                   reference={**reference_description(real_src), "path": str(real)}, progress=progress)
    t0 = time.perf_counter()
    results, protocols = ev.evaluate(take)
    return {"real": str(real), "fake": str(fake), "results": results, "protocol": protocols,
            "seconds": round(time.perf_counter() - t0, 2)}
