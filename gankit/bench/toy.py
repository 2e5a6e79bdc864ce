"""The mode-collapse benchmark on the 2-D mixtures (``gankit bench toy``).

Protocol of VEEGAN (Srivastava et al. 2017, Sec. 5.1) and PacGAN (Lin et al. 2018, Sec. 5.1, Table 1):
train each method on the ``ring`` (8 modes, std 0.01) and the ``grid`` (25 modes, std 0.05), draw
2,500 samples, and report modes captured, the percentage of high-quality samples and the reverse KL
of the mode histogram to uniform (gankit.metrics.toy), as mean and standard error over seeds.

Every method shares PacGAN's architecture (their Sec. 5.1 and code, fjxmlzn/PacGAN): G an MLP
2 -> 400 x 4 -> 2 with batch norm and ReLU, D three maxout layers of 200 units and 5 pieces, Adam
(lr 1e-4, beta1 0.8), batch 100. A method is a patch over that base recipe (``METHODS``), so the
same trainer, metrics and seeds serve every row. PacGAN's paper trains for far longer than a CI
run can; ``QUICK`` is the CI preset and says how it departs from the paper's settings.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from gankit.bench.cells import CellStore, Job, cell_key, print_cell_notes, run_cells
from gankit.bench.report import print_toy_table, save_points_figure, save_trajectory_figure, write_toy_html
from gankit.config import ConfigError, Recipe
from gankit.files import json_safe
from gankit.latent import z_dim_of
from gankit.recipes.load import validate_recipe
from gankit.registry import RegistryError
from gankit.seeds import SeedPurpose, seeded

DATASETS = ("grid", "ring")
NUM_MODES = {"grid": 25, "ring": 8}

# PacGAN (Lin et al. 2018), Table 1: (modes, % high-quality samples, reverse KL), the rows we share.
PUBLISHED: dict[tuple[str, str], dict[str, float]] = {
    ("grid", "gan"): {"modes": 17.3, "hq": 94.8, "kl": 0.70},
    ("grid", "pacgan2"): {"modes": 23.8, "hq": 91.3, "kl": 0.13},
    ("grid", "pacgan4"): {"modes": 24.8, "hq": 93.6, "kl": 0.04},
    ("ring", "gan"): {"modes": 6.3, "hq": 98.2, "kl": 0.45},
    ("ring", "pacgan2"): {"modes": 7.9, "hq": 95.6, "kl": 0.07},
}
PUBLISHED_SOURCE = "PacGAN (Lin et al. 2018), Table 1"

PAPER_LR = 1e-4
# Every weight N(0, 0.02), biases 0 (PacGAN's code: IsotropicGaussian(0.02), Constant(0)). It matters:
# PacGAN4 (seed 0) with it had 25 modes at 40,000 steps; with PyTorch's default init still 13 modes
# and 2 % high-quality samples at 45,000 (2 CPU cores, one run per core).
PAPER_INIT_STD = 0.02
# Generator steps per run for the full benchmark: PacGAN4 needs about 60,000 to reach the paper's KL
# (see QUICK below; at 20,000 its samples were still a diffuse square). A GPU run; on 2 CPU cores every
# method on both datasets with 3 seeds takes about 37 h (measured per step), so pass --budget there.
FULL_BUDGET = 60000
FULL_SEEDS = 3


@dataclass(frozen=True)
class Method:
    """A benchmark row: a patch merged into the base recipe, and where it comes from."""

    patch: dict[str, Any]
    label: str
    cite: str


_ENCODER = {
    "name": "mlp-encoder",
    "hidden": [400, 400, 400, 400],  # mirrors G, as PacGAN's G/D share sizes
    "init_std": PAPER_INIT_STD,
}

METHODS: dict[str, Method] = {
    "gan": Method({}, "GAN", "Goodfellow et al. 2014 (non-saturating loss)"),
    "unrolled": Method({"tricks": [{"name": "unrolled", "k": 5}]}, "Unrolled GAN (k = 5)", "Metz et al. 2017"),
    # PacGAN m: the minibatch holds 100 packs of m samples (batch 100 m), so D makes as many decisions
    # per update as in the GAN row, and the batch is divisible by m (m = 3 included).
    **{
        f"pacgan{m}": Method(
            {"tricks": [{"name": "pacgan", "m": m}], "schedule": {"batch_size": 100 * m}},
            f"PacGAN{m}",
            "Lin et al. 2018",
        )
        for m in (2, 3, 4)
    },
    # 50 kernels of dimension 5: the layer's defaults (gankit.nn.minibatch).
    "minibatch": Method(
        {"discriminator": {"minibatch_discrimination": 50}}, "Minibatch discrimination", "Salimans et al. 2016"
    ),
    "veegan": Method({"family": "veegan", "encoder": _ENCODER}, "VEEGAN", "Srivastava et al. 2017"),
    "bigan": Method(
        {"family": "bigan", "encoder": _ENCODER}, "BiGAN / ALI", "Donahue et al. 2017; Dumoulin et al. 2017"
    ),
    # n_critic = 5 as in the WGAN-GP paper; the budget still counts generator steps.
    "wgan-gp": Method(
        {"objective": {"name": "wasserstein"}, "penalties": [{"name": "wgan-gp"}], "schedule": {"n_critic": 5}},
        "WGAN-GP",
        "Gulrajani et al. 2017",
    ),
    "feature-matching": Method({"tricks": [{"name": "feature-matching"}]}, "Feature matching", "Salimans et al. 2016"),
}

# The CI preset: the paper's architecture, initialisation and optimiser, on the grid, for the rows of
# PacGAN's Table 1 that the grid shares, with 500 generator steps instead of the paper's 400,000 and
# 2 seeds instead of 10, so that it runs in about two minutes on 2 CPU cores. It checks the pipeline
# and that every method has started to spread over the grid; it is far too short to reproduce
# Table 1. Long runs of seed 0 (one process per core, modes / % high quality / KL every 5,000 steps):
#   PacGAN4: 12 / 2 / 1.11 at 20,000, 23 / 10 / 0.37 at 30,000, 25 / 45 / 0.30 at 45,000,
#            25 / 77 / 0.023 at 60,000, 25 / 82 / 0.023 at 80,000 (paper: 24.8 / 93.6 / 0.04);
#   GAN:     17 / 55 / 0.67 at 20,000, 19 / 74 / 0.58 at 60,000 (paper: 17.3 / 94.8 / 0.70).
# So packing does what the paper says, but its D resolves the 25 bumps late: the samples stay a
# diffuse square until about 25,000 steps. lr 3e-4 (with PyTorch's init) was no faster: 12 modes and 1 %
# at 14,000.
QUICK: dict[str, Any] = {
    "datasets": ("grid",),
    "methods": ("gan", "pacgan2", "pacgan4"),
    "seeds": 2,
    "budget": 500,
    "lr": PAPER_LR,
}


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` merged in: dicts recursively, anything else (lists too) replaced."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def base_recipe(
    dataset: str, budget: int = FULL_BUDGET, lr: float = PAPER_LR, seed: int = 0, eval_samples: int = 2500
) -> dict[str, Any]:
    """PacGAN's 2-D architecture and optimiser as a raw recipe dict (before a method's patch)."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown toy dataset {dataset!r}; valid choices: {', '.join(DATASETS)}")
    adam = {"type": "adam", "lr": lr, "betas": [0.8, 0.999]}
    return {
        "name": f"bench-{dataset}",
        "description": "PacGAN 2-D mode-collapse benchmark architecture (Lin et al. 2018, Sec. 5.1)",
        "seed": seed,
        "data": {"name": dataset},
        "generator": {
            "name": "mlp",
            "z_dim": 2,
            "hidden": [400, 400, 400, 400],
            "batch_norm": True,
            "activation": "relu",
            "init_std": PAPER_INIT_STD,
        },
        "discriminator": {"name": "maxout", "hidden": 200, "layers": 3, "pieces": 5, "init_std": PAPER_INIT_STD},
        "objective": {"name": "non-saturating"},
        "optim": {"g": dict(adam), "d": dict(adam)},
        "schedule": {"steps": max(1, budget), "batch_size": 100, "n_critic": 1},
        "eval": {"metrics": [{"name": "toy-mixture", "num_samples": eval_samples}]},
        "log": {"tensorboard": False},
    }


