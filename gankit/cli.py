"""`gankit train | sample | list | show`: the command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()

KINDS = {
    "recipes": ("gankit.recipes", "RECIPES"),
    "objectives": ("gankit.objectives", "OBJECTIVES"),
    "penalties": ("gankit.penalties", "PENALTIES"),
    "tricks": ("gankit.tricks", "TRICKS"),
    "generators": ("gankit.models", "GENERATORS"),
    "discriminators": ("gankit.models", "DISCRIMINATORS"),
    "datasets": ("gankit.data", "DATASETS"),
    "metrics": ("gankit.metrics", "METRICS"),
    "families": ("gankit.families", "FAMILIES"),
}
ALIASES = {"models": ("generators", "discriminators"), "data": ("datasets",)}


def _registry(kind: str) -> Any:
    import importlib

    module, attr = KINDS[kind]
    return getattr(importlib.import_module(module), attr)


def cmd_list(args: argparse.Namespace) -> int:
    kinds = list(KINDS)
    if args.kind:
        k = args.kind.lower()
        if k in ALIASES:
            kinds = list(ALIASES[k])
        elif k in KINDS or k + "s" in KINDS:
            kinds = [k if k in KINDS else k + "s"]
        else:
            valid = ", ".join(sorted([*KINDS, *ALIASES]))
            console.print(f"[red]error:[/] unknown kind {args.kind!r}; valid kinds: {valid}")
            return 2
    for kind in kinds:
        reg = _registry(kind)
        table = Table(title=kind, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("description")
        for name, desc in reg.describe().items():
            table.add_row(name, desc)
        if not len(reg):
            table.add_row("(none yet)", "")
        console.print(table)
        console.print()
    return 0


def _split_positionals(items: list[str]) -> tuple[str | None, list[str]]:
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, items


def cmd_train(args: argparse.Namespace) -> int:
    from gankit.config import load_recipe
    from gankit.recipes import DEFAULT
    from gankit.train.run import resume_run, start_run

    recipe_name, overrides = _split_positionals(args.items)
    if args.resume:
        if recipe_name is not None:
            console.print("[red]error:[/] with --resume, give only key=value overrides (the run keeps its recipe)")
            return 2
        result = resume_run(args.resume, overrides, force=args.force, console=console)
    else:
        recipe = load_recipe(recipe_name or DEFAULT, overrides)
        console.print(f"[bold]gankit train[/] {recipe.name}: {recipe.description.strip().splitlines()[0] if recipe.description else ''}")
        result = start_run(recipe, out=args.out, console=console)
    _print_summary(result)
    return 0


def _print_summary(result: dict[str, Any]) -> None:
    status = "finished" if result["finished"] else "stopped early (resume with --resume)"
    console.print(f"\n[bold green]{status}[/] at step {result['step']} in {result['seconds']:.1f} s")
    if result.get("eval"):
        table = Table(title="evaluation", title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in result["eval"].items():
            table.add_row(k, f"{v:.4g}")
        console.print(table)
    console.print(f"run directory: {result['run_dir']}")
    console.print(f"samples:       {result['samples']}")
    console.print(f"checkpoint:    {result['checkpoint']}")
    console.print(f"next: gankit sample {result['run_dir']} --num 64 --out samples.png")


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.sampling import write_samples

    res = write_samples(args.source, args.out, num=args.num, seed=args.seed, device=args.device,
                        use_ema=not args.no_ema)
    console.print(f"wrote {res['num']} samples ({res['weights']} weights of {res['checkpoint']}) to {res['out']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from gankit.config import dump_yaml, load_recipe

    recipe_name, overrides = _split_positionals(args.items)
    from gankit.recipes import DEFAULT

    sys.stdout.write(dump_yaml(load_recipe(recipe_name or DEFAULT, overrides)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gankit", description="Train, evaluate and study GANs.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a recipe (default: dcgan-digits)",
                       description="gankit train [RECIPE|FILE.yaml] [key.sub=value ...]")
    t.add_argument("items", nargs="*", help="recipe name or YAML path, then key.sub=value overrides")
    t.add_argument("--out", type=Path, help="run directory (default: runs/<recipe>-<time>)")
    t.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run from its newest checkpoint")
    t.add_argument("--force", action="store_true", help="with --resume: accept recipe changes other than more steps")
    t.set_defaults(fn=cmd_train)

    s = sub.add_parser("sample", help="write samples from a run or checkpoint")
    s.add_argument("source", help="run directory or checkpoints/step-N folder")
    s.add_argument("--num", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", required=True, help="FILE.npz (arrays) or FILE.png (a grid / scatter plot)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    s.set_defaults(fn=cmd_sample)

    ls = sub.add_parser("list", help="list registered pieces: recipes, objectives, penalties, models, ...")
    ls.add_argument("kind", nargs="?", help=f"one of: {', '.join([*KINDS, *ALIASES])}")
    ls.set_defaults(fn=cmd_list)

    sh = sub.add_parser("show", help="print a recipe fully resolved, with overrides applied")
    sh.add_argument("items", nargs="*")
    sh.set_defaults(fn=cmd_show)
    return p


def main(argv: list[str] | None = None) -> int:
    from gankit.config import ConfigError
    from gankit.registry import RegistryError
    from gankit.train.checkpoint import CheckpointError
    from gankit.train.trainer import NonFiniteLoss

    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except (ConfigError, RegistryError, CheckpointError, NonFiniteLoss, FileNotFoundError, ValueError) as err:
        if os.environ.get("GANKIT_DEBUG"):
            raise
        console.print(f"[bold red]error:[/] {err}")
        return 2 if isinstance(err, (ConfigError, RegistryError, ValueError)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
