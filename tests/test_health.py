"""Training-health diagnostics: each rule fires on the pattern it names, at the step it should, and
stays quiet on a healthy run; a live run logs what a replay of its rows reproduces."""

import math

import pytest
import torch

from gankit.families.unconditional import separation
from gankit.recipes.load import load_recipe
from gankit.runlog import read_metrics
from gankit.runlog.health import WARMUP_STEPS, Coverage, Health, coverage, diversity, replay
from gankit.training.run import start_run


def _rows(n, **series):
    """n training rows at steps 10, 20, ...; each keyword is a function of the row index."""
    return [
        {
            "step": 10 * (i + 1),
            "d/loss": 1.3,
            "g/loss": 0.8,
            "d/grad_norm": 1.0,
            "g/grad_norm": 1.0,
            "d/acc": 0.6,
            **{k.replace("__", "/"): f(i) for k, f in series.items()},
        }
        for i in range(n)
    ]


def test_a_healthy_run_gives_no_warning():
    rows = _rows(60, d__loss=lambda i: 1.3 + 0.1 * math.sin(i), g__grad_norm=lambda i: 1 + 0.5 * math.cos(i))
    rows += [{"step": 100 * k, "eval/modes": 20 + k % 3, "health/diversity": 0.9} for k in range(1, 7)]
    assert replay(rows) == []


def test_d_overpowering_needs_a_collapsed_loss_a_window_and_a_real_recovery():
    # 5 early rows set d/loss's scale (1.3); then D separates perfectly with its loss at 0.05 for 10 rows,
    # loses its grip for 10, and wins again for 10.
    sure, lost = (1.0, 0.05), (0.5, 1.3)
    seq = [(0.7, 1.3)] * 5 + [sure] * 10 + [lost] * 10 + [sure] * 10
    w = replay(_rows(len(seq), d__acc=lambda i: seq[i][0], d__loss=lambda i: seq[i][1]))
    # The first full sure window ends at row 14 (step 150); the 10 lost rows clear it; the next all-sure
    # window ends at row 34 (step 350).
    assert [(x.kind, x.step) for x in w] == [("d_overpowering", 150), ("d_overpowering", 350)]
    assert "label smoothing" in w[0].message and "100.0%" in w[0].message
    # A flicker is no recovery: one row at 0.9 inside a sure stretch does not repeat the warning.
    seq = [(0.7, 1.3)] * 5 + [sure] * 12 + [(0.9, 0.05)] + [sure] * 12
    assert len(replay(_rows(len(seq), d__acc=lambda i: seq[i][0], d__loss=lambda i: seq[i][1]))) == 1
    # A D that separates the batches while its loss stays moderate is a learning GAN, not a problem;
    # nor is a WGAN critic, whose loss is negative.
    assert replay(_rows(40, d__acc=lambda i: 1.0, d__loss=lambda i: 1.3 if i < 5 else 0.3)) == []
    assert replay(_rows(40, d__acc=lambda i: 1.0, d__loss=lambda i: 1.3 if i < 5 else -5.0)) == []


def test_vanishing_generator_gradients():
    w = replay(_rows(20, g__grad_norm=lambda i: 2.0 if i < 5 else (0.1 if i < 10 else 1e-4)))
    assert [(x.kind, x.step) for x in w] == [("vanishing_g_grad", 150)]
    assert "non-saturating" in w[0].message


def test_divergence_on_losses_or_gradients():
    w = replay(_rows(20, g__loss=lambda i: 0.8 if i < 8 else 0.8 * 10 ** (i - 7)))
    # g/loss passes 100 x max(0.8, 1) = 100 first at i = 10 (800); the fifth such row in a row is i = 14.
    assert [(x.kind, x.step) for x in w] == [("divergence", 150)] and "g/loss" in w[0].message
    w = replay(_rows(12, d__grad_norm=lambda i: 1.0 if i < 5 else 500.0))
    assert [(x.kind, x.step) for x in w] == [("divergence", 100)] and "d/grad_norm" in w[0].message


