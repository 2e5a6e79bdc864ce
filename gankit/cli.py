"""`gankit train | sample | encode | eval | fetch | list | show | dirac | identities | bench`: the command line."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

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
            console.print(f"[red]error:[/] unknown kind {escape(repr(args.kind))}; valid kinds: {valid}")
            return 2
    for kind in kinds:
        docs = _registry(kind).describe(long=True)
        if args.long:
            # Every word of every docstring, wrapped to the terminal; escaped, since rich would take
            # "[shared(y), z_i]" (BigGAN) or "[.gz]" for markup and drop it.
            table = Table(title=kind, title_justify="left", show_header=False, box=None, pad_edge=False)
            table.add_column("name", style="bold cyan", no_wrap=True)
            table.add_column("description", overflow="fold")
            for i, (name, doc) in enumerate(docs.items()):
                if i:
                    table.add_row("", "")  # a blank line between multi-line entries
                table.add_row(escape(name), escape(_reflow(doc)))
            if not docs:
                table.add_row("(none yet)", "")
            console.print(table)
        else:
            # One line per name, cut at the terminal's width: a Table would shrink the name column too.
            console.print(Text(kind, style="italic"))
            width = max(map(len, docs), default=0)
            for name, doc in docs.items():
                line = Text.assemble((name.ljust(width), "bold cyan"), "  ", _first_sentence(doc))  # Text: no markup
                line.truncate(console.width, overflow="ellipsis")
                console.print(line, no_wrap=True, overflow="ellipsis")
            if not docs:
                console.print("(none yet)")
        console.print()
    return 0


# Words whose full stop does not end a sentence ("Radford et al. 2016", "e.g. The ...").
_ABBREVIATIONS = frozenset({"al", "e.g", "i.e", "etc", "cf", "vs", "eq", "eqs", "sec", "fig", "app", "resp", "approx"})


def _first_sentence(text: str) -> str:
    """The first sentence of the first paragraph, on one line (docstrings wrap mid-sentence)."""
    para = " ".join(text.strip().split("\n\n", 1)[0].split())
    for m in re.finditer(r"\.\s+(?=[A-Z])", para):
        before = para[: m.start()].split()
        word = before[-1].lstrip("(").lower() if before else ""
        if word in _ABBREVIATIONS or len(word) <= 1:  # an abbreviation or an initial ("J. Smith")
            continue
        return para[: m.start() + 1]
    return para


def _reflow(text: str) -> str:
    """Docstring paragraphs joined into lines for the table to wrap at the terminal's width; breaks
    before bullets and indented lines (equations, lists) are kept, as they carry meaning."""
    out: list[str] = []
    for line in text.strip().splitlines():
        s = line.strip()
        if out and out[-1] and s and not line[:1].isspace() and not s.startswith(("- ", "* ")):
            out[-1] += " " + s
        else:
            out.append(line.rstrip())
    return "\n".join(out)


def _split_positionals(items: list[str]) -> tuple[str | None, list[str]]:
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, items


def cmd_train(args: argparse.Namespace) -> int:
    from gankit.training import distributed

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
    from gankit.recipes import DEFAULT
    from gankit.recipes.load import load_recipe
    from gankit.training.run import resume_run, start_run

    if args.resume:
        if recipe_name is not None:
            console.print("[red]error:[/] with --resume, give only key=value overrides (the run keeps its recipe)")
            return 2
        if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
            src, dst = escape(str(args.resume)), escape(str(args.out))
            console.print(
                f"[red]error:[/] --resume continues {src} in place; it cannot write to --out {dst}. To "
                f"branch the run, copy it and resume the copy: cp -r {src} {dst} && gankit train --resume {dst}"
            )
            return 2
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


def cmd_eval(args: argparse.Namespace) -> int:
    from gankit.evaluation import RUN_NUM, build_metric_list, evaluate_files, evaluate_run, load_pair, metric_names
    from gankit.metrics import FEATURES

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
    for flag, value in (("--num", args.num), ("--num-real", args.num_real)):
        if value is not None and value < 2:
            raise ValueError(f"{flag} must be at least 2 (every metric compares sets of samples), got {value}")
    if not 0 <= args.max_unreadable <= 1:
        raise ValueError(f"--max-unreadable is a fraction of a folder's files, 0..1; got {args.max_unreadable}")
    metric_names(args.metrics)  # unknown names and extractors fail before any file is read
    FEATURES.entry(args.features)
    if args.source is not None:
        metrics = build_metric_list(args.metrics, args.features, args.num or RUN_NUM, args.num_real, options)
        record = evaluate_run(args.source, metrics, seed=args.seed, device=args.device, use_ema=not args.no_ema)
        title = f"{record['checkpoint']} ({record['weights']} weights)"
    else:
        # Counts default to what the files hold; the Evaluator scores what exists and records it.
        real_src, fake_src = load_pair(args.real, args.fake, max_unreadable=args.max_unreadable)
        for flag, src in (("--real", real_src), ("--fake", fake_src)):
            if len(src) < 2:
                raise ValueError(f"{flag} holds {len(src)} image; every metric compares sets of at least 2")
        num = args.num if args.num is not None else len(fake_src)
        num_real = args.num_real if args.num_real is not None else (len(real_src) if args.num is None else None)
        metrics = build_metric_list(args.metrics, args.features, num, num_real, options)
        record = evaluate_files(
            args.real, args.fake, metrics, seed=args.seed, device=args.device, loaded=(real_src, fake_src)
        )
        title = f"{args.fake} vs {args.real}"
    _print_scores(title, record["results"], record["protocol"])
    if args.out:
        from gankit.evaluation import _write_json

        _write_json(Path(args.out), record, append=False)
        console.print(f"wrote {args.out}")
    return 0


def _print_scores(title: str, results: dict[str, float], protocols: dict[str, dict[str, Any]]) -> None:
    table = Table(title=escape(title), title_justify="left")  # cells escaped too: paths, dataset names
    for col in ("metric", "score", "value", "protocol"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for metric, proto in protocols.items():
        names = proto.get("scores") or _scores_of(metric)  # family scores name their own
        keys = [k for k in results if k.split("@")[0] in names] or list(results)
        desc = ", ".join(
            f"{k}={v}"
            for k, v in proto.items()
            if k
            in (
                "extractor",
                "num_fake",
                "num_real",
                "subset_size",
                "k",
                "splits",
                "resize",
                "num_train",
                "num_test",
                "labelled",
            )
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
            table.add_row(
                escape(metric) if i == 0 else "", escape(k), f"{results[k]:.6g}", escape(desc) if i == 0 else ""
            )
    console.print(table)


def _scores_of(metric: str) -> tuple[str, ...]:
    from gankit.metrics import METRICS

    if metric not in METRICS.names():  # a family's own score (semi-supervised test error, linear probe)
        return ()
    return tuple(getattr(METRICS.get(metric), "scores", ()))


def cmd_fetch(args: argparse.Namespace) -> int:
    from gankit.metrics.inception import download_weights, sha256_of

    path = download_weights(args.dest)
    console.print(f"FID Inception weights at {escape(str(path))} (sha256 {sha256_of(path)})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from gankit.recipes import DEFAULT
    from gankit.recipes.load import load_recipe

    recipe_name, overrides = _split_positionals(args.items)
    sys.stdout.write(_show_yaml(load_recipe(recipe_name or DEFAULT, overrides)))
    return 0


def _yaml_plain(value: Any) -> bool:
    """Whether a default can be written as YAML that loads back equal (numbers, strings, lists, ...)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(map(_yaml_plain, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) and _yaml_plain(v) for k, v in value.items())
    return False


