"""gankit: train, evaluate and study generative adversarial networks.

The Python API, loaded on first use (``import gankit`` itself imports neither torch nor the pieces, so
the command line stays quick):

- ``gankit.train(recipe, overrides=[...], out=...)`` trains a recipe as ``gankit train`` does and
  returns a :class:`gankit.api.TrainResult` (run_dir, step, finished, eval, checkpoint, samples, ...);
- ``gankit.load(run_dir_or_checkpoint, device="auto", ema=True)`` returns a
  :class:`gankit.api.TrainedGenerator`; ``G.sample(n, labels=None, seed=None, truncation=None)`` gives
  images NCHW in [-1, 1] (or points (n, 2)), the same for a seed as ``gankit sample --seed``;
- ``gankit.list_recipes()``, ``gankit.resolve_recipe(recipe, overrides)``, ``gankit.Recipe``;
- the registries of named pieces, as ``gankit list`` shows them: ``gankit.RECIPES``, ``OBJECTIVES``,
  ``PENALTIES``, ``TRICKS``, ``GENERATORS``, ``DISCRIMINATORS``, ``ENCODERS``, ``DATASETS``,
  ``METRICS``, ``FEATURES``, ``FAMILIES``.

Example:
    >>> import gankit
    >>> G = gankit.load("runs/digits")
    >>> x = G.sample(16, seed=0)
"""

import importlib as _importlib
from typing import Any as _Any

from gankit.version import __version__ as __version__

# name -> (module, attribute), imported on first access (PEP 562). The registries are those of
# `gankit list` (gankit.cli.KINDS); tests/test_api.py keeps the two in step.
_LAZY: dict[str, tuple[str, str]] = {
    "load": ("gankit.api", "load"),
    "list_recipes": ("gankit.api", "list_recipes"),
    "resolve_recipe": ("gankit.api", "resolve_recipe"),
    "TrainResult": ("gankit.api", "TrainResult"),
    "TrainedGenerator": ("gankit.api", "TrainedGenerator"),
    "Recipe": ("gankit.config", "Recipe"),
    "ConfigError": ("gankit.config", "ConfigError"),
    "RECIPES": ("gankit.recipes", "RECIPES"),
    "OBJECTIVES": ("gankit.objectives", "OBJECTIVES"),
    "PENALTIES": ("gankit.penalties", "PENALTIES"),
    "TRICKS": ("gankit.tricks", "TRICKS"),
    "GENERATORS": ("gankit.models", "GENERATORS"),
    "DISCRIMINATORS": ("gankit.models", "DISCRIMINATORS"),
    "ENCODERS": ("gankit.models", "ENCODERS"),
    "DATASETS": ("gankit.data", "DATASETS"),
    "METRICS": ("gankit.metrics", "METRICS"),
    "FEATURES": ("gankit.metrics", "FEATURES"),
    "FAMILIES": ("gankit.families", "FAMILIES"),
}

__all__ = ["train", *_LAZY]


def train(
    recipe: _Any = None, overrides: _Any = (), out: _Any = None, *, progress: bool = False, console: _Any = None
) -> _Any:
    """Train a recipe as ``gankit train`` does; see :func:`gankit.api.train`.

    Example:
        >>> run = gankit.train("gan-ring", overrides=["schedule.steps=500"], out="runs/ring")
    """
    from gankit.api import train as _train

    return _train(recipe, overrides, out, progress=progress, console=console)


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(_importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({n for n in globals() if not n.startswith("_")} | set(__all__) | {"__version__"})