def method_recipe(
    dataset: str, method: str, seed: int = 0, budget: int = FULL_BUDGET, lr: float = PAPER_LR, eval_samples: int = 2500
) -> Recipe:
    """The validated recipe of one benchmark cell; ConfigError when the method's pieces are missing."""
    if method not in METHODS:
        raise ConfigError(f"unknown benchmark method {method!r}; valid choices: {', '.join(METHODS)}")
    raw = deep_merge(base_recipe(dataset, budget, lr, seed, eval_samples), METHODS[method].patch)
    raw["name"] = f"bench-{method}-{dataset}"
    try:
        return validate_recipe(raw)
    except RegistryError as err:
        raise ConfigError(str(err)) from None


# -- running -----------------------------------------------------------------------------------------
@dataclass
class RunResult:
    dataset: str
    method: str
    seed: int
    status: str  # "ok", "skipped" (recipe does not validate: a piece is missing) or "failed" (NaN, ...)
    modes: float = math.nan
    hq_fraction: float = math.nan
    kl: float = math.nan
    seconds: float = 0.0
    steps: int = 0
    error: str = ""
    samples: torch.Tensor | None = field(default=None, repr=False)
    # with eval_every: {"step", "modes", "hq_fraction", "kl"} at every multiple of it, and the last step
    trajectory: list[dict[str, float]] = field(default_factory=list)