def _with_defaults(recipe: Any) -> tuple[dict[str, Any], dict[tuple[str | int, ...], str]]:
    """``recipe`` as a plain dict whose components (objective, penalties, generator, ...) carry every
    option of their registered factory: the recipe's value where it gives one, else the signature's
    default. Also returns notes, option path -> why it is set (a default, or the family's setting),
    for the comments of `gankit show`."""
    import inspect

    from gankit.recipes.load import registries, validate_recipe
    from gankit.training.build import family_of

    raw = recipe.model_dump(mode="json")
    notes: dict[tuple[str | int, ...], str] = {}
    # What the family imposes on D at build time (AC-GAN's class head) beats D's own default; showing
    # the default instead would make the printed recipe contradict its family.
    imposed = dict(family_of(recipe).d_options)
    for field, (reg, is_list) in registries().items():
        *parents, key = field.split(".")
        holder = raw
        for p in parents:
            holder = holder[p]
        if holder[key] is None:  # an optional component left out (encoder)
            continue
        comps = holder[key] if is_list else [holder[key]]
        for i, comp in enumerate(comps):
            where: tuple[str | int, ...] = (*parents, key, *((i,) if is_list else ()))
            merged: dict[str, Any] = {"name": comp["name"]}
            for opt, param in reg.options(comp["name"]).items():  # signature order
                if opt in comp:
                    merged[opt] = comp[opt]
                elif field == "discriminator" and opt in imposed:
                    merged[opt] = imposed[opt]
                    notes[(*where, opt)] = f"set by family {recipe.family.name}"
                elif param.default is not inspect.Parameter.empty and _yaml_plain(param.default):
                    # (a default YAML cannot hold is left out: the factory still applies it)
                    merged[opt] = list(param.default) if isinstance(param.default, tuple) else param.default
                    notes[(*where, opt)] = "default"
            merged.update((k, v) for k, v in comp.items() if k not in merged)  # data.holdout & co.
            comps[i] = merged
        if not is_list:
            holder[key] = comps[0]
    # Validated again, so values read as training reads them (a default 10 for a float option: 10.0)
    # and `gankit show`'s output loads back to itself.
    return validate_recipe(raw).model_dump(mode="json"), notes