def test_mode_collapse_from_coverage_or_diversity():
    rows = [{"step": 1000 * k, "eval/modes": m} for k, m in enumerate([10, 22, 24, 20, 16, 25], 1)]
    w = replay(rows)
    assert [(x.kind, x.step) for x in w] == [("mode_collapse", 5000)] and "modes fell to 16 from 24" in w[0].message
    w = replay([{"step": 1000 * k, "health/diversity": d} for k, d in enumerate([0.9, 1.0, 0.6, 0.45, 0.15], 1)])
    assert [(x.kind, x.step) for x in w] == [("mode_collapse", 4000)]


def _eval(step, protocol=None, **scores):
    return {
        "step": step,
        **{f"eval/{k}": v for k, v in scores.items()},
        **({"eval/protocol": protocol} if protocol else {}),
    }


def _toy(dataset, **options):
    ref = {"dataset": dataset, **({"options": options} if options else {})}
    return {"toy-mixture": {"metric": "toy-mixture", "num_fake": 2500, "reference": ref, "seed": 0}}


def test_an_evaluation_covering_at_most_half_the_classes_or_modes_is_mode_collapse():
    # 1 of 10 classes from the first evaluation on: nothing ever "fell", yet G is collapsed.
    w = replay([_eval(1000 * k, classes_covered=1.0, class_coverage=0.1, class_kl=2.2) for k in (1, 2, 3)])
    assert [(x.kind, x.step) for x in w] == [("mode_collapse", 1000)], w
    assert "covers 1 of 10 classes" in w[0].message
    # The classifier's class count, when the protocol records it, names the total.
    proto = {"class-coverage": {"metric": "class-coverage", "num_classes": 1000}}
    w = replay([_eval(2000, proto, classes_covered=400.0, class_coverage=0.4)])
    assert "covers 400 of 1000 classes" in w[0].message
    assert replay([_eval(2000, proto, classes_covered=600.0, class_coverage=0.6)]) == []
    # Toy mixtures: the number of modes is not logged; the protocol's reference names the mixture
    # (ring: 8 modes by default; grid of size 3: 9), rebuilt from the dataset registry.
    w = replay([_eval(1000, _toy("ring"), modes=2.0, hq_fraction=0.9)])
    assert [(x.kind, x.step) for x in w] == [("mode_collapse", 1000)] and "covers 2 of 8 modes" in w[0].message
    assert "covers 4 of 9 modes" in replay([_eval(1000, _toy("grid", size=3), modes=4.0)])[0].message
    assert replay([_eval(1000, _toy("grid", size=3), modes=5.0)]) == []
    # Without a known total (an older log without the protocol, or a dataset that can't be rebuilt) only
    # a fall from the best counts.
    assert replay([_eval(1000, modes=2.0)]) == []
    assert replay([_eval(1000, _toy("no-such-mixture"), modes=2.0)]) == []
    assert coverage(_eval(1000, _toy("ring", num_modes=12), modes=3.0)) == [Coverage("modes", 3.0, 0.25, 12)]


def test_no_mode_collapse_verdict_during_the_warm_up(tmp_path):
    """An untrained G is neither diverse nor on the modes: logging from step 1 must not call that collapse."""
    r = load_recipe(
        "dcgan-digits",
        [
            "generator.width=8",
            "discriminator.width=8",
            "schedule.batch_size=16",
            "schedule.steps=4",
            "log.every=1",
            "log.sample_every=1",
            "log.tensorboard=false",
            "log.checkpoint_every=0",
            "eval.metrics=[]",
            "eval.best=null",
        ],
    )
    res = start_run(r, out=tmp_path / "run")
    rows = read_metrics(tmp_path / "run")
    div = [x["health/diversity"] for x in rows if "health/diversity" in x]
    assert div[0] < 0.2 and rows[0]["step"] == 1  # step 1's samples are nearly identical ...
    assert res["health"] == [] and replay(rows) == []  # ... and that is a start, not a collapse
    assert [w.kind for w in replay(rows, Health(warmup=0))] == ["mode_collapse"]  # the rule itself would fire
    # Coverage too: 1 of 10 classes at step 1 is an untrained G; the same reading past the warm-up is not.
    early = [_eval(1, classes_covered=1.0, class_coverage=0.1), _eval(2, classes_covered=1.0, class_coverage=0.1)]
    assert replay(early) == []
    assert [
        (x.kind, x.step) for x in replay(early + [_eval(WARMUP_STEPS, classes_covered=1.0, class_coverage=0.1)])
    ] == [("mode_collapse", WARMUP_STEPS)]


