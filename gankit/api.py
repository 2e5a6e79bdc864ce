"""The Python API: ``gankit.train`` runs a recipe, ``gankit.load`` gives a generator to sample.

Both are thin layers over what the command line runs: :func:`train` is ``gankit train`` (it calls
:func:`gankit.training.run.start_run`, so a run directory made here is the one the CLI makes), and
:meth:`TrainedGenerator.sample` is ``gankit sample`` (one code path,
:func:`gankit.sampling.draw_samples`: the same checkpoint and seed give the same samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the API module is imported lazily (gankit/__init__.py); torch comes with it anyway
    import numpy as np
    import torch
    from rich.console import Console

    from gankit.config import Recipe
    from gankit.training.build import Shapes


def list_recipes() -> list[str]:
    """The names of the registered recipes (``gankit list recipes``), sorted.

    Returns:
        A list of names such as ``"dcgan-digits"`` or ``"gan-ring"``, each one a valid first argument
        of :func:`train`. ``gankit.RECIPES.describe()`` maps each name to its one-line description.

    Example:
        >>> import gankit
        >>> "gan-ring" in gankit.list_recipes()
        True
    """
    from gankit.recipes import RECIPES

    return RECIPES.names()


def resolve_recipe(recipe: Any = None, overrides: Sequence[str] = ()) -> Recipe:
    """A validated :class:`gankit.config.Recipe` from a name, a YAML path, a mapping or a Recipe,
    with dotted ``key.sub=value`` overrides applied (``gankit train``'s positional arguments).

    Args:
        recipe: a registered recipe name (``"gan-ring"``), the path of a YAML file (str or Path), a
            mapping of recipe keys (``{"base": "gan-ring", "seed": 3}`` merges over a named recipe, as
            ``base:`` does in a file), or a ``Recipe``; ``None`` is the CLI's default (``dcgan-digits``).
        overrides: ``["schedule.steps=500", "objective.name=hinge"]`` as on the command line.

    Returns:
        The recipe, every piece checked against its registry (a wrong name raises
        :class:`gankit.config.ConfigError` listing the valid ones).

    Example:
        >>> import gankit
        >>> gankit.resolve_recipe("gan-ring", ["schedule.steps=10"]).schedule.steps
        10
    """
    from gankit.config import Recipe, apply_overrides
    from gankit.recipes import DEFAULT
    from gankit.recipes.load import expand_base, load_recipe, validate_recipe

    if isinstance(overrides, str) or any(not isinstance(o, str) for o in overrides):
        raise TypeError(f"overrides must be a list of 'key.sub=value' strings, got {overrides!r}")
    overrides = list(overrides)
    if recipe is None or isinstance(recipe, (str, Path)):
        return load_recipe(str(recipe) if recipe is not None else DEFAULT, overrides)
    if isinstance(recipe, Recipe):
        raw = recipe.model_dump(mode="json")
    elif isinstance(recipe, dict):
        raw = validate_recipe(expand_base(dict(recipe)), check=False).model_dump(mode="json")
    else:
        raise TypeError(
            f"recipe must be a recipe name, a YAML path, a mapping or a gankit.config.Recipe, "
            f"got {type(recipe).__name__}"
        )
    return validate_recipe(apply_overrides(raw, overrides))


@dataclass
class TrainResult:
    """What :func:`train` returns: where the run is and how it ended.

    Attributes:
        run_dir: the run directory (``config.yaml``, ``metrics.jsonl``, ``samples/``, ``checkpoints/``).
        step: the generator step reached.
        finished: whether it reached ``schedule.steps`` (False when stopped by Ctrl-C / SIGTERM).
        eval: the final evaluation's scores, e.g. ``{"modes": 8.0, "high_quality": 0.93, ...}``.
        checkpoint: the newest checkpoint folder (``checkpoints/step-XXXXXXX``).
        samples: the last sample grid (PNG) written.
        report: ``report.html``, or None when it could not be written.
        seconds: training time.
        stopped_by: the signal that stopped the run early, or None.
        health: the health warnings raised during the run (``HealthWarning``: step, kind, message).
        protocol: how each evaluation score was measured (extractor, sample counts, reference).
        recipe: the fully resolved recipe that ran.
    """

    run_dir: Path
    step: int
    finished: bool
    eval: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    samples: Path | None = None
    report: Path | None = None
    seconds: float = 0.0
    stopped_by: str | None = None
    health: list[Any] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict, repr=False)
    recipe: Recipe | None = field(default=None, repr=False)

    def load(self, device: str = "auto", ema: bool = True) -> TrainedGenerator:
        """The run's generator, as :func:`load` gives it (``gankit.load(result.run_dir, ...)``).

        Example:
            >>> G = gankit.train("gan-ring", ["schedule.steps=200"], out="runs/ring").load()
        """
        return load(self.run_dir, device=device, ema=ema)


def train(
    recipe: Any = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    *,
    progress: bool = False,
    console: Console | None = None,
) -> TrainResult:
    """Train a recipe, as ``gankit train RECIPE key=value ... --out OUT`` does.

    The run directory is the one the command line makes (config, metrics, TensorBoard events, sample
    grids, checkpoints, ``report.html``), so ``gankit sample``, ``gankit eval``, ``gankit report`` and
    ``gankit train --resume`` all work on it. Ctrl-C stops at the next step with a checkpoint
    (``result.stopped_by``); a bad recipe raises :class:`gankit.config.ConfigError` before training.

    Args:
        recipe: a registered recipe name (``gankit.list_recipes()``), the path of a YAML recipe, a
            mapping, or a :class:`gankit.config.Recipe`; None: the CLI's default, ``dcgan-digits``.
        overrides: dotted overrides, ``["schedule.steps=500", "generator.z_dim=8"]``.
        out: the run directory (it must not hold a run yet); None: ``runs/<recipe>-<timestamp>`` in
            the working directory.
        progress: show the progress bar and the trainer's messages (health warnings) on stderr;
            by default training is silent.
        console: a ``rich.console.Console`` to print to instead (overrides ``progress``).

    Returns:
        A :class:`TrainResult`: ``run_dir``, ``step``, ``finished``, ``eval`` scores, ``checkpoint``,
        ``samples``, ``report``, ... and ``.load()`` for the trained generator.

    Example:
        >>> import gankit
        >>> run = gankit.train("gan-ring", overrides=["schedule.steps=500"], out="runs/ring")
        >>> run.finished, run.eval["modes"]  # doctest: +SKIP
        (True, 8.0)
    """
    from rich.console import Console

    from gankit.training.distributed import closing_group
    from gankit.training.run import start_run

    resolved = resolve_recipe(recipe, overrides)
    if console is None:
        console = Console(stderr=True) if progress else Console(quiet=True)
    if progress:
        first = resolved.description.strip().splitlines()[0] if resolved.description.strip() else ""
        console.print(f"[bold]gankit train[/] {resolved.name}: {first}")
    with closing_group():  # under torchrun, as `gankit train`: leave no process group behind that we made
        result = start_run(resolved, out=out, console=console)
    return TrainResult(
        run_dir=Path(result["run_dir"]),
        step=int(result["step"]),
        finished=bool(result["finished"]),
        eval=dict(result.get("eval") or {}),
        checkpoint=result.get("checkpoint"),
        samples=result.get("samples"),
        report=result.get("report"),
        seconds=float(result.get("seconds", 0.0)),
        stopped_by=result.get("stopped_by"),
        health=list(result.get("health") or []),
        protocol=dict(result.get("protocol") or {}),
        recipe=resolved,
    )


class TrainedGenerator:
    """A trained generator loaded from a checkpoint (:func:`load`), in eval mode.

    Attributes:
        module: the underlying ``torch.nn.Module`` (``G(z)`` or ``G(z, y)``).
        recipe: the run's :class:`gankit.config.Recipe`.
        kind: ``"image"`` (samples NCHW in [-1, 1]) or ``"points"`` (samples (N, 2)).
        shape: the shape of one sample, e.g. ``(1, 16, 16)`` or ``(2,)``.
        z_dim: the latent size (0 for image-to-image generators, which draw no noise).
        num_classes: the number of classes of a conditional generator, 0 otherwise.
        step: the generator step of the checkpoint.
        device: the ``torch.device`` it runs on.
        weights: ``"G_ema"`` (the EMA generator) or ``"G"``.
        checkpoint: the checkpoint folder it was read from.
    """

    def __init__(self, module: torch.nn.Module, recipe: Recipe, shapes: Shapes, meta: dict[str, str]) -> None:
        self.module = module
        self.recipe = recipe
        self.kind = shapes.kind
        self.shape = tuple(shapes.shape)
        self.z_dim = int(getattr(module, "z_dim", 0) or 0)
        self.num_classes = int(getattr(module, "num_classes", 0) or 0)
        self.step = int(meta.get("step", 0))
        self.weights = meta["weights"]
        self.checkpoint = Path(meta["checkpoint"])

    @property
    def device(self) -> torch.device:
        import torch

        p = next(self.module.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def to(self, device: str | torch.device) -> TrainedGenerator:
        """Move the generator to ``device`` (``"cpu"``, ``"cuda"``, ...); returns itself. Samples do not
        depend on the device beyond rounding: latents are always drawn on the CPU."""
        self.module.to(device)
        return self

    def sample(
        self,
        n: int,
        labels: Any = None,
        seed: int | None = None,
        truncation: float | None = None,
        psi: float | None = None,
        numpy: bool = False,
        batch_size: int = 500,
    ) -> torch.Tensor | np.ndarray:
        """``n`` samples of the generator: what ``gankit sample`` writes, as a tensor or an array.

        Args:
            n: how many samples.
            labels: class ids for a conditional generator: one int for all samples, or a list, array or
                tensor of ``n`` ids; None: the classes in turn, 0, 1, ..., K-1, 0, ... (as ``gankit
                sample`` asks). An unconditional generator takes none.
            seed: the latents are ``torch.randn(n, z_dim)`` drawn on the CPU from
                ``torch.Generator().manual_seed(seed)``, so one seed always gives the same samples, those
                ``gankit sample --seed SEED`` writes for the same checkpoint; None: fresh latents from
                torch's global RNG (``torch.manual_seed`` makes them repeatable).
            truncation: the truncation trick, ``gankit sample --truncation``: latent entries with
                |z_i| above it are redrawn (Brock et al. 2019); None: no truncation.
            psi: StyleGAN's truncation in w space, w_avg + psi (w - w_avg), ``gankit sample --psi``
                (Karras et al. 2019); None: none. Other generators refuse it.
            numpy: return a float32 ``numpy.ndarray`` instead of a tensor.
            batch_size: samples per forward pass.

        Returns:
            float32 samples on the CPU: images (n, C, H, W) in [-1, 1] (the generator's tanh output), or
            points (n, 2) for toy data.

        Example:
            >>> G = gankit.load("runs/digits")
            >>> x = G.sample(16, seed=0)           # (16, 1, 16, 16), the same every time
            >>> x7 = G.sample(8, labels=7, seed=0)  # a conditional generator's 7s
        """
        from gankit.sampling import draw_samples

        samples, _ = draw_samples(
            self.module,
            n,
            seed=seed,
            labels=labels,
            truncation=float("inf") if truncation is None else float(truncation),
            psi=1.0 if psi is None else float(psi),
            batch_size=batch_size,
        )
        return samples.numpy() if numpy else samples

    def __repr__(self) -> str:
        cond = f", num_classes={self.num_classes}" if self.num_classes else ""
        return (
            f"TrainedGenerator({self.recipe.name!r}, {self.kind} {self.shape}, z_dim={self.z_dim}{cond}, "
            f"step={self.step}, weights={self.weights!r}, device={self.device})"
        )


def load(source: str | Path, device: str = "auto", ema: bool = True) -> TrainedGenerator:
    """Load a trained generator from a run directory (its newest checkpoint) or a checkpoint folder.

    Checkpoints are safetensors plus JSON metadata: loading one never runs pickled code. The
    generator is rebuilt from the recipe saved with it and put in eval mode.

    Args:
        source: a run directory (``runs/dcgan-digits-...``), a ``checkpoints/step-XXXXXXX`` folder or
            its weights file.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        ema: use the EMA generator's weights when the run kept them (``gankit sample`` does; ``--no-ema``
            is ``ema=False``).

    Returns:
        A :class:`TrainedGenerator`: ``.sample(n, labels=None, seed=None, truncation=None, psi=None,
        numpy=False)``, and ``.module``, ``.recipe``, ``.z_dim``, ``.num_classes``, ``.step``, ``.device``.

    Example:
        >>> import gankit
        >>> G = gankit.load("runs/digits")
        >>> x = G.sample(16, seed=0)
    """
    from gankit.sampling import load_generator

    module, recipe, shapes, meta = load_generator(source, device=device, use_ema=ema)
    return TrainedGenerator(module, recipe, shapes, meta)
