"""What a run shows of itself: sample grids, the final density figure, evaluations and logged rows.

``Outputs`` is a mixin of ``Trainer`` (it reads the trainer's recipe, networks and ``TrainState``); it
keeps the pictures and the scores apart from the assembly and the step loop in ``trainer.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console
from rich.markup import escape

from gankit.config import Recipe
from gankit.data.base import to_uint8
from gankit.families import Family
from gankit.latent import generate, z_dim_of
from gankit.metrics.classes import requested_labels
from gankit.metrics.evaluate import Evaluator
from gankit.nn.mode import eval_mode
from gankit.nn.standing import standing_statistics
from gankit.runlog import Health, HealthWarning, RunLog, diversity
from gankit.seeds import SeedPurpose, rng_untouched, seeded
from gankit.training import distributed, state
from gankit.training.build import Shapes
from gankit.viz import save_samples
from gankit.viz.density import save_density_figure
from gankit.viz.grid import save_image_grid


class Outputs:
    """Samples, density, evaluation and log rows of a ``Trainer`` (see the module docstring)."""

    recipe: Recipe
    _run_dir: Path | None
    console: Console
    dist: distributed.DistInfo
    device: torch.device
    state: state.TrainState
    G: torch.nn.Module
    source: Any
    shapes: Shapes
    family_cls: type[Family]
    evaluator: Evaluator
    fixed_z: torch.Tensor
    first_images: torch.Tensor | None
    health: Health
    health_warnings: list[HealthWarning]
    last_eval: dict[str, float]
    last_eval_error: str | None
    last_protocol: dict[str, Any]
    last_samples: Path | None
    last_diversity: float | None
    _standing_step: int

    if TYPE_CHECKING:  # the trainer's checkpoint pieces, which a new best evaluation writes

        def checkpoint_state(self) -> dict[str, Any]: ...

        def checkpoint_tensors(self) -> dict[str, torch.Tensor]: ...

        def metadata(self) -> dict[str, str]: ...

    @property
    def run_dir(self) -> Path:
        if self._run_dir is None:
            raise ValueError(
                "this Trainer was built without a run directory (Trainer(recipe, None)), so it cannot write "
                "checkpoints, samples or logs; build it with Trainer(recipe, run_dir) to save"
            )
        return self._run_dir

    def _grid_count(self) -> int:
        return self.recipe.log.grid_size if self.shapes.kind == "image" else 1000 * self.recipe.log.grid_size // 64

    def sampling_generator(self) -> torch.nn.Module:
        """The EMA of G once averaging has begun (``ema.start``); G itself before, when the average is
        still the untrained initial copy. With ``ema.bn_batches`` the average's batch-norm statistics
        are first recomputed (standing statistics), once per step."""
        ema = self.state.ema
        if ema is None or not self.state.ema_started():
            return self.G
        if self.recipe.ema.bn_batches and self._standing_step != self.state.step:
            k = int(getattr(self.G, "num_classes", 0) or 0)
            g = seeded(self.recipe.seed, SeedPurpose.STANDING_STATS)
            bs = self.recipe.schedule.batch_size
            y = requested_labels(bs, k) if k else None
            standing_statistics(ema.module, z_dim_of(self.G), self.recipe.ema.bn_batches, bs, g, labels=y)
            self._standing_step = self.state.step
        return ema.module

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch: int = 1024) -> torch.Tensor:
        """The sampling generator's images of latents ``z`` (eval mode), float on the CPU; a
        class-conditional G takes classes in turn (0, 1, ..., K-1, 0, ...), so grids show every class."""
        G = self.sampling_generator()
        k = int(getattr(G, "num_classes", 0))
        labels = requested_labels(len(z), k) if k else None
        with eval_mode(G):
            return generate(G, len(z), z=z, labels=labels, batch_size=batch)

    def grid_images(self) -> torch.Tensor:
        """uint8 images of the first real batch, for sample grids when no images are held out. Drawn
        from the stream only if training has not begun (a run resumed at its last step)."""
        return to_uint8(self.first_images if self.first_images is not None else self.state.stream.next()[0][:16])

    def save_samples(self) -> Path:
        path = self.run_dir / "samples" / f"step-{self.state.step:06d}.png"
        if self.family_cls.translates:  # input | output | target triples
            images, per_row = self.state.family.sample_grid(self.sampling_generator(), self.grid_images())
            self.last_samples = save_image_grid(images, path, nrow=per_row)
            return self.last_samples
        fake = self.generate(self.fixed_z)
        real, _ = self.source.sample_real(len(fake), seed=self.recipe.seed)
        self.last_diversity = diversity(fake, real)
        centers = None
        if self.shapes.kind == "points":
            centers = getattr(self.source, "centers", None)
        else:
            real = None  # image grids show samples only
        self.last_samples = save_samples(
            fake, path, real=real, centers=centers, title=f"{self.recipe.name} - step {self.state.step}"
        )
        return self.last_samples

    def save_density(self, n: int = 10000) -> Path:
        """The final samples of a 2-D run beside the data, and their log-density (for the report)."""

        fake = self.generate(
            torch.randn(n, z_dim_of(self.G), generator=seeded(self.recipe.seed, SeedPurpose.DENSITY_LATENTS))
        )
        real, _ = self.source.sample_real(n, seed=self.recipe.seed)
        return save_density_figure(
            fake,
            real,
            getattr(self.source, "centers", None),
            self.run_dir / "samples" / "density.png",
            title=f"{self.recipe.name} - step {self.state.step}",
        )

    def evaluate(self) -> dict[str, float]:
        """Every metric of the recipe on the sampling generator; the same z at every evaluation."""

        def draw(n: int) -> torch.Tensor:
            return self.generate(
                torch.randn(n, z_dim_of(self.G), generator=seeded(self.recipe.seed, SeedPurpose.EVAL_LATENTS))
            )

        with rng_untouched(self.device):  # scoring must not move the training's random stream
            self.last_eval, self.last_protocol = self.evaluator.evaluate(draw)
            scores, protocol = self.state.family.scores(self.sampling_generator())  # test error, probe, PSNR
        if scores:
            self.last_eval.update(scores)
            self.last_protocol[protocol["metric"]] = protocol
        return self.last_eval

    def _log(self, log: RunLog, scalars: dict[str, Any]) -> dict[str, Any]:
        """Write a row, and the health warnings it raises (printed, and logged for the report)."""
        row = log.write(self.state.step, scalars)
        for w in self.health.update(self.state.step, row):
            self.health_warnings.append(w)
            log.write(self.state.step, w.as_row())
            self.console.print(f"[yellow]warning (step {w.step}):[/] {w.message}")
        return row

    def _log_diversity(self, log: RunLog) -> None:
        if self.last_diversity is not None and self.last_diversity == self.last_diversity:  # not NaN
            self._log(log, {"health/diversity": round(self.last_diversity, 4)})
            self.last_diversity = None

    def _evaluate_and_log(self, log: RunLog) -> bool:
        """Evaluate, log and keep the best checkpoint; True if the best one changed. An evaluation that
        fails is reported and logged (``eval/error``), never fatal: the weights matter more than a score,
        and ``gankit eval RUN_DIR`` can score them afterwards."""
        try:
            results = self.evaluate()
        except Exception as err:  # noqa: BLE001 - any failure of a metric must leave training standing
            if os.environ.get("GANKIT_DEBUG"):
                raise
            self.last_eval_error = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
            self.console.print(
                f"[yellow]warning (step {self.state.step}):[/] evaluation failed, training goes on: "
                f"{escape(self.last_eval_error)}"
            )
            log.write(self.state.step, {"eval/error": self.last_eval_error})
            return False
        self.last_eval_error = None
        self._log(log, {**{f"eval/{k}": v for k, v in results.items()}, "eval/protocol": self.last_protocol})
        if not self.state.best.improved(results):
            return False
        self.state.best.record(results, self.state.step)
        saved = self.checkpoint_state()  # collective under DDP: every rank gets here together
        if self.dist.main:
            self.state.best.write(
                self.run_dir,
                self.state.step,
                self.checkpoint_tensors(),
                saved,
                self.metadata(),
                results,
                self.last_protocol,
            )
        return True
