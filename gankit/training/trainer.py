"""One trainer for every recipe: assemble the pieces, run the family's phases, log, sample, checkpoint.

``Trainer.__init__`` assembles (data, networks, family, optimisers, evaluation) into a ``TrainState``;
``train`` is a thin loop of ``train_step`` and the periodic hooks (log, evaluate, sample, checkpoint).
The pictures and the scores those hooks make live in ``outputs.py`` (``Outputs``, a mixin).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gankit.config import ConfigError, Recipe
from gankit.families import Batch, Family, StepContext
from gankit.latent import z_dim_of
from gankit.metrics import METRICS
from gankit.metrics.evaluate import Evaluator, reference_description
from gankit.models.base import set_step
from gankit.penalties import refresh_spectral_norm
from gankit.runlog import Health, HealthWarning, RunLog, read_metrics, replay
from gankit.runlog import checkpoint as ck
from gankit.seeds import SeedPurpose, rank_seed, seed_for, seeded
from gankit.training import autoperf, distributed, ramps, state
from gankit.training.best import BestTracker
from gankit.training.build import (
    Shapes,
    build_data,
    build_encoder,
    build_metrics,
    build_networks,
    build_objective,
    build_penalties,
    build_tricks,
    check_d_rows,
    check_distributed,
    check_family,
    compiled,
    family_of,
    make_optimizer,
    resolve_device,
)
from gankit.training.guard import FiniteGuard, NonFiniteLoss, StopSignals
from gankit.training.outputs import Outputs
from gankit.training.phases import run_phase
from gankit.training.precision import Precision
from gankit.training.progress import make_progress
from gankit.training.ramps import scheduled_ema

__all__ = ["NonFiniteLoss", "Trainer"]  # NonFiniteLoss: what a NaN stop raises, public here too


class Trainer(Outputs):
    def __init__(self, recipe: Recipe, run_dir: str | Path | None, console: Console | None = None) -> None:
        """``run_dir=None``: a trainer that only steps (the lab's sessions); saving anything then raises."""
        self.recipe, self._run_dir = recipe, Path(run_dir) if run_dir is not None else None
        self.console = console or Console()
        self.dist = distributed.from_environment()
        self.device = distributed.device_for(self.dist, resolve_device(recipe.device))
        distributed.init(self.dist, self.device)
        torch.manual_seed(recipe.seed)  # the same initial weights on every rank
        if not self.dist.main:
            self.console = Console(quiet=True)  # one progress bar and one set of messages: rank 0's
        self.family_cls: type[Family] = family_of(recipe)
        self.source = build_data(recipe)
        in_shape = getattr(self.source, "in_shape", None)
        self.shapes = Shapes(
            self.source.kind,
            tuple(self.source.shape),
            int(self.source.num_classes),
            tuple(in_shape) if in_shape is not None else None,
        )
        check_family(recipe, self.family_cls)
        self.perf = autoperf.resolve(
            recipe.perf,
            autoperf.probe(self.device),
            image=self.shapes.kind == "image",
            in_memory=isinstance(getattr(self.source, "images", None), torch.Tensor),
        )
        if self.perf.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        self._build_networks()
        self.state = self._build_state()
        self._build_evaluation()
        # Sampling uses its own generators so that logging never shifts the training RNG stream.
        self.fixed_z = torch.randn(
            self._grid_count(), z_dim_of(self.G), generator=seeded(recipe.seed, SeedPurpose.GRID_LATENTS)
        )
        self.guard = FiniteGuard()  # each step's terms stay on the device until a logging step checks them
        self.stop = StopSignals(self.console)
        self.last_eval: dict[str, float] = {}
        self.last_eval_error: str | None = None
        self.last_protocol: dict[str, Any] = {}
        self.last_checkpoint: Path | None = None
        self.last_samples: Path | None = None
        self.last_diversity: float | None = None
        self.first_images: torch.Tensor | None = None  # a few real images, for grids without held-out data
        self.health = Health()
        self.health_warnings: list[HealthWarning] = []

    # -- assembly ---------------------------------------------------------------------------------
    def _build_networks(self) -> None:
        """G, D, E, penalties and tricks, on the device in the recipe's memory format."""
        recipe, perf = self.recipe, self.recipe.perf
        self.tricks = build_tricks(recipe)
        self.G, self.D = build_networks(recipe, self.shapes, self.tricks, self.family_cls)
        self.E = build_encoder(recipe, self.shapes, z_dim_of(self.G), self.family_cls)
        self.penalties = build_penalties(recipe)
        for _, pen in self.penalties:
            if pen.target == "D" and self.D is None:
                raise ConfigError(f"family {recipe.family.name!r} has no discriminator for a D penalty; remove it")
            pen.on_build(self.G if pen.target == "G" else self.D)
        check_distributed(recipe, self.family_cls, self.dist.enabled, self.dist.world)
        if perf.sync_batchnorm and self.dist.enabled and self.device.type != "cuda":
            raise ConfigError(
                "perf.sync_batchnorm needs CUDA devices (PyTorch's SyncBatchNorm is GPU-only); on CPU "
                "ranks keep per-rank batch-norm statistics: set perf.sync_batchnorm=false"
            )
        if perf.sync_batchnorm and self.dist.enabled:
            self.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            if self.D is not None:
                self.D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        self.perf.place(self.G, self.device, self.shapes.kind)
        if self.D is not None:
            self.perf.place(self.D, self.device, self.shapes.kind)
        if self.E is not None:
            self.E.to(self.device)

    def _build_state(self) -> state.TrainState:
        """Optimisers, the batch stream, the family and its phases, EMA: the run's ``TrainState``."""
        recipe, perf, sched = self.recipe, self.recipe.perf, self.recipe.schedule
        self.precision = Precision(self.perf.amp, self.device.type)
        g_params = list(self.G.parameters())
        if self.E is not None:
            g_params += list(self.E.parameters())  # BiGAN / VEEGAN: E (or F) learns with G
        self.objective = build_objective(recipe).to(self.device)
        opt_g = make_optimizer(recipe.optim.g, g_params)
        opt_d = make_optimizer(recipe.optim.d, self.D.parameters()) if self.D is not None else None
        # With accumulation every loss call draws a micro-batch; the optimiser steps on their sum.
        micro = sched.batch_size // perf.accumulate
        stream: Any = self.source.stream(micro, recipe.seed)
        if self.perf.data_on_device and callable(getattr(stream, "to", None)):
            stream.to(self.device)
        self._pin = self.device.type == "cuda"  # batches still drawn on the host: pinned, copied async
        g_run, d_run = compiled(self.perf.compile, self.G, self.D, self.penalties)
        sharding = None
        if self.dist.enabled:  # every rank takes its slice of one global batch, latents and labels
            stream = distributed.ShardedStream(stream, self.dist.rank, self.dist.world)
            micro //= self.dist.world
            sharding = distributed.Sharding(
                self.dist.rank, self.dist.world, seed_for(recipe.seed, SeedPurpose.SHARDING)
            )
            g_run = distributed.wrap(g_run, self.device)
            d_run = distributed.wrap(d_run, self.device) if d_run is not None else None
            torch.manual_seed(rank_seed(recipe.seed, self.dist.rank))  # independent per-sample noise per rank
        check_d_rows(self.D, self.tricks, micro)
        self.ctx = StepContext(self.device, micro, sharding=sharding)
        try:
            family = self.family_cls(
                g_run,
                d_run,
                self.objective,
                self.penalties,
                self.device,
                self.tricks,
                **({"encoder": self.E} if self.E is not None else {}),
                **self.family_cls.extra_inputs(recipe, self.source),
                **recipe.family.options,
            )
        except ValueError as err:  # a family option or piece that does not fit: the recipe's to fix
            raise ConfigError(str(err)) from None
        phases = family.phases(opt_g, opt_d, sched.n_critic)
        for phase in phases:
            phase.scaler = self.precision.make_scaler()
        ema = None
        self.ema_decay = recipe.ema.decay
        ramped_ema = any(r.target in ("ema.decay", "ema.half_life") for r in recipe.ramps)
        if recipe.ema.enabled:
            avg = scheduled_ema(lambda: self.ema_decay) if ramped_ema else get_ema_multi_avg_fn(recipe.ema.decay)
            ema = AveragedModel(self.G, multi_avg_fn=avg, use_buffers=True)
        self.ramps = ramps.bind(
            recipe, opt_g, opt_d, self.penalties, self.tricks, self._set_ema_decay if recipe.ema.enabled else None
        )
        self._ema_spectral_norm = ema is not None and refresh_spectral_norm(self.G, iterations=0) > 0
        self._standing_step = -1  # the step whose standing statistics the EMA holds (ema.bn_batches)
        self.metrics = build_metrics(recipe)
        if hasattr(self.source, "centers") and "toy-mixture" not in [n for n, _ in self.metrics]:
            self.metrics.append(("toy-mixture", METRICS.build("toy-mixture")))
        best = BestTracker(recipe.eval.best, recipe.eval.best_mode, self.metrics)
        return state.TrainState(
            self.G,
            self.D,
            self.E,
            ema,
            opt_g,
            opt_d,
            stream,
            self.objective,
            best,
            self.tricks,
            family,
            phases,
            sharding,
            self.dist,
        )

    def _build_evaluation(self) -> None:
        self.evaluator = Evaluator(
            self.metrics,
            self.source,
            self.device,
            seed=self.recipe.seed,
            reference=reference_description(self.source, self.recipe.data.options),
        )
        if self.dist.enabled:  # every rank evaluates its share of the samples; all score the whole set
            self.evaluator.shard = (self.dist.rank, self.dist.world, distributed.gather_objects)

    # -- the state, by name ------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.state.step

    @step.setter
    def step(self, value: int) -> None:
        self.state.step = value

    @property
    def family(self) -> Family:
        return self.state.family

    @property
    def phases(self) -> list[Any]:
        return self.state.phases

    @property
    def ema(self) -> AveragedModel | None:
        return self.state.ema

    @property
    def opt_g(self) -> torch.optim.Optimizer:
        return self.state.opt_g

    @property
    def opt_d(self) -> torch.optim.Optimizer | None:
        return self.state.opt_d

    @property
    def stream(self) -> Any:
        return self.state.stream

    @property
    def best(self) -> BestTracker:
        return self.state.best

    @property
    def sharding(self) -> distributed.Sharding | None:
        return self.state.sharding

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        self.sampling_generator()  # the EMA's standing statistics, when the recipe asks, are saved with it
        return self.state.tensors()

    def checkpoint_state(self) -> dict[str, Any]:
        return self.state.state_dict()

    def metadata(self) -> dict[str, str]:
        return state.metadata(self.recipe, self.shapes, self.step)

    def save_checkpoint(self) -> Path:
        self.check_finite()
        saved = self.checkpoint_state()  # collective under DDP: every rank takes part
        if not self.dist.main:
            self.last_checkpoint = self.run_dir / "checkpoints" / f"{ck.PREFIX}{self.step:07d}"
            return self.last_checkpoint
        self.last_checkpoint = ck.save_checkpoint(
            self.run_dir / "checkpoints",
            self.step,
            self.checkpoint_tensors(),
            saved,
            self.metadata(),
            keep=self.recipe.log.keep_checkpoints,
        )
        return self.last_checkpoint

    def load_checkpoint(self, ckpt: Path, force: bool = False) -> None:
        """Restore ``ckpt``; ``force`` accepts a checkpoint whose recipe identity differs from this run's."""
        state.restore(self.state, self.recipe, ckpt, force=force)
        self.set_network_step()
        # The optimisers' saved states carry the old rates: the recipe's rule (a resume with
        # `--force optim.g.lr=...` after a NaN stop) must win.
        self.set_learning_rates()
        self.last_checkpoint = ckpt

    def set_network_step(self) -> None:
        ema = self.state.ema
        set_step(self.step, self.G, self.D, ema.module if ema is not None else None)

    # -- the step ---------------------------------------------------------------------------------
    def _track(self, phase: str, terms: dict[str, torch.Tensor], skipped: torch.Tensor | None = None) -> None:
        if self.guard.track(self.step + 1, phase, terms, skipped):
            self.check_finite()

    def check_finite(self) -> None:
        """Raise ``NonFiniteLoss`` if a tracked loss term or gradient has gone NaN/Inf (one host read for
        all the steps since the last check): at logging steps and before each checkpoint."""
        self.guard.check(self.last_checkpoint, self._run_dir, self.recipe, self.opt_d is not None)

    def _set_ema_decay(self, value: float) -> None:
        self.ema_decay = value

    def set_learning_rates(self) -> None:
        """The recipe's rates times the schedule's decay factor at this step: a function of the step
        alone, so a resumed run continues the same schedule exactly."""
        factor = self.recipe.schedule.lr_factor(self.step)
        for opt, cfg in ((self.opt_g, self.recipe.optim.g), (self.opt_d, self.recipe.optim.d)):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * factor

    def draw_batch(self) -> Batch:
        """The next real batch, on the device (the family never draws data itself)."""
        x, y = self.stream.next()
        if self.first_images is None:
            self.first_images = x[:16].clone()
        if self._pin and x.device.type == "cpu":
            x, y = x.pin_memory(), y.pin_memory() if y is not None else None
        return Batch(
            x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True) if y is not None else None
        )

    def train_step(self, want_log: bool) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        ctx = self.ctx
        ctx.step, ctx.logging, ctx.last_batch = self.step, want_log, None
        if self.recipe.schedule.decay_start:
            self.set_learning_rates()
        for ramp, setter in self.ramps:
            setter(ramp.value(self.step, self.recipe.schedule.steps))
        self.set_network_step()
        for phase in self.phases:
            if self.step % phase.interval or self.step < phase.start:
                continue
            for _ in range(phase.repeats):
                out = run_phase(phase, ctx, self.draw_batch, self.precision, self.recipe.perf.accumulate)
                if phase.scaler is None:
                    self._track(phase.name, out)
                else:  # fp16: an overflow on a step the scaler skipped is its business, not a NaN stop
                    self._track(
                        phase.name, {k: v for k, v in out.items() if k != "skipped"}, skipped=out["skipped"] > 0
                    )
            terms.update({f"{phase.name.lower()}/{k}": v for k, v in out.items()})
        ctx.last_batch = None  # no batch outlives its step
        ema = self.state.ema
        if ema is not None and self.step >= self.recipe.ema.start:
            ema.update_parameters(self.G)
            if self._ema_spectral_norm:  # averaged u, v are off the averaged weights' singular vectors
                refresh_spectral_norm(ema.module)
        self.step += 1
        return terms

    # -- the loop and its periodic hooks ------------------------------------------------------------
    def _on_log(self, log: RunLog, terms: dict[str, torch.Tensor], task: Any, progress: Any, rate: float) -> None:
        self.check_finite()
        extra = {f"objective/{k}": v for k, v in self.objective.log_values().items()}
        extra.update({f"tricks/{n}/{k}": v for n, t in self.tricks for k, v in t.log_values().items()})
        row = self._log(log, distributed.mean_over_ranks({**terms, **extra}))
        info = f"D {row.get('d/loss', 0):.3f}  G {row.get('g/loss', 0):.3f}"
        if self.health.active:
            info += "  [yellow]! " + ", ".join(sorted(self.health.active)).replace("_", " ") + "[/]"
        progress.update(task, completed=self.step, rate=f"{rate:.1f} it/s", info=info)

    def _periodic(self, log: RunLog, total: int) -> None:
        """Evaluate, sample and checkpoint at their cadences (after the step that reaches them)."""
        r = self.recipe
        if r.eval.every and self.step % r.eval.every == 0 and self.step < total:
            self._evaluate_and_log(log)
        if self.dist.main and r.log.sample_every and self.step % r.log.sample_every == 0:
            self.save_samples()
            self._log_diversity(log)
        if r.log.checkpoint_every and self.step % r.log.checkpoint_every == 0:
            self.save_checkpoint()
            log.flush()

    def _finish(self, log: RunLog, finished: bool) -> None:
        """The weights and the pictures first: whatever the evaluation then does, the run is kept."""
        if self.dist.main:
            self.save_samples()
            self._log_diversity(log)
            if self.shapes.kind == "points":
                self.save_density()
        if self.last_checkpoint is None or self.last_checkpoint.name != f"{ck.PREFIX}{self.step:07d}":
            self.save_checkpoint()
        log.flush()
        if finished and (self.metrics or getattr(self.source, "heldout", None) is not None):
            # every rank: the evaluation is shared out under DDP
            if self._evaluate_and_log(log):
                self.save_checkpoint()  # the same step again, now with the best score in its state
            log.flush()

    def train(self, log: RunLog) -> dict[str, Any]:
        r = self.recipe
        total = r.schedule.steps
        old_handlers = self.stop.install()
        if self.step and self.dist.main:  # resumed: the monitor picks up where the logged rows leave off
            self.health_warnings = replay(read_metrics(self.run_dir), self.health)
        progress = make_progress(self.console)
        t0, s0 = time.perf_counter(), self.step
        try:
            with progress:
                task = progress.add_task(r.name, total=total, completed=self.step, rate="", info="")
                stop = False
                while self.step < total and not stop:
                    want_log = (self.step + 1) % r.log.every == 0 or self.step + 1 == total
                    terms = self.train_step(want_log)
                    if want_log:
                        rate = (self.step - s0) / max(time.perf_counter() - t0, 1e-9)
                        self._on_log(log, terms, task, progress, rate)
                    self._periodic(log, total)
                    stop = self.stop.agreed(want_log, self.dist.enabled, self.device)
                progress.update(task, completed=self.step)
        finally:
            StopSignals.restore(old_handlers)
        self.check_finite()
        finished = self.step >= total
        self._finish(log, finished)
        return {
            "step": self.step,
            "finished": finished,
            "eval": dict(self.last_eval),
            "eval_error": self.last_eval_error,
            "grid_legend": self.family_cls.grid_legend,
            "protocol": dict(self.last_protocol),
            "samples": self.last_samples,
            "checkpoint": self.last_checkpoint,
            "seconds": time.perf_counter() - t0,
            "stopped_by": self.stop.requested,
            "health": list(self.health_warnings),
        }