def train_one(
    recipe: Recipe, budget: int, on_step: Any = None, eval_every: int = 0
) -> tuple[dict[str, float], torch.Tensor, int, list[dict[str, float]]]:
    """Train ``recipe`` for ``budget`` generator steps in memory (no run directory); returns the
    toy-mixture scores, the evaluation samples, the steps done and the trajectory: with
    ``eval_every`` > 0 the scores at every multiple of it and at the last step, else []. Evaluating
    does not touch the training's random streams, so a trajectory never changes the final scores."""
    from gankit.training.trainer import Trainer

    if eval_every < 0:
        raise ConfigError(f"eval_every must be >= 0 (0: evaluate only at the end), got {eval_every}")
    t = Trainer(recipe, "/nonexistent-bench-run", console=Console(quiet=True))  # never written to
    trajectory: list[dict[str, float]] = []

    def point(scores: dict[str, float]) -> None:
        trajectory.append({"step": t.step, **{k: float(scores[k]) for k in ("modes", "hq_fraction", "kl")}})

    for _ in range(budget):
        t.train_step(want_log=False)
        if on_step is not None:
            on_step()
        if eval_every and t.step % eval_every == 0 and t.step < budget:
            t.check_finite()
            point(t.evaluate())
    t.check_finite()  # raises NonFiniteLoss with the step of the first NaN/Inf
    scores = t.evaluate()
    if eval_every:
        point(scores)
    n = int(recipe.eval.metrics[0].options.get("num_samples", 2500))
    z = torch.randn(n, z_dim_of(t.G), generator=seeded(recipe.seed, SeedPurpose.EVAL_LATENTS))  # as evaluate()
    return scores, t.generate(z), t.step, trajectory


