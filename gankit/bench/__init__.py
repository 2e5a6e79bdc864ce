"""Benchmarks that train many runs and set them beside published numbers (``gankit bench``).

* ``gankit bench toy``: mode collapse on the 2-D ring and grid (VEEGAN / PacGAN protocol), every
  method on PacGAN's architecture, several seeds, a table with PacGAN's Table 1 beside ours, a plot
  per method and an HTML page (gankit/bench/toy.py);
* ``gankit bench stacked-mnist``: modes and KL to uniform over the 1000 digit triples of Stacked
  MNIST from 26,000 samples (gankit/bench/stacked.py).

``add_commands(sub)`` adds both to the ``gankit`` argument parser; each sets ``fn`` (the key
``gankit.cli.main`` calls) to a function ``(args) -> exit code``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console


def _names(text: str | None) -> list[str] | None:
    if text is None or text.strip() in ("", "all"):
        return None
    return [s.strip() for s in text.split(",") if s.strip()]


def cmd_toy(args: argparse.Namespace) -> int:
    from gankit.bench.toy import METHODS, run_toy_bench

    methods = list(METHODS) if (args.methods or "").strip() == "all" else _names(args.methods)
    run_toy_bench(
        datasets=_names(args.datasets),
        methods=methods,
        seeds=args.seeds,
        budget=args.budget,
        out_dir=args.out,
        eval_samples=args.eval_samples,
        quick=args.quick,
        lr=args.lr,
        progress=not args.no_progress,
        console=Console(),
        eval_every=args.eval_every,
        resume=not args.fresh,
    )
    return 0


def cmd_stacked(args: argparse.Namespace) -> int:
    from gankit.bench.stacked import STACKED_METHODS, run_stacked_bench

    methods = list(STACKED_METHODS) if (args.methods or "").strip() == "all" else _names(args.methods)
    run_stacked_bench(
        methods=methods,
        budget=args.budget,
        seeds=args.seeds,
        data_path=str(args.data_path or ""),
        split=args.split,
        num_samples=args.num_samples,
        out_dir=args.out,
        quick=args.quick,
        progress=not args.no_progress,
        console=Console(),
        resume=not args.fresh,
    )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``bench toy`` and ``bench stacked-mnist`` to the ``gankit`` sub-command parser ``sub``."""
    from gankit.bench.stacked import NUM_SAMPLES, STACKED_METHODS
    from gankit.bench.toy import DATASETS, FULL_BUDGET, FULL_SEEDS, METHODS, QUICK

    b = sub.add_parser(
        "bench",
        help="mode-collapse benchmarks beside published numbers: toy, stacked-mnist",
        description="gankit bench toy | stacked-mnist [options]",
    )
    bsub = b.add_subparsers(dest="bench", required=True)

    t = bsub.add_parser(
        "toy",
        help="GAN, unrolled, PacGAN2-4, minibatch disc., VEEGAN, BiGAN, WGAN-GP, feature matching on ring/grid",
        description="Every method on PacGAN's 2-D architecture; modes, % high quality and reverse KL over seeds, "
        "beside PacGAN's Table 1; a plot per method and index.html in --out.",
    )
    t.add_argument(
        "--datasets",
        help=f"comma-separated: {','.join(DATASETS)} (default both; --quick: {','.join(QUICK['datasets'])})",
    )
    t.add_argument(
        "--methods",
        help=f"comma-separated or 'all': {','.join(METHODS)} (default all; --quick: {','.join(QUICK['methods'])})",
    )
    t.add_argument(
        "--seeds", type=int, help=f"runs per cell, seeds 0..N-1 (default {FULL_SEEDS}; --quick: {QUICK['seeds']})"
    )
    t.add_argument(
        "--budget",
        type=int,
        metavar="STEPS",
        help=f"generator steps per run (default {FULL_BUDGET}, a GPU job; --quick: {QUICK['budget']})",
    )
    t.add_argument("--lr", type=float, help=f"Adam lr of G and D (default 1e-4, the paper's; --quick: {QUICK['lr']:g})")
    t.add_argument("--eval-samples", type=int, default=2500, help="samples scored per run (default 2500, the paper's)")
    t.add_argument(
        "--eval-every",
        type=int,
        default=0,
        metavar="STEPS",
        help="also score every run each STEPS steps: trajectories in results.json and a plot of the "
        "scores against steps per dataset (default 0: only at the end)",
    )
    t.add_argument("--quick", action="store_true", help="the CI preset (about two minutes on 2 cores)")
    t.add_argument(
        "--fresh",
        action="store_true",
        help="retrain every run; by default runs already finished in --out/cells with the same "
        "settings are loaded, so a stopped benchmark resumes",
    )
    t.add_argument("--out", type=Path, default=Path("bench-toy"), help="output folder (default bench-toy)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_toy)

    s = bsub.add_parser(
        "stacked-mnist",
        help="modes and KL to uniform over the 1000 modes of Stacked MNIST (26,000 samples)",
        description="DCGAN vs PacDCGAN on Stacked MNIST, counted with a per-channel digit classifier.",
    )
    s.add_argument("--methods", help=f"comma-separated or 'all': {','.join(STACKED_METHODS)} (default all)")
    s.add_argument("--budget", type=int, metavar="STEPS", help="generator steps per run (default 20000; --quick: 200)")
    s.add_argument("--seeds", type=int, help="runs per method (default 3; --quick: 1)")
    s.add_argument("--data-path", type=Path, help="folder of MNIST IDX files (default: sklearn digits, offline)")
    s.add_argument(
        "--split",
        choices=["train", "test"],
        default="train",
        help="MNIST split with --data-path (shared/data/mnist holds only 'test')",
    )
    s.add_argument("--num-samples", type=int, help=f"samples counted per run (default {NUM_SAMPLES})")
    s.add_argument("--quick", action="store_true", help="the CI preset: 2 methods, 200 steps, 2600 samples")
    s.add_argument(
        "--fresh", action="store_true", help="retrain every run instead of loading finished ones from --out/cells"
    )
    s.add_argument("--out", type=Path, default=Path("bench-stacked-mnist"), help="output folder")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_stacked)
    return b
