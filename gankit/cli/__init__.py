"""`gankit train | sample | encode | eval | fetch | list | show | dirac | identities | bench | lab`: the
command line. Each command group is a module of this package (catalogue, runs, scores) or of the subsystem
it drives (dynamics, bench, lab); this module builds the parser and turns errors into one line."""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path
from typing import Any

from rich.markup import escape

from gankit.cli.catalogue import ALIASES, KINDS, _registry, cmd_list, cmd_show
from gankit.cli.console import console
from gankit.cli.runs import cmd_encode, cmd_latent, cmd_report, cmd_sample, cmd_train, cmd_translate
from gankit.cli.scores import cmd_eval, cmd_fetch

__all__ = ["KINDS", "_registry", "build_parser", "console", "main"]


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
    warnings.showwarning = lambda message, *_a, **_k: console.print(
        f"[yellow]warning:[/] {escape(str(message))}", soft_wrap=True
    )
    try:
        return int(args.fn(args))
    except (ConfigError, RegistryError, CheckpointError, NonFiniteLoss, FileNotFoundError, ValueError) as err:
        if os.environ.get("GANKIT_DEBUG"):
            raise
        # every command's bad input ends here: whole ("[...]" included) and unbroken, so a path or command
        # in it stays copyable at any width
        console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        return 2 if isinstance(err, (ConfigError, RegistryError, ValueError)) else 1