def test_a_row_without_a_reading_neither_raises_nor_clears_mode_collapse():
    # Diversity collapsed; evaluations, samples and training rows interleave: one warning, not one per row.
    rows = []
    for k in range(1, 7):
        rows += _rows(1, d__loss=lambda i: 1.3)
        rows[-1]["step"] = 1000 * k
        rows += [{"step": 1000 * k, "health/diversity": 0.1}, _eval(1000 * k, modes=20.0)]
    w = replay(rows)
    assert [(x.kind, x.step) for x in w] == [("mode_collapse", 1000)]
    # It clears when every source reads healthy again, and may then warn again.
    rows += [{"step": 7000, "health/diversity": 0.9}, {"step": 8000, "health/diversity": 0.1}]
    assert [x.step for x in replay(rows)] == [1000, 8000]


def test_diversity_above_the_datas_is_no_higher_best():
    # An untrained MLP G spreads wider than the 8-Gaussian ring (measured: 1.54 at step 20); settling to
    # the data's spread is learning, not a halving of diversity.
    rows = [{"step": s, "health/diversity": d} for s, d in [(500, 1.54), (1000, 0.62), (1500, 0.95), (2000, 1.0)]]
    assert replay(rows) == []
    assert "best 1.00" in replay(rows + [{"step": 2500, "health/diversity": 0.45}])[0].message


def test_diversity_is_zero_for_one_point_and_one_for_the_data_itself():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 2, generator=g)
    assert diversity(torch.zeros(64, 2), real) == 0.0
    assert diversity(torch.randn(500, 2, generator=g), real) == pytest.approx(1.0, abs=0.05)
    assert diversity(0.5 * torch.randn(500, 2, generator=g), real) == pytest.approx(0.5, abs=0.05)


def test_separation_is_the_midpoint_accuracy():
    assert float(separation(torch.tensor([3.0, 4.0]), torch.tensor([-1.0, 0.0]))) == 1.0
    assert float(separation(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]))) == 0.5
    # midpoint (1 + 0) / 2 = 0.5: real 2 of 3 above, fake 2 of 2 below -> (2/3 + 1) / 2
    assert float(separation(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 0.0]))) == pytest.approx(5 / 6)


def test_a_frozen_generator_is_flagged_live_and_in_the_log(tmp_path):
    """G barely learns (lr 1e-12) while D trains fast: D soon separates perfectly; the run prints and logs it."""
    r = load_recipe(
        "gan-ring",
        [
            "generator.hidden=[32]",
            "discriminator.hidden=[64, 64]",
            "schedule.batch_size=64",
            "schedule.steps=400",
            "optim.g.lr=1e-12",
            "optim.d.lr=0.003",
            "log.every=10",
            "log.tensorboard=false",
            "eval.every=0",
            "eval.metrics=[]",
            "eval.best=null",
            "log.sample_every=0",
            "log.checkpoint_every=0",
        ],
    )  # the ring: no mode where G's init blob sits
    res = start_run(r, out=tmp_path / "run")
    kinds = [w.kind for w in res["health"]]
    assert "d_overpowering" in kinds, [(w.kind, w.step, w.message) for w in res["health"]]
    rows = read_metrics(tmp_path / "run")
    logged = [(x["step"], x["health/warning"]) for x in rows if "health/warning" in x]
    assert logged == [(w.step, w.kind) for w in res["health"]]
    assert [(w.step, w.kind) for w in replay(rows)] == logged  # the report's replay agrees with the live run
    assert Health().update(0, {"d/loss": 1.0}) == []
