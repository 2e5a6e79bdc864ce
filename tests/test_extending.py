"""docs/extending.md kept true: a new objective and a new family, written outside the package, train
through the unchanged trainer; every family hands D's real outputs to ``g_loss(fake, real)``."""

import pytest
import torch
import torch.nn.functional as F

from gankit.families import FAMILIES, Batch, Family, Phase, StepContext
from gankit.objectives import OBJECTIVES, Objective
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer

FAST = ["log.tensorboard=false", "eval.metrics=[]", "eval.best=null", "log.sample_every=0"]


@pytest.fixture
def register():
    """Register pieces for one test and take them out again (the registries are process-wide)."""
    added = []

    def add(registry, name, factory):
        registry.register(name)(factory)
        added.append((registry, name))
        return factory

    yield add
    for registry, name in added:
        registry._entries.pop(name)


class Recording(Objective):
    """Relativistic GAN (Jolicoeur-Martineau 2018): D loss E softplus(-(r - f)), G loss E softplus(-(f - r))."""

    g_uses_real = True

    def __init__(self) -> None:
        self.g_calls: list[tuple[tuple[int, ...], tuple[int, ...] | None]] = []

    def d_loss(self, real, fake):
        return F.softplus(-(real - fake)).mean()

    def g_loss(self, fake, real=None):
        self.g_calls.append((tuple(fake.shape), None if real is None else tuple(real.shape)))
        assert real is not None, "g_loss was called without D's real outputs"
        return F.softplus(-(fake - real.mean())).mean()


# Every adversarial family, on the smallest data it trains on here. The semi-supervised, BiGAN and VEEGAN
# families accept only the objectives their losses are written for (Family.objectives), so a new objective
# is refused there with the reason (checked below) rather than silently given no real outputs.
FAMILY_RUNS = {
    "unconditional": ("gan-ring", []),
    "conditional": (
        "dcgan-digits",
        [
            "family=conditional",
            "generator.name=resnet",
            "discriminator.name=resnet",
            "generator.width=8",
            "discriminator.width=8",
        ],
    ),
    "acgan": (
        "dcgan-digits",
        [
            "family=acgan",
            "generator.name=resnet",
            "discriminator.name=resnet",
            "generator.width=8",
            "discriminator.width=8",
        ],
    ),
    "pix2pix": ("pix2pix-digits", []),
    "inpainting": ("inpainting-digits", []),
    "srgan": (
        "srgan-photos",
        [
            "family.pretrain_steps=0",
            "data={name: digits, resolution: 16, holdout: 50}",
            "generator.blocks=1",
            "generator.width=8",
            "discriminator.width=8",
            "family.scale=2",
        ],
    ),
    "cyclegan": (
        "cyclegan-mnist",
        [
            "data={name: unpaired, task: invert, base: digits, resolution: 16, holdout: 50}",
            "generator.width=8",
            "discriminator.width=8",
            "discriminator.receptive_field=16",
        ],
    ),
}


def test_every_adversarial_family_is_covered_or_restricts_its_objectives():
    adversarial = {n for n in FAMILIES.names() if FAMILIES.get(n).adversarial}
    restricted = {n for n in adversarial if FAMILIES.get(n).objectives}
    assert adversarial - restricted == set(FAMILY_RUNS)
    assert restricted == {"semi-supervised", "bigan", "veegan"}


@pytest.mark.parametrize("family", sorted(FAMILY_RUNS))
def test_g_loss_gets_d_real_outputs_in_every_family(family, register, tmp_path):
    register(OBJECTIVES, "test-relativistic", Recording)
    recipe, extra = FAMILY_RUNS[family]
    r = load_recipe(
        recipe,
        [
            *FAST,
            "objective={name: test-relativistic}",
            "penalties=[]",
            "tricks=[]",
            "schedule.steps=2",
            "schedule.batch_size=4",
            "ema.enabled=false",
            *extra,
        ],
    )
    t = Trainer(r, tmp_path / "run")
    for _ in range(2):
        terms = t.train_step(want_log=True)
    assert all(torch.isfinite(v).all() for v in terms.values())
    calls = t.objective.g_calls
    assert calls and all(real is not None for _, real in calls)
    # D's outputs on real data have the batch size of D's outputs on the fakes (the same patch grid too)
    assert all(real[1:] == fake[1:] for fake, real in calls)


def test_a_restricted_family_refuses_a_new_objective_with_the_reason(register):
    from gankit.config import ConfigError

    register(OBJECTIVES, "test-relativistic", Recording)
    with pytest.raises(ConfigError, match="works with objectives"):
        Trainer(load_recipe("veegan-grid", [*FAST, "objective.name=test-relativistic"]), "/nonexistent")


class MeanMatching(Family):
    """A family written from scratch: D is a plain critic; G matches D's mean real score (a toy)."""

    family_name = "test-mean-matching"

    def __init__(self, G, D, objective, penalties, device, tricks=(), encoder=None, pull: float = 1.0):
        self.G, self.D, self.objective, self.device, self.pull = G, D, objective, device, pull

    def d_terms(self, batch: Batch | None, ctx: StepContext):
        with torch.no_grad():
            fake = self.G(ctx.noise(batch.x.shape[0], self.G.z_dim))
        loss = self.objective.d_loss(self.D(batch.x).logits, self.D(fake).logits)
        return {"loss": loss}

    def g_terms(self, batch: Batch | None, ctx: StepContext):
        fake = self.G(ctx.noise(ctx.batch_size, self.G.z_dim))
        f, r = self.D(fake).logits, self.D(batch.x).logits
        loss = self.objective.g_loss(f, r) + self.pull * (f.mean() - r.mean().detach()).square()
        return {"loss": loss, "gap": (f.mean() - r.mean()).detach()}

    def phases(self, opt_g, opt_d, n_critic):
        return [
            Phase("D", self.D, opt_d, self.d_terms, frozen=(self.G,), repeats=n_critic),
            Phase("G", self.G, opt_g, self.g_terms, frozen=(self.D,), batch="fresh"),
        ]


def test_a_family_written_outside_the_package_trains_and_resumes_exactly(register, tmp_path):
    register(FAMILIES, "test-mean-matching", MeanMatching)
    overrides = [
        *FAST,
        "family={name: test-mean-matching, pull: 0.5}",
        "schedule.steps=6",
        "log.every=3",
        "log.checkpoint_every=3",
    ]
    t = Trainer(load_recipe("gan-ring", overrides), tmp_path / "a")
    assert t.family.pull == 0.5  # the recipe's option reached the family, checked by the registry
    before = [p.clone() for p in t.G.parameters()]
    for _ in range(3):
        terms = t.train_step(want_log=True)
    assert "g/gap" in terms and torch.isfinite(terms["g/loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters()))
    ckpt = t.save_checkpoint()
    for _ in range(3):
        t.train_step(want_log=False)
    resumed = Trainer(load_recipe("gan-ring", overrides), tmp_path / "a")
    resumed.load_checkpoint(ckpt)
    for _ in range(3):
        resumed.train_step(want_log=False)
    for a, b in zip(t.G.parameters(), resumed.G.parameters()):
        assert torch.equal(a, b)
