"""One lab session: a gankit ``Trainer`` on a 2-D toy recipe, stepped on demand, and the views the page
draws (docs/lab-protocol.md).

The training is gankit's own: the settings become a recipe (:func:`recipe_for`), the recipe a
``Trainer``, and each step is ``Trainer.train_step``, so what the page shows is what ``gankit train``
does with the exported recipe. The views never draw from the global RNG (their latents and real
points come from generators of their own), so watching a run does not change it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import yaml

from gankit.config import ConfigError
from gankit.files import json_safe
from gankit.lab.messages import LIVE, RUNNING, BadMessage, Settings, merged
from gankit.metrics.toy import mixture_metrics
from gankit.objectives import OBJECTIVES
from gankit.recipes.load import validate_recipe
from gankit.runlog import Health
from gankit.seeds import SeedPurpose, seeded
from gankit.training.trainer import NonFiniteLoss, Trainer
from gankit.tricks import LOGISTIC, PacGAN

HIDDEN = [64, 64]  # small MLPs: 20+ page updates a second of 10 steps each on 2 CPU cores
VIEW_POINTS = 256  # real and generated points drawn, and arrows
HEAT = 48  # heat-map cells per side
METRICS_EVERY = 5  # updates between toy-metric readings (1000 samples each)


def recipe_for(settings: Settings, steps: int = 1000) -> dict[str, Any]:
    """The gankit recipe (a mapping, as YAML would give) that trains what the lab trains."""
    data: dict[str, Any] = {"name": settings.dataset}
    if settings.dataset == "drawn":
        if not settings.points:
            raise BadMessage("the drawn dataset has no points yet: draw some on the plane first")
        data["points"] = [[round(x, 4), round(y, 4)] for x, y in settings.points]
    penalties: list[dict[str, Any]] = []
    for name in settings.penalties:
        if name == "spectral-norm":
            penalties.append({"name": name})
        else:  # WGAN-GP calls its weight lambda (Gulrajani et al.), R1 and R2 gamma (Mescheder et al.)
            penalties.append({"name": name, "lam" if name == "wgan-gp" else "gamma": settings.gamma})
    return {
        "name": f"lab-{settings.dataset}",
        "description": f"Exported from gankit lab: {settings.objective} on the {settings.dataset} dataset.",
        "family": "unconditional",
        "seed": settings.seed,
        "device": "cpu",  # tiny MLPs: the CPU is faster than a GPU's launch overhead, and identical runs
        "data": data,
        "generator": {"name": "mlp", "z_dim": settings.z_dim, "hidden": list(HIDDEN)},
        "discriminator": {"name": "mlp", "hidden": list(HIDDEN)},  # a copy: YAML anchors otherwise
        "objective": {"name": settings.objective},
        "penalties": penalties,
        "tricks": [{"name": t} for t in settings.tricks],
        "optim": {
            "g": {"type": "adam", "lr": settings.lr_g, "betas": [0.5, 0.9]},
            "d": {"type": "adam", "lr": settings.lr_d, "betas": [0.5, 0.9]},
        },
        "schedule": {"steps": max(1, steps), "batch_size": settings.batch_size, "n_critic": settings.n_critic},
        "eval": {"every": 0},
        "log": {"every": 100, "sample_every": 0, "checkpoint_every": 0},
    }


@functools.cache
def point_objectives() -> tuple[str, ...]:
    """The registered objectives that train the lab's MLPs (not the autoencoder-D energy ones)."""
    ok = []
    for name in OBJECTIVES.names():
        try:
            LabSession(Settings(objective=name), check_objective=False).close()
            ok.append(name)
        except (ConfigError, ValueError, TypeError):
            continue
    return tuple(ok)


def _check_objective(name: str) -> None:
    if name not in point_objectives():
        raise BadMessage(
            f"objective {name!r} does not train the lab's networks; choose one of {', '.join(point_objectives())}"
        )


def _finite(t: torch.Tensor, digits: int = 4) -> list[Any]:
    """A tensor as nested lists for JSON: non-finite values (a NaN stop) become None, never NaN."""
    out: list[Any] = json_safe(t.detach().to(torch.float64).cpu().round(decimals=digits).tolist())
    return out


