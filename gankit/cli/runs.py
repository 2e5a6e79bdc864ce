"""`gankit train | sample | latent | translate | encode | report`: the commands that make and read runs."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from rich.markup import escape

from gankit.cli.catalogue import _split_positionals
from gankit.cli.console import console
from gankit.cli.scores import _print_scores


def cmd_train(args: argparse.Namespace) -> int:
    from gankit.training import distributed

    recipe_name, overrides = _split_positionals(args.items)
    if not distributed.from_environment().main:
        console.quiet = True  # under torchrun rank 0 speaks for all
    with distributed.closing_group():
        return _train_command(args, recipe_name, overrides)


def _train_command(args: argparse.Namespace, recipe_name: str | None, overrides: list[str]) -> int:
    from gankit.recipes import DEFAULT
    from gankit.recipes.load import load_recipe
    from gankit.training.run import resume_run, start_run

    if args.resume:
        if recipe_name is not None:
            raise ValueError("with --resume, give only key=value overrides (the run keeps its recipe)")
        if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
            src, dst = args.resume, args.out
            raise ValueError(
                f"--resume continues {src} in place; it cannot write to --out {dst}. To "
                f"branch the run, copy it and resume the copy: cp -r {src} {dst} && gankit train --resume {dst}"
            )
        result = resume_run(args.resume, overrides, force=args.force, console=console)
    else:
        recipe = load_recipe(recipe_name or DEFAULT, overrides)
        first = recipe.description.strip().splitlines()[0] if recipe.description else ""
        console.print(f"[bold]gankit train[/] {escape(recipe.name)}: {escape(first)}")
        result = start_run(recipe, out=args.out, console=console)
    _print_summary(result)
    if result.get("stopped_by"):  # 128 + signal number, as a shell reports a signalled job
        return 128 + int(getattr(signal, result["stopped_by"], signal.SIGTERM))
    return 1 if result.get("eval_error") else 0  # trained and saved, but the asked-for scores are missing


def _print_summary(result: dict[str, Any]) -> None:
    status = "finished" if result["finished"] else "stopped early (resume with --resume)"
    if result.get("stopped_by"):
        status = (
            f"stopped by {result['stopped_by']} with a checkpoint "
            f"(continue with: gankit train --resume {result['run_dir']})"
        )
    console.print(f"\n[bold green]{escape(status)}[/] at step {result['step']} in {result['seconds']:.1f} s")
    if result.get("eval"):
        _print_scores(f"evaluation at step {result['step']}", result["eval"], result.get("protocol", {}))
    # Paths and texts escaped: rich would read "[...]" in them as markup and drop it.
    console.print(f"run directory: {escape(str(result['run_dir']))}")
    console.print(f"samples:       {escape(str(result['samples']))}")
    console.print(f"checkpoint:    {escape(str(result['checkpoint']))}")
    if result.get("report"):
        console.print(f"report:        {escape(str(result['report']))}")
    if result.get("eval_error"):
        console.print(
            f"[red]evaluation failed[/] (the weights and samples above are saved): "
            f"{escape(result['eval_error'])}\n"
            f"score them with: gankit eval {escape(str(result['run_dir']))} --metrics ..."
        )
    for w in result.get("health", []):
        console.print(f"[yellow]health (step {w.step}):[/] {w.kind.replace('_', ' ')}")
    if result.get("grid_legend"):
        console.print(f"the samples grid shows {escape(str(result['grid_legend']))}")
        console.print(f"next: gankit translate {escape(str(result['run_dir']))} --input my-images/ --out translated/")
    else:
        console.print(f"next: gankit sample {escape(str(result['run_dir']))} --num 64 --out samples.png")


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.sampling import write_samples

    res = write_samples(
        args.source,
        args.out,
        num=args.num,
        seed=args.seed,
        device=args.device,
        use_ema=not args.no_ema,
        truncation=args.truncation,
        psi=args.psi,
    )
    console.print(
        f"wrote {res['num']} samples ({res['weights']} weights of {escape(str(res['checkpoint']))}) "
        f"to {escape(str(res['out']))}"
    )
    return 0


def cmd_latent(args: argparse.Namespace) -> int:
    from gankit.sampling import write_class_morph, write_interpolations, write_style_mixing

    if args.mixing is not None:
        res = write_style_mixing(
            args.source,
            args.out,
            args.mixing,
            rows=args.rows,
            cols=args.steps,
            seed=args.seed,
            device=args.device,
            use_ema=not args.no_ema,
        )
    elif args.morph is not None:
        try:
            a, b = (int(v) for v in args.morph.split(","))
        except ValueError:
            raise ValueError(f"--morph takes two class ids A,B (e.g. --morph 1,7), got {args.morph!r}") from None
        res = write_class_morph(
            args.source,
            args.out,
            a,
            b,
            rows=args.rows,
            steps=args.steps,
            seed=args.seed,
            device=args.device,
            use_ema=not args.no_ema,
        )
    else:
        res = write_interpolations(
            args.source,
            args.out,
            rows=args.rows,
            steps=args.steps,
            mode=args.mode,
            seed=args.seed,
            device=args.device,
            use_ema=not args.no_ema,
        )
    console.print(
        f"wrote {res['rows']} {res['mode']} interpolations of {res['steps']} steps to {escape(str(res['out']))}"
    )
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from gankit.translating import translate_images

    res = translate_images(
        args.source, args.input, args.out, direction=args.direction, device=args.device, use_ema=not args.no_ema
    )
    console.print(
        f"translated {res['num']} images ({res['size']}, {res['weights']} weights of "
        f"{escape(str(res['checkpoint']))}) into {escape(str(res['out']))}"
    )
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from gankit.encoding import encode_data

    res = encode_data(args.source, args.out, num=args.num, data=args.data, seed=args.seed, device=args.device)
    what = " with labels" if res["labels"] else ""
    console.print(
        f"wrote {res['num']} latents (z_dim {res['z_dim']}){what} from {escape(str(res['checkpoint']))} "
        f"to {escape(str(res['out']))}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from gankit.viz.report import write_curves, write_report

    if args.curves:
        if args.out is None:
            raise ValueError("--curves needs --out FILE.png")
        keys = [k.strip() for k in args.curves.split(",") if k.strip()]
        console.print(f"curves: {escape(str(write_curves(args.run_dir, keys, args.out)))}")
        return 0
    path = write_report(args.run_dir, args.out)
    console.print(f"report: {escape(str(path))} ({path.stat().st_size / 1e6:.1f} MB, self-contained)")
    return 0
