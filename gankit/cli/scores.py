"""`gankit eval` and `gankit fetch`: scores of a run or of two image sets, and the FID Inception weights."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from gankit.cli.console import console


def cmd_eval(args: argparse.Namespace) -> int:
    from gankit.evaluation import RUN_NUM, build_metric_list, evaluate_files, evaluate_run, load_pair, metric_names
    from gankit.metrics import FEATURES

    if (args.real is None) != (args.fake is None):
        raise ValueError("give both --real PATH and --fake PATH, or a RUN_DIR")
    if (args.source is None) == (args.real is None):
        raise ValueError("give a RUN_DIR (or checkpoint) to evaluate, or --real PATH --fake PATH")
    options: dict[str, Any] = {}
    if args.inception_weights:
        if args.features != "inception":
            raise ValueError("--inception-weights only applies with --features inception")
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
