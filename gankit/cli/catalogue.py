"""`gankit list` and `gankit show`: the registries' catalogue and a recipe resolved with every default."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gankit.cli.console import console

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
            raise ValueError(f"unknown kind {args.kind!r}; valid kinds: {valid}")
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
