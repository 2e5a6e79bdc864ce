"""Step time: gankit's training step against a hand-written PyTorch loop of the same step, and the
speed-up of each performance option.

**Overhead.** For each recipe, a plain loop trains the *same* networks (built by the same registry,
with the recipe's spectral norm applied by the same hook), with the recipe's objective, its R1 /
WGAN-GP penalty, n_critic, Adam settings, EMA of G and batch, each written out by hand, drawing real
batches from the same data stream. The two alternate in blocks in one process, and the medians are
compared: overhead = gankit / plain (target <= 1.03), with gankit pinned to the plain loop's settings
(fp32, NCHW, no compile). A third column times gankit's *default* step, ``perf: auto`` (what the
device computes fastest: training/autoperf.py), in the same alternation: speed-up = plain / default.

**Options.** Each performance option a recipe can switch on (``perf.amp``, ``perf.compile``,
``perf.channels_last``, ``optim.*.impl``, ``perf.accumulate``) is timed against the same recipe
without it, alternating, and reported as a speed-up (baseline time / option time).

    python benchmarks/step_time.py                      # overhead table, every recipe
    python benchmarks/step_time.py --options            # the options table too
    python benchmarks/step_time.py --recipes dcgan --options --option-recipes dcgan r3gan stylegan \
        --option-names "amp bf16"                       # only what bf16 autocast buys on this CPU
    python benchmarks/step_time.py --recipes toy dcgan --rounds 3 --block 10 --device cuda
    python benchmarks/step_time.py --recipes sngan-cifar10 stylegan-cifar10 --device cuda   # images/s
    python benchmarks/step_time.py --compare stylegan r3gan "r3gan penalties.0.every=8" --block 16

**Compare.** ``--compare KEY ["KEY override ..."] ...`` times recipes (or one recipe with overrides) at
their default ``perf: auto``, alternating, and reports each against the first: the ratio of step times
and how many steps of it cost the first's whole run (``schedule.steps`` x its step time), the figure a
"same wall clock" comparison of two recipes needs. A ``--block`` that is a multiple of the lazy
penalties' periods (16 for every 4, 8 and 16) puts as many penalty steps in every block. With
``--compare`` the overhead table runs only for the recipes ``--recipes`` names.

MNIST recipes read ``--data-path`` (default: ../shared/data/mnist, the test split); the CIFAR-10 ones
(the papers' networks and batch sizes: a GPU's work) ``--cifar-path``, or else random images of
CIFAR-10's shape, which a step costs the same on.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gankit.recipes.load import load_recipe
from gankit.training.build import build_networks, build_penalties, make_optimizer
from gankit.training.trainer import Trainer

RECIPES = {
    "toy": "gan-grid",
    "dcgan": "dcgan-mnist",
    "sngan": "sngan-mnist",
    "sagan": "sagan-mnist",
    "stylegan": "stylegan-mnist",
    "r3gan": "r3gan-mnist",
    # the papers' CIFAR-10 networks and batch sizes, for a GPU (not in the default list)
    "sngan-cifar10": "sngan-cifar10",
    "stylegan-cifar10": "stylegan-cifar10",
}
DEFAULT_RECIPES = ["toy", "dcgan", "sngan", "sagan", "stylegan"]
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
QUIET = ["log.tensorboard=false", "eval.metrics=[]", "eval.best=null"]


def synthetic_cifar(folder: Path, n: int = 2048) -> Path:
    """Random uint8 images of CIFAR-10's shape (32x32x3, 10 labels): a step costs the same on any pixels,
    and the device machine cannot download the real set."""
    path = folder / "cifar10-shaped.npz"
    if not path.exists():
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        np.savez(path, images=images, labels=rng.integers(0, 10, size=n))
    return path


def recipe_for(key: str, args: argparse.Namespace, extra: list[str] = ()) -> Any:  # type: ignore[assignment]
    name = RECIPES[key]
    data: list[str] = []
    if "mnist" in name:
        data = [f"data.path={args.data_path}", "data.split=test"]
    elif "cifar10" in name:
        data = (
            [f"data.path={args.cifar_path}"]
            if args.cifar_path
            else [f"data={{name: npz, path: {synthetic_cifar(args.scratch)}}}"]
        )
    return load_recipe(name, QUIET + data + [f"device={args.device}", *extra])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the hand-written loop ------------------------------------------------------------------------
D_LOSS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "non-saturating": lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
    "hinge": lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(),
    "wasserstein": lambda r, f: f.mean() - r.mean(),
}
G_LOSS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "non-saturating": lambda f: F.softplus(-f).mean(),
    "hinge": lambda f: -f.mean(),
    "wasserstein": lambda f: -f.mean(),
}


class PlainLoop:
    """The recipe's step written out as one would by hand, on the same networks and data."""

    def __init__(self, recipe: Any, trainer: Trainer) -> None:
        if recipe.objective.name not in D_LOSS:
            raise SystemExit(f"the plain loop has no hand-written {recipe.objective.name!r} loss")
        self.device = trainer.device
        torch.manual_seed(recipe.seed)
        self.G, self.D = build_networks(recipe, trainer.shapes)
        self.r1 = self.gp = None
        for name, pen in build_penalties(recipe):
            if name == "spectral-norm":
                pen.on_build(self.G if pen.target == "G" else self.D)
            elif name == "r1":
                self.r1 = (pen.gamma, pen.every)
            elif name == "wgan-gp":
                self.gp = pen.lam
            else:
                raise SystemExit(f"the plain loop has no hand-written {name!r} penalty")
        self.G.to(self.device)
        self.D.to(self.device)
        self.opt_g = make_optimizer(recipe.optim.g, self.G.parameters())
        self.opt_d = make_optimizer(recipe.optim.d, self.D.parameters())
        self.d_loss, self.g_loss = D_LOSS[recipe.objective.name], G_LOSS[recipe.objective.name]
        self.n_critic, self.batch = recipe.schedule.n_critic, recipe.schedule.batch_size
        self.stream = trainer.source.stream(self.batch, recipe.seed)
        self.ema = None
        if recipe.ema.enabled:
            self.ema = [p.detach().clone() for p in self.G.parameters()]
            self.ema_decay, self.ema_start = recipe.ema.decay, recipe.ema.start
        self.step = 0

    def real(self) -> torch.Tensor:
        return self.stream.next()[0].to(self.device, non_blocking=True)

    def train_step(self) -> None:
        z_dim = self.G.z_dim
        for _ in range(self.n_critic):
            x = self.real()
            with torch.no_grad():
                fake = self.G(torch.randn(len(x), z_dim, device=self.device))
            self.D.requires_grad_(True)
            self.opt_d.zero_grad(set_to_none=True)
            loss = self.d_loss(self.D(x).logits, self.D(fake).logits)
            if self.gp is not None:
                eps = torch.rand(len(x), *([1] * (x.ndim - 1)), device=self.device)
                x_hat = (eps * x + (1 - eps) * fake).requires_grad_(True)
                (g,) = torch.autograd.grad(self.D(x_hat).logits.sum(), x_hat, create_graph=True)
                loss = loss + self.gp * (g.flatten(1).norm(dim=1) - 1).pow(2).mean()
            if self.r1 is not None and self.step % self.r1[1] == 0:
                xr = x.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(self.D(xr).logits.sum(), xr, create_graph=True)
                loss = loss + 0.5 * self.r1[0] * g.flatten(1).pow(2).sum(1).mean() * self.r1[1]
            loss.backward()
            self.opt_d.step()
        self.D.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        self.g_loss(self.D(self.G(torch.randn(self.batch, z_dim, device=self.device))).logits).backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        if self.ema is not None and self.step >= self.ema_start:
            with torch.no_grad():
                torch._foreach_lerp_(self.ema, [p.detach() for p in self.G.parameters()], 1 - self.ema_decay)
        self.step += 1