def standard_error(values: list[float]) -> float | None:
    """Standard error of the mean, s / sqrt(n) with the sample standard deviation (n - 1); None for n < 2."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def aggregate(runs: list[RunResult]) -> list[dict[str, Any]]:
    """One row per (dataset, method): mean and standard error over the seeds that finished."""
    rows: list[dict[str, Any]] = []
    keys = list(dict.fromkeys((r.dataset, r.method) for r in runs))
    for dataset, method in keys:
        cell = [r for r in runs if (r.dataset, r.method) == (dataset, method)]
        ok = [r for r in cell if r.status == "ok"]
        row: dict[str, Any] = {
            "dataset": dataset,
            "method": method,
            "label": METHODS[method].label,
            "num_modes": NUM_MODES[dataset],
            "seeds": len(ok),
            "status": "ok" if ok else cell[0].status,
            "error": "" if ok else cell[0].error,
            "published": PUBLISHED.get((dataset, method)),
        }
        for key, get in (
            ("modes", lambda r: float(r.modes)),
            ("hq", lambda r: 100.0 * r.hq_fraction),
            ("kl", lambda r: float(r.kl)),
        ):
            vals = [get(r) for r in ok]
            row[key] = sum(vals) / len(vals) if vals else None
            row[f"{key}_se"] = standard_error(vals)
        row["seconds"] = sum(r.seconds for r in cell)
        row["trajectory"] = mean_trajectory([r.trajectory for r in ok])
        rows.append(row)
    return rows


def mean_trajectory(trajectories: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Per step, the mean over seeds of modes, % high quality (0-100) and KL, with ``seeds`` the number
    of seeds evaluated at that step; [] when no seed has a trajectory."""
    by_step: dict[int, list[dict[str, float]]] = {}
    for traj in trajectories:
        for p in traj:
            by_step.setdefault(int(p["step"]), []).append(p)
    out = []
    for step in sorted(by_step):
        pts = by_step[step]
        out.append(
            {
                "step": step,
                "seeds": len(pts),
                "modes": sum(p["modes"] for p in pts) / len(pts),
                "hq": 100.0 * sum(p["hq_fraction"] for p in pts) / len(pts),
                "kl": sum(p["kl"] for p in pts) / len(pts),
            }
        )
    return out


def _resolve(names: list[str] | tuple[str, ...], valid: Any, what: str) -> list[str]:
    bad = [n for n in names if n not in valid]
    if bad:
        raise ConfigError(f"unknown {what} {', '.join(map(repr, bad))}; valid choices: {', '.join(valid)}")
    return list(names)


