"""A recipe's description says what it is in 1-3 lines (it is copied into every checkpoint and printed
by `gankit list recipes`); the measured notes behind a recipe live in docs/recipes.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPE_FILES = sorted((REPO / "gankit" / "recipes").glob("*.yaml"))
DOCS = REPO / "docs" / "recipes.md"

MAX_LINES = 3
MAX_CHARS = 400  # three lines of about 100 characters, after YAML folds them into one

# The recipes whose longer notes (paper values, deviations, settings tried and their scores) moved to
# docs/recipes.md.
MOVED = {
    "acgan-mnist",
    "began-mnist",
    "bigan-mnist",
    "biggan-cifar10",
    "biggan-mnist",
    "cgan-mnist",
    "cyclegan-mnist",
    "dae-mnist",
    "ebgan-mnist",
    "inpainting-digits",
    "pix2pix-digits",
    "pix2pix-mnist",
    "projection-mnist",
    "sngan-mnist",
    "srgan-photos",
    "ssgan-mnist",
    "stylegan-cifar10",
    "stylegan-mnist",
    "stylegan-retinamnist",
    "wgan-gp-mnist",
}


def _raw_description_lines(text: str) -> list[str]:
    """The non-empty lines of the `description:` entry as written in the YAML file (before folding)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("description:"))
    first = lines[start].split(":", 1)[1].strip()
    out = [first] if first and first[0] not in ">|" else []  # a plain scalar on the key's own line
    for line in lines[start + 1 :]:
        if line.strip() and not line[:1].isspace():
            break  # the next top-level key
        if line.strip():
            out.append(line.strip())
    return out


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: p.stem)
def test_every_recipe_description_is_at_most_three_lines(path: Path) -> None:
    text = path.read_text()
    raw = _raw_description_lines(text)
    desc = yaml.safe_load(text)["description"]
    assert 1 <= len(raw) <= MAX_LINES, (
        f"{path.stem}: description is {len(raw)} lines; say what the recipe is in 1-{MAX_LINES} lines and "
        f"move the notes to docs/recipes.md"
    )
    assert len(desc) <= MAX_CHARS, f"{path.stem}: description is {len(desc)} characters (at most {MAX_CHARS})"


def test_docs_recipes_holds_the_notes_of_every_recipe_that_moved() -> None:
    assert DOCS.exists(), "docs/recipes.md keeps the notes that left the recipes' descriptions"
    sections = re.findall(r"^## (\S+)\s*$", DOCS.read_text(), re.M)
    names = {p.stem for p in RECIPE_FILES}
    assert MOVED <= names, f"MOVED names recipes that do not exist: {sorted(MOVED - names)}"
    assert MOVED <= set(sections), f"docs/recipes.md has no section for {sorted(MOVED - set(sections))}"
    assert set(sections) <= names, f"docs/recipes.md has sections for no recipe: {sorted(set(sections) - names)}"
    assert len(sections) == len(set(sections)), "one section per recipe"