# -- timing ---------------------------------------------------------------------------------------
def _time_block(step: Callable[[], None], n: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / n


def alternate(*steps: Callable[[], None], rounds: int, block: int, warmup: int, device: torch.device) -> list[float]:
    """Median seconds per step of each of ``steps``, timed in alternating blocks after a warm-up."""
    for step in steps:
        _time_block(step, warmup, device)
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(rounds):
        for t, step in zip(times, steps):
            t.append(_time_block(step, block, device))
    return [statistics.median(t) for t in times]


def gankit_step(trainer: Trainer) -> Callable[[], None]:
    return lambda: trainer.train_step(want_log=False)


def overhead(keys: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        recipe = recipe_for(key, args, PINNED)
        trainer = Trainer(recipe, "/nonexistent")
        plain = PlainLoop(recipe, trainer)
        default = Trainer(recipe_for(key, args), "/nonexistent")
        t_plain, t_ours, t_default = alternate(
            plain.train_step,
            gankit_step(trainer),
            gankit_step(default),
            rounds=args.rounds,
            block=args.block,
            warmup=args.warmup,
            device=trainer.device,
        )
        b = recipe.schedule.batch_size
        rows.append(
            {
                "recipe": recipe.name,
                "batch": b,
                "plain_ms": 1e3 * t_plain,
                "gankit_ms": 1e3 * t_ours,
                "default_ms": 1e3 * t_default,
                "images_per_s": b / t_default,
                "overhead": t_ours / t_plain,
                "default_speedup": t_plain / t_default,
                "default_perf": default.perf.settings(),
            }
        )
        print(
            f"{recipe.name:<16}{b:>6}{1e3 * t_plain:>11.1f}{1e3 * t_ours:>11.1f}{t_ours / t_plain:>10.3f}"
            f"{1e3 * t_default:>12.1f}{t_plain / t_default:>9.2f}x{b / t_default:>8.0f}  {_plan(default)}",
            flush=True,
        )
    return rows


# gankit with the plain loop's settings: the overhead compares the same computation
PINNED = ["perf.amp=none", "perf.channels_last=false", "perf.compile=none"]


def _plan(trainer: Trainer) -> str:
    p = trainer.perf
    return f"amp {p.amp}, {'NHWC' if p.channels_last else 'NCHW'}, compile {p.compile}"


OPTIONS = {  # name -> overrides; compile of D is impossible with a gradient penalty (double backward)
    "amp bf16": ["perf.amp=bf16"],
    "amp fp16": ["perf.amp=fp16"],
    "channels_last": ["perf.channels_last=true"],
    "compile": ["perf.compile=both"],
    "adam foreach": ["optim.g.impl=foreach", "optim.d.impl=foreach"],
    "adam for-loop": ["optim.g.impl=for-loop", "optim.d.impl=for-loop"],
    "adam fused": ["optim.g.impl=fused", "optim.d.impl=fused"],
    "accumulate 2": ["perf.accumulate=2"],
}


def options(keys: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        base = Trainer(recipe_for(key, args, PINNED), "/nonexistent")
        for name, extra in OPTIONS.items():
            if name not in args.option_names:
                continue
            if name == "compile" and any(getattr(p, "double_backward", False) for _, p in base.penalties):
                extra = ["perf.compile=g"]
            try:
                trainer = Trainer(recipe_for(key, args, PINNED + extra), "/nonexistent")
                t_base, t_opt = alternate(
                    gankit_step(base),
                    gankit_step(trainer),
                    rounds=args.rounds,
                    block=args.block,
                    warmup=args.warmup + (20 if "compile" in name else 0),
                    device=base.device,
                )
            except Exception as err:  # noqa: BLE001 - an option this device cannot run is reported, not fatal
                print(f"{base.recipe.name:<16}{name:<16} failed: {type(err).__name__}: {str(err)[:120]}", flush=True)
                rows.append({"recipe": base.recipe.name, "option": name, "error": f"{type(err).__name__}"})
                continue
            label = name + (" (G only)" if extra == ["perf.compile=g"] else "")
            rows.append(
                {
                    "recipe": base.recipe.name,
                    "option": label,
                    "base_ms": 1e3 * t_base,
                    "option_ms": 1e3 * t_opt,
                    "speedup": t_base / t_opt,
                }
            )
            print(
                f"{base.recipe.name:<16}{label:<22}{1e3 * t_base:>10.1f}{1e3 * t_opt:>10.1f}{t_base / t_opt:>9.2f}x",
                flush=True,
            )
    return rows


def compare(specs: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Step times of recipe variants at their default perf, alternating; each against the first."""
    parsed = [shlex.split(spec) for spec in specs]  # quote an override with spaces: "r3gan 'ramps=[...]'"
    for words in parsed:
        if not words or words[0] not in RECIPES:
            raise SystemExit(f"--compare: {' '.join(words)!r} must start with a recipe key ({', '.join(RECIPES)})")
    trainers = [Trainer(recipe_for(words[0], args, words[1:]), "/nonexistent") for words in parsed]
    times = alternate(
        *[gankit_step(t) for t in trainers],
        rounds=args.rounds,
        block=args.block,
        warmup=args.warmup,
        device=trainers[0].device,
    )
    budget = trainers[0].recipe.schedule.steps * times[0]  # seconds of the first's whole run
    rows = []
    for spec, t in zip(specs, times):
        row = {"variant": spec, "ms": 1e3 * t, "ratio": t / times[0], "steps_in_budget": int(budget / t)}
        rows.append(row)
        print(f"{spec:<60}{row['ms']:>10.1f}{row['ratio']:>9.2f}x{row['steps_in_budget']:>9}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--recipes", nargs="*", default=None, choices=list(RECIPES), help="overhead table (default: every recipe)"
    )
    ap.add_argument("--options", action="store_true", help="also time each performance option")
    ap.add_argument("--option-recipes", nargs="+", default=["dcgan", "stylegan"], choices=list(RECIPES))
    ap.add_argument(
        "--option-names",
        nargs="+",
        default=list(OPTIONS),
        choices=list(OPTIONS),
        metavar="OPTION",
        help=f"which options to time (default: all of {', '.join(OPTIONS)})",
    )
    ap.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="VARIANT",
        help='recipe variants to time against the first, each "KEY [override ...]" (e.g. "r3gan seed=1")',
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--block", type=int, default=10, help="steps per timed block")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-path", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cifar-path", type=Path, default=None, help="cifar-10-batches-py (default: CIFAR-shaped noise)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    if args.recipes is None:  # --compare alone is a question about variants, not about overhead
        args.recipes = [] if args.compare else DEFAULT_RECIPES
    with tempfile.TemporaryDirectory(prefix="gankit-step-time-") as scratch:
        args.scratch = Path(scratch)
        run(args)


def run(args: argparse.Namespace) -> None:
    dev = (
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    args.device = dev
    where = torch.cuda.get_device_name(0) if dev.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {where}; median of {args.rounds} alternating blocks of {args.block} steps")
    if args.recipes:
        print(
            f"{'recipe':<16}{'batch':>6}{'plain ms':>11}{'gankit ms':>11}{'overhead':>10}{'default ms':>12}"
            f"{'speedup':>10}{'img/s':>8}  default perf"
        )
    result: dict[str, Any] = {"device": where, "torch": torch.__version__, "overhead": overhead(args.recipes, args)}
    if args.compare:
        print(f"\n{'variant':<60}{'ms':>10}{'ratio':>10}{'steps':>9}  (steps: as long as the first's run)")
        result["compare"] = compare(args.compare, args)
    if args.options:
        print(f"\n{'recipe':<16}{'option':<22}{'base ms':>10}{'opt ms':>10}{'speedup':>10}")
        result["options"] = options(args.option_recipes, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