_NOTE_KEY = re.compile(r"^(?P<lead>\s*(?:- )?)__gankit_note(?P<n>\d+)__(?P<key>\w+):(?P<rest>.*)$")


def _show_yaml(recipe: Any) -> str:
    """The recipe fully resolved as YAML, each component's options included with the defaults marked
    ``# default``; valid input for `gankit train FILE.yaml`, which reads it back to the same recipe."""
    import yaml

    resolved, notes = _with_defaults(recipe)
    plain = yaml.safe_dump(resolved, sort_keys=False)
    # PyYAML writes no comments: rename each noted key to a placeholder, dump, then turn the
    # placeholders back into the key plus a comment.
    texts = list(notes.values())
    for n, path in enumerate(notes):
        holder: Any = resolved
        for p in path[:-1]:
            holder = holder[p]
        renamed = {(f"__gankit_note{n}__{k}" if k == path[-1] else k): v for k, v in holder.items()}
        holder.clear()
        holder.update(renamed)
    lines = yaml.safe_dump(resolved, sort_keys=False).splitlines()
    out = list(lines)
    for i, line in enumerate(lines):
        m = _NOTE_KEY.match(line)
        if not m:
            continue
        out[i] = f"{m['lead']}{m['key']}:{m['rest']}"
        last = i  # a block value (a list) starts below the key: the comment goes on the key's line
        if m["rest"].strip():  # a scalar, maybe wrapped onto deeper-indented lines: comment after its end
            depth = len(m["lead"])
            while last + 1 < len(lines) and len(lines[last + 1]) - len(lines[last + 1].lstrip()) > depth:
                last += 1
        out[last] += f"  # {texts[int(m['n'])]}"
    text = "\n".join(out) + "\n"
    return text if yaml.safe_load(text) == yaml.safe_load(plain) else plain  # never print what reads back wrong


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


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose sub-commands with a many-item positional (`train RECIPE key=value ...`,
    `show ...`) parse it intermixed with their options: plain argparse ends a ``nargs="*"`` positional
    at the first option, so `gankit train gan-grid --out D schedule.steps=5` failed on the last item."""

    _intermixing = False  # set while parse_known_intermixed_args calls back into parse_known_args

    # (namespace, extras): the Namespace, or the caller's own ``namespace`` filled in (argparse's overloads)
    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[Any, list[str]]:
        many = any(a.nargs in (argparse.ZERO_OR_MORE, argparse.ONE_OR_MORE) for a in self._get_positional_actions())
        if not many or self._intermixing:  # the top level (sub-parsers can't intermix) and the other commands
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def build_parser() -> argparse.ArgumentParser:
    from gankit import __version__

    p = _Parser(prog="gankit", description="Train, evaluate and study GANs.")
    p.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)  # sub-parsers are _Parser too (argparse's parser_class)

    t = sub.add_parser(
        "train",
        help="train a recipe (default: dcgan-digits)",
        description="gankit train [RECIPE|FILE.yaml] [key.sub=value ...]",
    )
    t.add_argument("items", nargs="*", help="recipe name or YAML path, then key.sub=value overrides")
    t.add_argument("--out", type=Path, help="run directory (default: runs/<recipe>-<time>)")
    t.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run from its newest checkpoint")
    t.add_argument(
        "--force",
        action="store_true",
        help="with --resume: accept recipe changes other than more steps (recorded in "
        "config_history.json), or a checkpoint of another recipe",
    )
    t.set_defaults(fn=cmd_train)

    s = sub.add_parser("sample", help="write samples from a run or checkpoint")
    s.add_argument("source", help="run directory or checkpoints/step-N folder")
    s.add_argument("--num", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", required=True, help="FILE.npz (arrays) or FILE.png (a grid / scatter plot)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    s.add_argument(
        "--truncation",
        type=float,
        default=float("inf"),
        help="truncation trick: redraw latent entries with |z_i| above this (BigGAN; default: none)",
    )
    s.add_argument(
        "--psi",
        type=float,
        default=1.0,
        help="StyleGAN truncation in w space: w_avg + psi (w - w_avg) (default 1: none)",
    )
    s.set_defaults(fn=cmd_sample)

    la = sub.add_parser(
        "latent", help="latent interpolation grid (lerp or slerp), class morphing or style mixing of a run's generator"
    )
    la.add_argument("source", help="run directory or checkpoints/step-N folder")
    la.add_argument("--out", required=True, help="FILE.png")
    la.add_argument("--mode", choices=["slerp", "lerp"], default="slerp")
    la.add_argument("--morph", metavar="A,B", help="category morphing (BigGAN): walk the class embedding from A to B")
    la.add_argument(
        "--mixing",
        type=int,
        metavar="LAYER",
        help="StyleGAN style mixing grid: styles below LAYER from the row source, the rest from the column "
        "source (--rows rows, --steps columns)",
    )
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

    e = sub.add_parser(
        "eval",
        help="score a run's generator, or --fake images against --real ones",
        description="gankit eval RUN_DIR [--metrics fid,kid,is,pr,dc] | gankit eval --real PATH --fake PATH",
    )
    e.add_argument("source", nargs="?", help="run directory or checkpoints/step-N folder")
    e.add_argument("--real", type=Path, help="reference images: a folder or an .npz (uint8 'images')")
    e.add_argument("--fake", type=Path, help="images to score: a folder or an .npz (as `gankit sample` writes)")
    e.add_argument(
        "--metrics",
        default="fid,kid,is,pr,dc",
        help="comma-separated: fid, kid, is, pr, dc, mmd, swd, fid-inf, classes, agree, toy-mixture",
    )
    e.add_argument(
        "--num",
        type=int,
        default=None,
        help="generated samples (default: all of --fake; 10000, the standard, for a RUN_DIR)",
    )
    e.add_argument(
        "--num-real",
        type=int,
        help="real samples (default: all of --real without --num, else as --num; never more than exist)",
    )
    e.add_argument(
        "--max-unreadable",
        type=float,
        default=0.01,
        help="fraction of a --real / --fake folder's files that may be unreadable and skipped, with a "
        "warning (default 0.01, as data.max_unreadable in training)",
    )
    e.add_argument(
        "--features",
        default="inception",
        help="inception (papers' numbers; needs the weights), classifier (offline, labelled data), "
        "pixels, random-projection",
    )
    e.add_argument(
        "--inception-weights",
        type=Path,
        help="pt_inception-2015-12-05-6726825d.pth (or set "
        "GANKIT_INCEPTION_WEIGHTS); `gankit fetch inception` downloads it",
    )
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto")
    e.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    e.add_argument("--out", type=Path, help="also write the scores and their protocol to this JSON file")
    e.set_defaults(fn=cmd_eval)

    t = sub.add_parser(
        "translate",
        help="apply a trained image-to-image run (pix2pix, srgan, cyclegan, inpainting, autoencoder) to your images",
    )
    t.add_argument("source", help="run directory or checkpoint folder")
    t.add_argument("--input", required=True, type=Path, help="an image or a folder of images")
    t.add_argument("--out", required=True, type=Path, help="folder for the outputs (PNG, the inputs' names)")
    t.add_argument("--direction", default="ab", help="cyclegan: ab (A -> B, default) or ba (B -> A)")
    t.add_argument("--device", default="auto")
    t.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    t.set_defaults(fn=cmd_translate)

    rp = sub.add_parser(
        "report",
        help="(re)write a run's self-contained report.html: curves, samples over time, "
        "diagnostics, recipe, environment",
    )
    rp.add_argument("run_dir", type=Path)
    rp.add_argument("--out", type=Path, default=None, help="where to write it (default: RUN_DIR/report.html)")
    rp.add_argument(
        "--curves",
        default=None,
        help="instead of the report, a PNG (--out) of these logged series, comma-separated; a key ending "
        "in / takes every series under it (e.g. tricks/ada/p or tricks/ada/)",
    )
    rp.set_defaults(fn=cmd_report)

    f = sub.add_parser("fetch", help="download what gankit never downloads by itself (the FID Inception weights)")
    f.add_argument("what", choices=["inception"])
    f.add_argument("--dest", type=Path, help="folder (default: the torch hub checkpoints folder)")
    f.set_defaults(fn=cmd_fetch)

    ls = sub.add_parser("list", help="list registered pieces: recipes, objectives, penalties, models, ...")
    ls.add_argument("kind", nargs="?", help=f"one of: {', '.join([*KINDS, *ALIASES])}")
    ls.add_argument("--long", action="store_true", help="full descriptions (default: one line per name)")
    ls.set_defaults(fn=cmd_list)

    sh = sub.add_parser(
        "show",
        help="print a recipe fully resolved, with overrides applied and every component's "
        "options (defaults marked); the output is a recipe file `gankit train` accepts",
    )
    sh.add_argument("items", nargs="*", help="recipe name or YAML path, then key.sub=value overrides")
    sh.set_defaults(fn=cmd_show)

    from gankit.dynamics.cli import add_commands as add_dynamics

    add_dynamics(sub)
    from gankit.bench import add_commands as add_bench

    add_bench(sub)
    from gankit.lab.cli import add_commands as add_lab

    add_lab(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from gankit.config import ConfigError
    from gankit.registry import RegistryError
    from gankit.runlog.checkpoint import CheckpointError
    from gankit.training.trainer import NonFiniteLoss

    args = build_parser().parse_args(argv)
    # Warnings (skipped unreadable files, a missing VGG file) as one readable line, not a source dump.
    warnings.showwarning = lambda message, *_a, **_k: console.print(f"[yellow]warning:[/] {escape(str(message))}")
    try:
        return int(args.fn(args))
    except (ConfigError, RegistryError, CheckpointError, NonFiniteLoss, FileNotFoundError, ValueError) as err:
        if os.environ.get("GANKIT_DEBUG"):
            raise
        console.print(f"[bold red]error:[/] {escape(str(err))}")  # whole, "[...]" included
        return 2 if isinstance(err, (ConfigError, RegistryError, ValueError)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
