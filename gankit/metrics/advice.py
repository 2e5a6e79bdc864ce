"""Advice that is valid for the command that prints it.

The same metric problem is fixed differently depending on where it surfaces: ``gankit eval`` takes
``--features`` / ``--metrics`` / ``--num`` flags, while ``gankit train`` (and the Trainer API) reads
the recipe's ``eval.metrics`` entries, which have no flags. Every error raised while checking or
building metrics phrases its fix through these helpers, given the ``context`` ("train" or "eval"),
so a ``train`` error never suggests a ``--features`` flag that ``train`` does not have.
"""

from __future__ import annotations

from typing import Any

CONTEXTS = ("train", "eval")


def check_context(context: str) -> str:
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    return context


def recipe_entry(name: str, metric: Any = None, **changes: Any) -> str:
    """A recipe ``eval.metrics`` entry in flow YAML, e.g. ``{name: fid, features: pixels, num_samples: 1797}``.

    Starts from ``metric``'s settings (its extractor and sample counts) with ``changes`` applied;
    ``feature_options`` are dropped when the extractor changes (they belong to the old one)."""
    fields: dict[str, Any] = {"name": name}
    if metric is not None and getattr(metric, "uses_features", False):
        fields["features"] = metric.features
        fields["num_samples"] = metric.num_samples
        if metric.num_real != metric.num_samples and metric.needs_real:
            fields["num_real"] = metric.num_real
        if metric.feature_options and "features" not in changes:
            fields["feature_options"] = metric.feature_options
    elif metric is not None and hasattr(metric, "num_samples"):
        fields["num_samples"] = metric.num_samples
    fields.update(changes)

    def flow(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {flow(x)}" for k, x in v.items()) + "}"
        return str(v)

    return flow(fields)


def other_features(context: str, choices: list[str], name: str | None = None, metric: Any = None) -> str:
    """ "Use another extractor", phrased for ``context``; ``choices`` in order of preference."""
    if context == "eval":
        return "choose another extractor: " + " or ".join(f"--features {c}" for c in choices)
    if name is not None:
        example = recipe_entry(name, metric, features=choices[0])
        return (
            f"give the metric another extractor in the recipe ({' or '.join(f'features: {c}' for c in choices)}), "
            f"e.g. eval.metrics=[{example}], or train without it (eval.metrics=[] for no evaluation)"
        )
    return (
        f"give the recipe's eval.metrics another extractor ({' or '.join(f'features: {c}' for c in choices)}), "
        f"e.g. eval.metrics=[{{name: fid, features: {choices[0]}}}], or eval.metrics=[] for no evaluation"
    )


def drop_metric(context: str, name: str, remaining: list[str]) -> str:
    """ "Leave this metric out", phrased for ``context``."""
    if context == "eval":
        rest = ",".join(remaining)
        return f"leave {name} out of --metrics" + (f" (--metrics {rest})" if rest else "")
    return f"remove {name} from the recipe's eval.metrics (eval.metrics=[] for no evaluation)"


def more_samples(
    context: str, name: str, metric: Any, fake: int | None, real: int | None, real_size: int | None = None
) -> str:
    """ "Use at least this many samples", phrased for ``context``; ``fake`` / ``real``: the counts
    needed, None where that side is not short. ``real_size``: how many real images exist, when that
    (and not the metric's ``num_real``) is what falls short."""
    set_short = real is not None and real_size is not None and real_size < real
    if context == "eval":
        flags = []
        if fake is not None:
            flags.append(f"--num {fake}")
        if real is not None and not set_short:
            flags.append(f"--num-real {real}")
        fix = f"evaluate more samples ({' '.join(flags)})" if flags else ""
        if set_short:
            more = f"a reference set of at least {real} images"
            fix = f"{fix}, and {more}" if fix else f"give {more}"
        return fix + " (a file given to --fake / --real must hold at least that many)"
    changes: dict[str, Any] = {}
    new_fake = max(fake or 0, getattr(metric, "num_samples", 0))
    if fake is not None:
        changes["num_samples"] = new_fake
    follows = getattr(metric, "num_real", None) == getattr(metric, "num_samples", None)
    if real is not None and not set_short and not (follows and fake is not None and real <= new_fake):
        changes["num_real"] = real  # num_real defaults to num_samples, so only set when that is not enough
    fix = (
        f"raise its sample counts in the recipe, e.g. eval.metrics=[{recipe_entry(name, metric, **changes)}]"
        if changes
        else ""
    )
    if set_short:
        more = f"a dataset of at least {real} images (it holds {real_size})"
        fix = f"{fix}, and use {more}" if fix else f"use {more} or another metric"
    return fix
