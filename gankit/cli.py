"""`gankit train | sample | encode | eval | fetch | list | show | dirac | identities | bench`: the command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
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
    "encoders": ("gankit.models", "ENCODERS"),
    "datasets": ("gankit.data", "DATASETS"),
    "metrics": ("gankit.metrics", "METRICS"),
    "features": ("gankit.metrics", "FEATURES"),
    "families": ("gankit.families", "FAMILIES"),
}
ALIASES = {"models": ("generators", "discriminators", "encoders"), "data": ("datasets",)}


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
    from gankit.train import distributed

    recipe_name, overrides = _split_positionals(args.items)
    if not distributed.from_environment().main:
        console.quiet = True  # under torchrun rank 0 speaks for all
    try:
        return _train_command(args, recipe_name, overrides)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _train_command(args: argparse.Namespace, recipe_name: str | None, overrides: list[str]) -> int:
    from gankit.config import load_recipe
    from gankit.recipes import DEFAULT
    from gankit.train.run import resume_run, start_run

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
    if result.get("stopped_by"):  # 128 + signal number, as a shell reports a signalled job
        return 128 + int(getattr(signal, result["stopped_by"], signal.SIGTERM))
    return 0


def _print_summary(result: dict[str, Any]) -> None:
    status = "finished" if result["finished"] else "stopped early (resume with --resume)"
    if result.get("stopped_by"):
        status = f"stopped by {result['stopped_by']} with a checkpoint (continue with: gankit train --resume {result['run_dir']})"
    console.print(f"\n[bold green]{status}[/] at step {result['step']} in {result['seconds']:.1f} s")
    if result.get("eval"):
        _print_scores(f"evaluation at step {result['step']}", result["eval"], result.get("protocol", {}))
    console.print(f"run directory: {result['run_dir']}")
    console.print(f"samples:       {result['samples']}")
    console.print(f"checkpoint:    {result['checkpoint']}")
    if result.get("report"):
        console.print(f"report:        {result['report']}")
    for w in result.get("health", []):
        console.print(f"[yellow]health (step {w.step}):[/] {w.kind.replace('_', ' ')}")
    if result.get("grid_legend"):
        console.print(f"the samples grid shows {result['grid_legend']}")
        console.print(f"next: gankit translate {result['run_dir']} --input my-images/ --out translated/")
    else:
        console.print(f"next: gankit sample {result['run_dir']} --num 64 --out samples.png")


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.sampling import write_samples

    res = write_samples(args.source, args.out, num=args.num, seed=args.seed, device=args.device,
                        use_ema=not args.no_ema, truncation=args.truncation, psi=args.psi)
    console.print(f"wrote {res['num']} samples ({res['weights']} weights of {res['checkpoint']}) to {res['out']}")
    return 0


def cmd_latent(args: argparse.Namespace) -> int:
    from gankit.sampling import write_class_morph, write_interpolations, write_style_mixing

    if args.mixing is not None:
        res = write_style_mixing(args.source, args.out, args.mixing, rows=args.rows, cols=args.steps, seed=args.seed,
                                 device=args.device, use_ema=not args.no_ema)
    elif args.morph is not None:
        try:
            a, b = (int(v) for v in args.morph.split(","))
        except ValueError:
            raise ValueError(f"--morph takes two class ids A,B (e.g. --morph 1,7), got {args.morph!r}") from None
        res = write_class_morph(args.source, args.out, a, b, rows=args.rows, steps=args.steps, seed=args.seed,
                                device=args.device, use_ema=not args.no_ema)
    else:
        res = write_interpolations(args.source, args.out, rows=args.rows, steps=args.steps, mode=args.mode,
                                   seed=args.seed, device=args.device, use_ema=not args.no_ema)
    console.print(f"wrote {res['rows']} {res['mode']} interpolations of {res['steps']} steps to {res['out']}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from gankit.translating import translate_images

    res = translate_images(args.source, args.input, args.out, direction=args.direction, device=args.device,
                           use_ema=not args.no_ema)
    console.print(f"translated {res['num']} images ({res['size']}, {res['weights']} weights of {res['checkpoint']}) "
                  f"into {res['out']}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from gankit.encoding import encode_data

    res = encode_data(args.source, args.out, num=args.num, data=args.data, seed=args.seed, device=args.device)
    what = " with labels" if res["labels"] else ""
    console.print(f"wrote {res['num']} latents (z_dim {res['z_dim']}){what} from {res['checkpoint']} to {res['out']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from gankit.evaluation import build_metric_list, evaluate_files, evaluate_run

    if (args.real is None) != (args.fake is None):
        console.print("[red]error:[/] give both --real PATH and --fake PATH, or a RUN_DIR")
        return 2
    if (args.source is None) == (args.real is None):
        console.print("[red]error:[/] give a RUN_DIR (or checkpoint) to evaluate, or --real PATH --fake PATH")
        return 2
    options: dict[str, Any] = {}
    if args.inception_weights:
        if args.features != "inception":
            console.print("[red]error:[/] --inception-weights only applies with --features inception")
            return 2
        options["weights"] = str(args.inception_weights)
    metrics = build_metric_list(args.metrics, args.features, args.num, args.num_real, options)
    if args.source is not None:
        record = evaluate_run(args.source, metrics, seed=args.seed, device=args.device, use_ema=not args.no_ema)
        title = f"{record['checkpoint']} ({record['weights']} weights)"
    else:
        record = evaluate_files(args.real, args.fake, metrics, seed=args.seed, device=args.device)
        title = f"{args.fake} vs {args.real}"
    _print_scores(title, record["results"], record["protocol"])
    if args.out:
        from gankit.evaluation import _write_json

        _write_json(Path(args.out), record, append=False)
        console.print(f"wrote {args.out}")
    return 0


def _print_scores(title: str, results: dict[str, float], protocols: dict[str, dict[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("metric", "score", "value", "protocol"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for metric, proto in protocols.items():
        names = proto.get("scores") or _scores_of(metric)  # family scores name their own
        keys = [k for k in results if k.split("@")[0] in names] or list(results)
        desc = ", ".join(
            f"{k}={v}" for k, v in proto.items()
            if k in ("extractor", "num_fake", "num_real", "subset_size", "k", "splits", "resize", "num_train",
                     "num_test", "labelled")
        )
        sha = proto.get("weights_sha256")
        if sha:
            desc += f", weights {sha[:12]}"
        ref = proto.get("reference")
        if ref:
            desc += f", ref {ref.get('dataset', '?')}" + (f" {ref['fingerprint'][:8]}" if "fingerprint" in ref else "")
        if proto.get("baseline"):
            desc += f", baseline: {proto['baseline']}"
        for i, k in enumerate(keys):
            table.add_row(metric if i == 0 else "", k, f"{results[k]:.6g}", desc if i == 0 else "")
    console.print(table)


def _scores_of(metric: str) -> tuple[str, ...]:
    from gankit.metrics import METRICS

    if metric not in METRICS.names():  # a family's own score (semi-supervised test error, linear probe)
        return ()
    return tuple(getattr(METRICS.get(metric), "scores", ()))


def cmd_fetch(args: argparse.Namespace) -> int:
    from gankit.metrics.inception import download_weights, sha256_of

    path = download_weights(args.dest)
    console.print(f"FID Inception weights at {path} (sha256 {sha256_of(path)})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from gankit.config import dump_yaml, load_recipe

    recipe_name, overrides = _split_positionals(args.items)
    from gankit.recipes import DEFAULT

    sys.stdout.write(dump_yaml(load_recipe(recipe_name or DEFAULT, overrides)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from gankit.viz.report import write_report

    path = write_report(args.run_dir, args.out)
    console.print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained)")
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
    s.add_argument("--truncation", type=float, default=float("inf"),
                   help="truncation trick: redraw latent entries with |z_i| above this (BigGAN; default: none)")
    s.add_argument("--psi", type=float, default=1.0,
                   help="StyleGAN truncation in w space: w_avg + psi (w - w_avg) (default 1: none)")
    s.set_defaults(fn=cmd_sample)

    la = sub.add_parser("latent", help="latent interpolation grid (lerp or slerp), class morphing or style mixing of a run's generator")
    la.add_argument("source", help="run directory or checkpoints/step-N folder")
    la.add_argument("--out", required=True, help="FILE.png")
    la.add_argument("--mode", choices=["slerp", "lerp"], default="slerp")
    la.add_argument("--morph", metavar="A,B", help="category morphing (BigGAN): walk the class embedding from A to B")
    la.add_argument("--mixing", type=int, metavar="LAYER",
                    help="StyleGAN style mixing grid: styles below LAYER from the row source, the rest from the column "
                         "source (--rows rows, --steps columns)")
    la.add_argument("--rows", type=int, default=8)
    la.add_argument("--steps", type=int, default=10)
    la.add_argument("--seed", type=int, default=0)
    la.add_argument("--device", default="auto")
    la.add_argument("--no-ema", action="store_true")
    la.set_defaults(fn=cmd_latent)

    en = sub.add_parser("encode", help="map data to latents with a BiGAN / VEEGAN run's encoder")
    en.add_argument("source", help="run directory or checkpoints/step-N folder (family bigan or veegan)")
    en.add_argument("--out", required=True, help="FILE.npz: z (N, z_dim) and labels when the data has them")
    en.add_argument("--num", type=int, default=10000, help="samples to encode (default 10000)")
    en.add_argument("--data", help="an .npz or image folder to encode instead of the run's own data")
    en.add_argument("--seed", type=int, default=0)
    en.add_argument("--device", default="auto")
    en.set_defaults(fn=cmd_encode)

    e = sub.add_parser("eval", help="score a run's generator, or --fake images against --real ones",
                       description="gankit eval RUN_DIR [--metrics fid,kid,is,pr,dc] | gankit eval --real PATH --fake PATH")
    e.add_argument("source", nargs="?", help="run directory or checkpoints/step-N folder")
    e.add_argument("--real", type=Path, help="reference images: a folder or an .npz (uint8 'images')")
    e.add_argument("--fake", type=Path, help="images to score: a folder or an .npz (as `gankit sample` writes)")
    e.add_argument("--metrics", default="fid,kid,is,pr,dc",
                   help="comma-separated: fid, kid, is, pr, dc, mmd, swd, fid-inf, classes, agree, toy-mixture")
    e.add_argument("--num", type=int, default=10000, help="generated samples (default 10000, the standard)")
    e.add_argument("--num-real", type=int, help="real samples (default: as --num)")
    e.add_argument("--features", default="inception",
                   help="inception (papers' numbers; needs the weights), classifier (offline, labelled data), "
                        "pixels, random-projection")
    e.add_argument("--inception-weights", type=Path, help="pt_inception-2015-12-05-6726825d.pth (or set "
                   "GANKIT_INCEPTION_WEIGHTS); `gankit fetch inception` downloads it")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto")
    e.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    e.add_argument("--out", type=Path, help="also write the scores and their protocol to this JSON file")
    e.set_defaults(fn=cmd_eval)

    t = sub.add_parser("translate", help="apply a trained image-to-image run (pix2pix, srgan, cyclegan, inpainting, "
                       "autoencoder) to your images")
    t.add_argument("source", help="run directory or checkpoint folder")
    t.add_argument("--input", required=True, type=Path, help="an image or a folder of images")
    t.add_argument("--out", required=True, type=Path, help="folder for the outputs (PNG, the inputs' names)")
    t.add_argument("--direction", default="ab", help="cyclegan: ab (A -> B, default) or ba (B -> A)")
    t.add_argument("--device", default="auto")
    t.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    t.set_defaults(fn=cmd_translate)

    rp = sub.add_parser("report", help="(re)write a run's self-contained report.html: curves, samples over time, "
                        "diagnostics, recipe, environment")
    rp.add_argument("run_dir", type=Path)
    rp.add_argument("--out", type=Path, default=None, help="where to write it (default: RUN_DIR/report.html)")
    rp.set_defaults(fn=cmd_report)

    f = sub.add_parser("fetch", help="download what gankit never downloads by itself (the FID Inception weights)")
    f.add_argument("what", choices=["inception"])
    f.add_argument("--dest", type=Path, help="folder (default: the torch hub checkpoints folder)")
    f.set_defaults(fn=cmd_fetch)

    ls = sub.add_parser("list", help="list registered pieces: recipes, objectives, penalties, models, ...")
    ls.add_argument("kind", nargs="?", help=f"one of: {', '.join([*KINDS, *ALIASES])}")
    ls.set_defaults(fn=cmd_list)

    sh = sub.add_parser("show", help="print a recipe fully resolved, with overrides applied")
    sh.add_argument("items", nargs="*")
    sh.set_defaults(fn=cmd_show)

    from gankit.dynamics.cli import add_commands as add_dynamics

    add_dynamics(sub)
    from gankit.bench import add_commands as add_bench

    add_bench(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from gankit.config import ConfigError
    from gankit.registry import RegistryError
    from gankit.train.checkpoint import CheckpointError
    from gankit.train.trainer import NonFiniteLoss

    args = build_parser().parse_args(argv)
    # Warnings (skipped unreadable files, a missing VGG file) as one readable line, not a source dump.
    warnings.showwarning = lambda message, *_a, **_k: console.print(f"[yellow]warning:[/] {message}")
    try:
        return int(args.fn(args))
    except (ConfigError, RegistryError, CheckpointError, NonFiniteLoss, FileNotFoundError, ValueError) as err:
        if os.environ.get("GANKIT_DEBUG"):
            raise
        console.print(f"[bold red]error:[/] {err}")
        return 2 if isinstance(err, (ConfigError, RegistryError, ValueError)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