class LabSession:
    """Settings, a ``Trainer`` built from them, and the page's views of it."""

    def __init__(self, settings: Settings | None = None, check_objective: bool = True) -> None:
        self.settings = settings or Settings()
        if check_objective:
            _check_objective(self.settings.objective)
        self.trainer: Trainer | None = None
        self.playing = False
        self.status, self.message = "paused", ""
        self.changed_at: int | None = None  # the step of the first change to the running networks
        self._build()

    # -- life cycle ---------------------------------------------------------------------------------
    def _build(self) -> None:
        recipe = validate_recipe(recipe_for(self.settings))
        trainer = Trainer(recipe, None)  # steps only: a lab session writes nothing
        self.trainer, self.step, self.changed_at = trainer, 0, None
        self.status, self.message, self.playing = "paused", "", False
        self.health, self.warnings = Health(), list[str]()
        self.pending: list[dict[str, float]] = []  # curve rows not yet sent
        self.updates = 0
        source = trainer.source
        self.real, _ = source.sample_real(VIEW_POINTS, seed=recipe.seed)
        self.z = torch.randn(VIEW_POINTS, self.settings.z_dim, generator=seeded(recipe.seed, SeedPurpose.GRID_LATENTS))
        self.z_metrics = torch.randn(1000, self.settings.z_dim, generator=seeded(recipe.seed, SeedPurpose.EVAL_LATENTS))
        lo, hi = source.centers.min(0).values, source.centers.max(0).values
        centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 + 4 * source.std
        half = max(half * 1.25, 1.0)
        self.extent = [
            float(centre[0]) - half,
            float(centre[0]) + half,
            float(centre[1]) - half,
            float(centre[1]) + half,
        ]

    def reset(self) -> None:
        """Fresh networks from the current settings, step 0, paused."""
        self._build()

    def close(self) -> None:
        """Drop the networks and optimiser state now rather than when the session is collected."""
        self.trainer, self.playing = None, False

    def apply(self, patch: dict[str, Any]) -> bool:
        """Apply a settings change; True when it rebuilt the networks (see docs/lab-protocol.md)."""
        new = merged(self.settings, patch)
        changed = {k for k in Settings.model_fields if getattr(new, k) != getattr(self.settings, k)}
        if new.objective != self.settings.objective:
            _check_objective(new.objective)
        if new.dataset == "drawn" and not new.points:
            raise BadMessage("the drawn dataset has no points yet: draw some on the plane first")
        old, self.settings = self.settings, new
        if changed <= LIVE | RUNNING:
            if changed & RUNNING and self.trainer is not None:
                self._retune()
                if self.step and self.changed_at is None:
                    self.changed_at = self.step
            return False
        playing = self.playing  # a new game keeps playing if the old one was
        try:
            self._build()
        except (ConfigError, ValueError, TypeError) as err:
            self.settings = old
            self._build()
            raise BadMessage(f"these settings do not train: {err}") from None
        self.playing = playing
        return True

    def _retune(self) -> None:
        """The running networks' learning rates and critic count, without a rebuild."""
        t = self.trainer
        assert t is not None
        for opt, lr in ((t.opt_g, self.settings.lr_g), (t.opt_d, self.settings.lr_d)):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = lr
        t.recipe.optim.g.lr, t.recipe.optim.d.lr = self.settings.lr_g, self.settings.lr_d
        for phase in t.phases:
            if phase.name == "D":
                phase.repeats = self.settings.n_critic

    # -- training -----------------------------------------------------------------------------------
    def advance(self, n: int) -> None:
        """``n`` training steps (the last one logged), or the NaN stop: then ``status`` is "stopped"."""
        t = self.trainer
        if t is None or self.status == "stopped":
            return
        try:
            terms: dict[str, torch.Tensor] = {}
            for i in range(n):
                terms = t.train_step(want_log=i == n - 1)
            t.check_finite()
        except NonFiniteLoss as err:
            self.step = t.step
            self.status, self.playing = "stopped", False
            self.message = f"{err} Press reset (or change a setting) to start again."
            return
        self.step = t.step
        row = {k: float(v) for k, v in terms.items() if v.numel() == 1}
        self.pending.append(
            {
                "step": self.step,
                "d_loss": row.get("d/loss", math.nan),
                "g_loss": row.get("g/loss", math.nan),
                "d_real": row.get("d/real", math.nan),
                "d_fake": row.get("d/fake", math.nan),
                "grad_norm": row.get("d/grad_norm", math.nan),
            }
        )
        del self.pending[:-500]
        for w in self.health.update(self.step, row):
            self.warnings = [*self.warnings[-4:], f"step {w.step}: {w.message}"]
        self.updates += 1

    # -- views --------------------------------------------------------------------------------------
    def _d(self, x: torch.Tensor) -> torch.Tensor:
        """D's logits for single points (a PacGAN D judges packs: m copies of each point)."""
        t = self.trainer
        assert t is not None and t.D is not None
        m = next((tr.m for _, tr in t.tricks if isinstance(tr, PacGAN)), 1)
        if m > 1:
            x = x.repeat_interleave(m, dim=0).reshape(x.shape[0], m * x.shape[1])
        return t.D(x).logits.reshape(-1)

    def _arrows(self, fake: torch.Tensor) -> torch.Tensor:
        """Minus the gradient of the G loss with respect to each generated point, for display."""
        t = self.trainer
        assert t is not None
        x = fake.detach().clone().requires_grad_(True)
        real_logits = self._d(self.real) if t.objective.g_uses_real else None
        loss = t.objective.g_loss(self._d(x), real_logits.detach() if real_logits is not None else None)
        (grad,) = torch.autograd.grad(loss * x.shape[0], x, allow_unused=True)
        if grad is None:
            return torch.zeros_like(x)
        g = -grad.nan_to_num(0.0)
        longest = float(g.norm(dim=1).max())
        scale = 0.08 * (self.extent[1] - self.extent[0]) / longest if longest > 0 else 0.0
        return g * scale

    def _mesh(self) -> list[Any] | None:
        """G's image of a grid of lines in z (1-D: one line; 2-D: 9 + 9 lines), for z of <= 2 dims."""
        t, k = self.trainer, self.settings.z_dim
        if k > 2 or t is None:
            return None
        s = torch.linspace(-2.5, 2.5, 41)
        if k == 1:
            lines = [s[:, None]]
        else:
            ticks = torch.linspace(-2.0, 2.0, 9)
            lines = [torch.stack([s, torch.full_like(s, v)], 1) for v in ticks]
            lines += [torch.stack([torch.full_like(s, v), s], 1) for v in ticks]
        out = t.generate(torch.cat(lines)).reshape(len(lines), s.shape[0], 2)
        return _finite(out, 3)

    def frame(self) -> dict[str, Any]:
        """Everything the page draws at this step (docs/lab-protocol.md, "frame")."""
        t = self.trainer
        assert t is not None and t.D is not None
        x0, x1, y0, y1 = self.extent
        fake = t.generate(self.z)
        xs, ys = torch.linspace(x0, x1, HEAT), torch.linspace(y1, y0, HEAT)  # row 0 at the top
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
        was = t.D.training
        t.D.eval()
        try:
            with torch.no_grad():
                logits = self._d(grid)
            arrows = self._arrows(fake)
        finally:
            t.D.train(was)
        if self.settings.objective in LOGISTIC:
            heat, lo, hi, label = torch.sigmoid(logits), 0.0, 1.0, "D(x) = sigmoid(logit)"
        else:
            finite = logits[torch.isfinite(logits)]
            bound = float(finite.abs().max()) if finite.numel() else 1.0
            heat, lo, hi, label = logits, -bound, bound, "D(x) (critic's raw score)"
        metrics = None
        if self.updates and self.updates % METRICS_EVERY == 0 or not self.updates:
            sample = t.generate(self.z_metrics)
            if bool(torch.isfinite(sample).all()):
                m = mixture_metrics(sample, t.source.centers, t.source.std)
                metrics = {
                    "modes": int(m["modes"]),
                    "high_quality": round(m["hq_fraction"], 4),
                    "kl": round(m["kl"], 4),
                }
        rows, self.pending = self.pending, []
        keys = ("step", "d_loss", "g_loss", "d_real", "d_fake", "grad_norm")
        curves = {k: json_safe([r[k] for r in rows]) for k in keys}
        return {
            "type": "frame",
            "step": self.step,
            "extent": [round(v, 4) for v in self.extent],
            "real": _finite(self.real),
            "fake": _finite(fake),
            "arrows": _finite(arrows),
            "heat": {"n": HEAT, "values": _finite(heat, 3), "min": lo, "max": hi, "label": label},
            "mesh": self._mesh(),
            "curves": curves,
            "metrics": metrics,
            "warnings": list(self.warnings),
        }

    # -- what the page is told ----------------------------------------------------------------------
    def state(self, reset: bool = False) -> dict[str, Any]:
        status = "stopped" if self.status == "stopped" else ("playing" if self.playing else "paused")
        return {
            "type": "state",
            "settings": self.settings.model_dump(mode="json"),
            "playing": self.playing,
            "step": self.step,
            "status": status,
            "message": self.message,
            "reset": reset,
        }

    def export(self) -> dict[str, Any]:
        """The settings as a recipe YAML: ``gankit train FILE`` trains these networks for ``step`` steps."""
        steps = self.step or 2000
        head = [
            f"# gankit lab, step {self.step}: `gankit train FILE` trains the same networks for {steps} steps.",
        ]
        if self.changed_at is not None:
            head.append(
                f"# The learning rates or n_critic changed at step {self.changed_at} while training; this recipe "
                "runs with the current values from step 0."
            )
        text = "\n".join(head) + "\n" + yaml.safe_dump(recipe_for(self.settings, steps), sort_keys=False)
        return {"type": "recipe", "yaml": text, "filename": f"gankit-lab-{self.settings.dataset}.yaml"}
