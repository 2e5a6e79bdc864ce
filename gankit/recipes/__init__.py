"""Named recipes: one YAML file per recipe in this folder, registered by file name."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import yaml

from gankit.registry import Registry

RECIPES = Registry("recipe")
HERE = Path(__file__).parent
DEFAULT = "dcgan-digits"


def _load(path: Path) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text())
    raw.setdefault("name", path.stem)
    return raw


for _path in sorted(HERE.glob("*.yaml")):
    _desc = (yaml.safe_load(_path.read_text()) or {}).get("description", "")
    RECIPES.register(_path.stem, description=_desc.strip().splitlines()[0] if _desc else "")(partial(_load, _path))
