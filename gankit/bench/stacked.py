"""Stacked MNIST mode counting (``gankit bench stacked-mnist``): 1000 modes, DCGAN vs PacDCGAN.

Protocol of Metz et al. 2017 (Sec. 3.3.2), VEEGAN (Srivastava et al. 2017, Sec. 5.2) and PacGAN
(Lin et al. 2018, Sec. 5.2): each image stacks three random digits as its channels; draw 26,000
samples from the generator, label each channel with a digit classifier, and report the number of
the 1000 digit triples that occur at least once ("modes") and KL(p_hat || uniform) of the triple
histogram. The classifier is gankit's per-channel ``classifier`` extractor (trained once on the
base set, cached by its fingerprint; gankit.metrics.classifier).

Offline, ``base=digits`` stacks scikit-learn's digits at 16 px; ``data_path`` points at real MNIST
IDX files (e.g. shared/data/mnist, whose only images are the t10k split: ``split=test``), at 32 px
for the DCGAN's power-of-two sizes.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from gankit.bench.cells import CellStore, Job, cell_key, print_cell_notes, run_cells
from gankit.bench.report import fmt
from gankit.bench.toy import _resolve, deep_merge, standard_error
from gankit.config import ConfigError, Recipe
from gankit.files import json_safe
from gankit.metrics.classes import label_statistics
from gankit.metrics.features import FEATURES
from gankit.recipes.load import validate_recipe
from gankit.registry import RegistryError
from gankit.seeds import SeedPurpose, seeded
from gankit.training.build import build_data
from gankit.viz import save_image_grid
from gankit.viz.html import html_table, page

NUM_SAMPLES = 26000  # VEEGAN / PacGAN
NUM_MODES = 1000

# A method is a patch over the DCGAN base recipe. PacGAN keeps the number of packs per minibatch
# (batch 64 m), as on the 2-D mixtures.
STACKED_METHODS: dict[str, tuple[dict[str, Any], str]] = {
    "gan": ({}, "DCGAN"),
    **{
        f"pacgan{m}": ({"tricks": [{"name": "pacgan", "m": m}], "schedule": {"batch_size": 64 * m}}, f"PacDCGAN{m}")
        for m in (2, 3, 4)
    },
    "unrolled": ({"tricks": [{"name": "unrolled", "k": 5}]}, "Unrolled GAN (k = 5)"),
}
QUICK: dict[str, Any] = {"methods": ("gan", "pacgan2"), "budget": 200, "seeds": 1, "num_samples": 2600}


def stacked_recipe(
    method: str, seed: int = 0, budget: int = 5000, data_path: str = "", split: str = "train", num: int = 50000
) -> Recipe:
    """DCGAN (Radford et al. 2016; Adam 2e-4, beta1 0.5, batch 64) on stacked MNIST, with a method's patch."""
    if method not in STACKED_METHODS:
        raise ConfigError(f"unknown stacked-mnist method {method!r}; valid choices: {', '.join(STACKED_METHODS)}")
    data: dict[str, Any] = {"name": "stacked-mnist", "num": num, "seed": 0}
    if data_path:
        data.update(base="mnist", path=str(data_path), split=split, resolution=32)
    else:
        data.update(base="digits", resolution=16)
    adam = {"type": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
    raw = {
        "name": f"bench-{method}-stacked-mnist",
        "seed": seed,
        "data": data,
        "generator": {"name": "dcgan", "z_dim": 100, "width": 64},
        "discriminator": {"name": "dcgan", "width": 64},
        "objective": {"name": "non-saturating"},
        "optim": {"g": dict(adam), "d": dict(adam)},
        "schedule": {"steps": max(1, budget), "batch_size": 64, "n_critic": 1},
        "log": {"tensorboard": False},
    }
    try:
        return validate_recipe(deep_merge(raw, STACKED_METHODS[method][0]))
    except RegistryError as err:
        raise ConfigError(str(err)) from None


# -- counting --------------------------------------------------------------------------------------
def channel_classifier(source: Any, epochs: int = 5) -> Any:
    """The single-digit classifier of the per-channel ``classifier`` extractor of a stacked source
    (trained for ``epochs`` on the base set once, then cached). Fewer epochs count worse; measured on
    the sklearn digits, 26,000 real stacked samples: 1 epoch labels 69 % of the digits right and finds
    798 of the 1000 modes, 2 epochs 82 % and 985, the default 5 epochs all 1000 (97.7 % of the
    triples right)."""

    ex = FEATURES.build("classifier", source=source, epochs=epochs)
    if not hasattr(ex, "single"):
        raise ValueError(f"dataset {getattr(source, 'name', source)!r} is not a stacked dataset")
    return ex.single


@torch.no_grad()
def triple_labels(images: torch.Tensor, single: Any, batch_size: int = 500) -> torch.Tensor:
    """(N, C, H, W) images in [-1, 1] -> (N,) joint labels sum_c d_c K^(C-1-c) (channel 0 most significant).

    Each distinct channel image is classified once: the classifier is in eval mode, so identical
    inputs get identical outputs, and real stacked data reuses a few thousand digits many times.
    """
    n, c = images.shape[:2]
    flat = images.reshape(n * c, -1)
    uniq, inverse = torch.unique(flat, dim=0, return_inverse=True)
    device = next(single.parameters()).device
    digits = torch.cat(
        [single(u.view(-1, 1, *images.shape[2:]).to(device))["logits"].argmax(1).cpu() for u in uniq.split(batch_size)]
    )[inverse].view(n, c)
    k = single.num_classes
    weights = torch.tensor([k ** (c - 1 - i) for i in range(c)], dtype=torch.int64)
    return (digits * weights).sum(1)


def mode_statistics(labels: torch.Tensor, num_modes: int = NUM_MODES) -> dict[str, float]:
    """``modes``: classes seen at least once; ``kl``: KL(p_hat || uniform) = sum_k p_k log(K p_k)
    (gankit.metrics.classes.label_statistics, under the benchmark's names)."""

    s = label_statistics(labels, num_modes)
    return {"modes": int(s["classes_covered"]), "kl": s["class_kl"]}


def count_modes(images: torch.Tensor | Iterable[torch.Tensor], single: Any) -> dict[str, float]:
    """Modes and KL to uniform of stacked images (a tensor, or an iterable of batches)."""
    batches = [images] if isinstance(images, torch.Tensor) else images
    labels = torch.cat([triple_labels(b, single) for b in batches])
    return {**mode_statistics(labels), "num_samples": int(labels.numel())}


# -- the benchmark ---------------------------------------------------------------------------------
def _generated(trainer: Any, n: int, seed: int, batch: int = 1000) -> Iterable[torch.Tensor]:
    g = seeded(seed, SeedPurpose.EVAL_LATENTS)  # the recipe's seed: the z the trainer's evaluations score
    for start in range(0, n, batch):
        yield trainer.generate(torch.randn(min(batch, n - start), trainer.G.z_dim, generator=g))


def run_stacked_bench(
    methods: list[str] | tuple[str, ...] | None = None,
    budget: int | None = None,
    seeds: int | None = None,
    data_path: str = "",
    split: str = "train",
    num_samples: int | None = None,
    out_dir: str | Path = "bench-stacked-mnist",
    quick: bool = False,
    progress: bool = True,
    console: Console | None = None,
    classifier_epochs: int = 5,
    resume: bool = True,
) -> dict[str, Any]:
    """Train each (method, seed) for ``budget`` generator steps; count modes and KL to uniform of
    ``num_samples`` samples (26,000 by default); also of as many real samples, as a reference row.
    Writes results.json, a sample grid per method and index.html to ``out_dir``. Finished runs are
    kept in ``out_dir/cells`` and loaded when the same settings run again (``resume=False``: never)."""
    from gankit.training.trainer import Trainer

    preset: dict[str, Any] = (
        QUICK if quick else {"methods": tuple(STACKED_METHODS), "budget": 20000, "seeds": 3, "num_samples": NUM_SAMPLES}
    )
    methods = _resolve(methods or preset["methods"], STACKED_METHODS, "method")
    budget = int(budget if budget is not None else preset["budget"])
    seeds = int(seeds if seeds is not None else preset["seeds"])
    num_samples = int(num_samples if num_samples is not None else preset["num_samples"])
    if budget < 1 or seeds < 1 or num_samples < 1:
        raise ConfigError(f"budget, seeds and num_samples must be >= 1, got {budget}, {seeds}, {num_samples}")
    console = console or Console()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    num = max(50000, num_samples)

    source = build_data(stacked_recipe("gan", 0, 1, data_path, split, num))
    single = channel_classifier(source, classifier_epochs)
    real, _ = source.sample_real(num_samples, seed=0)
    reference = count_modes(real, single)

    def prepare(cell: tuple[str, int]) -> Job:
        method, seed = cell
        recipe = stacked_recipe(method, seed, budget, data_path, split, num)

        def train(advance: Any) -> tuple[dict[str, Any], torch.Tensor]:
            t = Trainer(recipe, "/nonexistent-bench-run", console=Console(quiet=True))
            t0 = time.perf_counter()
            for _ in range(budget):
                t.train_step(want_log=False)
                advance()
            t.check_finite()
            fields = {
                **count_modes(_generated(t, num_samples, seed), single),
                "status": "ok",
                "seconds": time.perf_counter() - t0,
            }
            return fields, next(iter(_generated(t, 64, seed, 64)))  # the sample grid

        key = cell_key(recipe, num_samples=num_samples, classifier_epochs=classifier_epochs)
        return Job(f"{method}-seed{seed}", key, train)

    store = CellStore(out, enabled=resume)
    cells = [(m, s) for m in methods for s in range(seeds)]
    done, skipped = run_cells(
        cells,
        prepare,
        store=store,
        budget=budget,
        label="stacked-mnist benchmark",
        describe=lambda c: f"{c[0]} seed {c[1]}",
        group=lambda c: c[0],
        record=lambda c: {"method": c[0], "seed": c[1], "status": "skipped"},
        console=console,
        progress=progress,
    )
    runs = [d.record for d in done]
    grids: dict[str, str] = {}
    for d in done:  # a sample grid per method, from its first seed with samples
        method = d.cell[0]
        if method not in grids and d.samples is not None:
            path = out / "samples" / f"{method}.png"
            save_image_grid(d.samples, path, nrow=8)
            grids[method] = str(path.relative_to(out))

    rows = []
    for method in methods:
        ok = [r for r in runs if r["method"] == method and r["status"] == "ok"]
        row: dict[str, Any] = {
            "method": method,
            "label": STACKED_METHODS[method][1],
            "seeds": len(ok),
            "plot": grids.get(method),
        }
        for key in ("modes", "kl"):
            vals = [float(r[key]) for r in ok]
            row[key] = sum(vals) / len(vals) if vals else None
            row[f"{key}_se"] = standard_error(vals)
        rows.append(row)
    results: dict[str, Any] = {
        "benchmark": "stacked-mnist",
        "config": {
            "methods": methods,
            "budget": budget,
            "seeds": seeds,
            "num_samples": num_samples,
            "data": "mnist " + split if data_path else "digits (16 px)",
            "quick": quick,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "torch": torch.__version__,
        },
        "reference": reference,
        "rows": rows,
        "runs": runs,
        "skipped": skipped,
        "resumed": store.loaded,
    }
    (out / "results.json").write_text(json.dumps(json_safe(results), indent=2))
    _print_table(results, console)
    header, cells_ = _table_cells(results)
    figs = "".join(
        f"<figure><img src='{html.escape(r['plot'])}' alt='{html.escape(r['label'])}'>"
        f"<figcaption>{html.escape(r['label'])}</figcaption></figure>"
        for r in rows
        if r.get("plot")
    )
    c = results["config"]
    note = (
        f"{c['budget']} generator steps, {c['seeds']} seed(s), {c['num_samples']} samples, data {c['data']}; "
        "mean ± standard error over seeds"
    )
    (out / "index.html").write_text(
        page(
            "gankit Stacked MNIST benchmark (1000 modes)",
            f"<p class='note'>{note}</p>{html_table(header, cells_, left=1)}"
            f"<h2>Samples (first seed)</h2><div class='plots'>{figs}</div>",
        )
    )
    print_cell_notes(console, store, skipped)
    return results


def _table_cells(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:

    ref = results["reference"]
    cells = [
        [r["label"], str(r["seeds"]), fmt(r["modes"], r["modes_se"]), fmt(r["kl"], r["kl_se"], 2)]
        for r in results["rows"]
    ]
    cells.append(["real data (reference)", "", f"{ref['modes']}", f"{ref['kl']:.2f}"])
    return ["method", "seeds", f"modes / {NUM_MODES}", "KL to uniform"], cells


def _print_table(results: dict[str, Any], console: Console) -> None:
    c = results["config"]
    table = Table(
        title=f"Stacked MNIST: {c['budget']} steps, {c['seeds']} seed(s), {c['num_samples']} samples "
        f"(max KL log 1000 = {math.log(NUM_MODES):.2f})",
        title_justify="left",
    )
    header, cells = _table_cells(results)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in cells:
        table.add_row(*row)
    console.print(table)
