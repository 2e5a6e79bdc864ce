"""Recipes resolved and checked: names or YAML paths, overrides, and every component against its registry.

``gankit.config`` holds the schema, YAML and overrides alone; the checks against the registries of
pieces (which import torch and every model) live here, one floor up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gankit.config import ConfigError, Recipe, apply_overrides, merge_recipe, read_recipe_file, validate_schema
from gankit.data import DATASETS
from gankit.data.split import SPLIT_OPTIONS
from gankit.families import FAMILIES
from gankit.metrics import METRICS
from gankit.models import DISCRIMINATORS, ENCODERS, GENERATORS
from gankit.objectives import OBJECTIVES
from gankit.penalties import PENALTIES
from gankit.recipes import HERE, RECIPES
from gankit.registry import Registry, RegistryError
from gankit.tricks import TRICKS


def registries() -> dict[str, tuple[Registry, bool]]:
    """Recipe field -> (the registry its component names come from, whether it is a list)."""
    return {
        "data": (DATASETS, False),
        "generator": (GENERATORS, False),
        "discriminator": (DISCRIMINATORS, False),
        "encoder": (ENCODERS, False),
        "objective": (OBJECTIVES, False),
        "penalties": (PENALTIES, True),
        "tricks": (TRICKS, True),
        "eval.metrics": (METRICS, True),
        "family": (FAMILIES, False),
    }


def check_registries(recipe: Recipe) -> Recipe:
    """Check every component name and option against its registry; return the recipe coerced."""
    raw = recipe.model_dump(mode="python")
    for field, (reg, is_list) in registries().items():
        head, _, tail = field.partition(".")
        holder = raw[head] if tail else raw
        key = tail or head
        if holder[key] is None:  # an optional component left out (encoder)
            continue
        items = holder[key] if is_list else [holder[key]]
        checked = []
        for i, comp in enumerate(items):
            where = f"{field}.{i}" if is_list else field
            opts = {k: v for k, v in comp.items() if k != "name"}
            split = _split_options(opts) if field == "data" else {}
            try:
                opts = reg.validate(comp["name"], opts)
            except RegistryError as err:
                hint = f" (set it with {where}.OPTION=VALUE)" if "is required" in str(err) else ""
                raise ConfigError(f"{where}: {err}{hint}") from None
            checked.append({"name": comp["name"], **opts, **split})
        holder[key] = checked if is_list else checked[0]
    return Recipe.model_validate(raw)


def _split_options(opts: dict[str, Any]) -> dict[str, int]:
    """Pop the dataset-independent split options (gankit.data.split) from ``opts`` and check them."""
    split = {}
    for key in SPLIT_OPTIONS:
        if key in opts:
            value = opts.pop(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"data.{key}={value!r} must be a whole number >= 0")
            split[key] = value
    return split


def validate_recipe(raw: dict[str, Any], check: bool = True) -> Recipe:
    """``raw`` checked against the schema and, with ``check``, every component against its registry."""
    recipe = validate_schema(raw)
    return check_registries(recipe) if check else recipe


def _source(ref: str, folder: Path) -> tuple[dict[str, Any], str, Path]:
    """The raw recipe a reference names, a key that identifies it, and the folder its own base is read from."""
    if ref in RECIPES:
        return RECIPES.build(ref), f"recipe {ref}", HERE
    p = Path(ref).expanduser()
    p = p if p.is_absolute() else folder / p
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(f"recipe file {p} does not exist")
        raw = read_recipe_file(p)
        raw.setdefault("name", p.stem)
        return raw, str(p.resolve()), p.parent
    raise ConfigError(
        f"unknown recipe {ref!r}; valid choices: {', '.join(RECIPES.names())} (or the path of a .yaml file)"
    )


def _resolve(ref: str, folder: Path, chain: tuple[str, ...]) -> dict[str, Any]:
    raw, key, home = _source(ref, folder)
    if key in chain:
        raise ConfigError(f"recipe bases form a loop: {' -> '.join((*chain, key))}; remove one `base:`")
    return expand_base(raw, home, (*chain, key))


def expand_base(raw: dict[str, Any], folder: Path | None = None, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """``raw`` with its ``base:`` (a recipe name, or a YAML path relative to ``folder``) resolved and
    ``raw`` merged over it (:func:`gankit.config.merge_recipe`); a recipe without one comes back as it is.

    The run's ``config.yaml`` holds the merged result, so a run never depends on its base file again.
    """
    if "base" not in raw:
        return raw
    child = dict(raw)
    ref = child.pop("base")
    where = f"{chain[-1]}: base" if chain else "base"  # the file (or recipe) that names the base
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError(
            f"{where}: {ref!r} must be a recipe name or the path of a .yaml file (e.g. base: dcgan-mnist)"
        )
    try:
        parent = _resolve(ref, folder or Path.cwd(), chain)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    if "description" not in child:
        child["description"] = f"Based on {ref}: {parent.get('description', '')}".strip()
    if "name" not in child:
        parent.pop("name", None)  # a derived recipe is not its base
    return merge_recipe(parent, child)


def resolve_recipe_source(name_or_path: str) -> dict[str, Any]:
    """A registered recipe name, or the path of a user's YAML file, with any ``base:`` merged in."""
    return _resolve(name_or_path, Path.cwd(), ())


def load_recipe(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    raw = resolve_recipe_source(name_or_path)
    base = validate_recipe(raw, check=False).model_dump(mode="json")
    return validate_recipe(apply_overrides(base, overrides))