def run_toy_bench(
    datasets: list[str] | tuple[str, ...] | None = None,
    methods: list[str] | tuple[str, ...] | None = None,
    seeds: int | None = None,
    budget: int | None = None,
    out_dir: str | Path = "bench-toy",
    eval_samples: int = 2500,
    quick: bool = False,
    progress: bool = True,
    lr: float | None = None,
    console: Console | None = None,
    eval_every: int = 0,
    resume: bool = True,
) -> dict[str, Any]:
    """Train every (dataset, method, seed) for ``budget`` generator steps; write results.json, one
    scatter/density plot per (dataset, method) and index.html to ``out_dir``; print the table.

    ``quick`` takes every unset argument from ``QUICK`` (the CI preset), else from the full
    benchmark (both datasets, every method, ``FULL_SEEDS`` seeds, ``FULL_BUDGET`` steps, lr 1e-4).
    Methods whose recipe does not validate (a piece not implemented yet) are reported as skipped.
    ``eval_every`` > 0 also scores every run at each multiple of that many steps: the runs' and rows'
    ``trajectory`` in results.json and, per dataset, ``plots/trajectory-<dataset>.png``.
    Every finished run is kept in ``out_dir/cells`` (gankit.bench.cells): run again with the same
    settings and the finished runs are loaded, not retrained; ``resume=False`` retrains them all.
    """

    preset: dict[str, Any] = (
        QUICK
        if quick
        else {
            "datasets": DATASETS,
            "methods": tuple(METHODS),
            "seeds": FULL_SEEDS,
            "budget": FULL_BUDGET,
            "lr": PAPER_LR,
        }
    )
    datasets = _resolve(datasets or preset["datasets"], DATASETS, "dataset")
    methods = _resolve(methods or preset["methods"], METHODS, "method")
    seeds = int(seeds if seeds is not None else preset["seeds"])
    budget = int(budget if budget is not None else preset["budget"])
    lr = float(lr if lr is not None else preset["lr"])
    if seeds < 1 or budget < 1:
        raise ConfigError(f"seeds and budget must be >= 1, got {seeds} and {budget}")
    if eval_every < 0:
        raise ConfigError(f"eval_every must be >= 0 (0: evaluate only at the end), got {eval_every}")
    console = console or Console()
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)

    def prepare(cell: tuple[str, str, int]) -> Job:
        dataset, method, seed = cell
        recipe = method_recipe(dataset, method, seed, budget, lr, eval_samples)

        def train(advance: Any) -> tuple[dict[str, Any], torch.Tensor]:
            t0 = time.perf_counter()
            scores, samples, steps, trajectory = train_one(recipe, budget, advance, eval_every)
            return {
                "steps": steps,
                "trajectory": trajectory,
                "seconds": time.perf_counter() - t0,
                "status": "ok",
                "modes": scores["modes"],
                "hq_fraction": scores["hq_fraction"],
                "kl": scores["kl"],
            }, samples

        return Job(f"{dataset}-{method}-seed{seed}", cell_key(recipe, eval_every=eval_every), train)

    store = CellStore(out, enabled=resume)
    cells = [(d, m, s) for d in datasets for m in methods for s in range(seeds)]
    done, skipped = run_cells(
        cells,
        prepare,
        store=store,
        budget=budget,
        label="toy benchmark",
        describe=lambda c: f"{c[0]} {c[1]} seed {c[2]}",
        group=lambda c: c[1],
        record=lambda c: _record(RunResult(c[0], c[1], c[2], "skipped")),
        console=console,
        progress=progress,
    )
    runs: list[RunResult] = []
    for d in done:
        dataset, method, seed = d.cell
        res = RunResult(dataset, method, seed, "skipped")
        for k, v in d.record.items():
            setattr(res, k, v)
        res.samples = d.samples
        runs.append(res)

    rows = aggregate(runs)
    for row in rows:
        first = next(
            (r for r in runs if (r.dataset, r.method) == (row["dataset"], row["method"]) and r.samples is not None),
            None,
        )
        if first is not None and first.samples is not None:
            path = out / "plots" / f"{row['dataset']}-{row['method']}.png"
            save_points_figure(
                first.samples,
                path,
                row["dataset"],
                f"{row['label']} on {row['dataset']} (seed {first.seed}, {budget} steps)",
            )
            row["plot"] = str(path.relative_to(out))
    trajectory_plots: dict[str, str] = {}
    for dataset in datasets:
        curves = [r for r in rows if r["dataset"] == dataset and r["trajectory"]]
        if curves:
            path = save_trajectory_figure(
                curves,
                out / "plots" / f"trajectory-{dataset}.png",
                f"{dataset} ({NUM_MODES[dataset]} modes): mean over seeds",
            )
            trajectory_plots[dataset] = str(path.relative_to(out))
    results = {
        "benchmark": "toy",
        "published_source": PUBLISHED_SOURCE,
        "config": {
            "datasets": datasets,
            "methods": methods,
            "seeds": seeds,
            "budget": budget,
            "lr": lr,
            "eval_samples": eval_samples,
            "eval_every": eval_every,
            "quick": quick,
            "decisions_per_batch": 100,  # PacGAN: 100 packs
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "torch": torch.__version__,
        },
        "rows": rows,
        "runs": [_record(r) for r in runs],
        "skipped": skipped,
        "resumed": store.loaded,
        "trajectory_plots": trajectory_plots,
    }
    (out / "results.json").write_text(json.dumps(json_safe(results), indent=2))
    write_toy_html(results, out / "index.html")
    print_toy_table(results, console)
    print_cell_notes(console, store, skipped)
    console.print(f"wrote {out / 'results.json'}, {out / 'index.html'} and {len(rows)} plots")
    return results


def _record(res: RunResult) -> dict[str, Any]:
    """A run as results.json and the cell store keep it: every field but the samples."""
    return {k: v for k, v in vars(res).items() if k != "samples"}
