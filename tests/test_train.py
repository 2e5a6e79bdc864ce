"""The trainer end to end: run directory, exact resume, refusals, atomic checkpoints, NaN stop."""

import json
import subprocess
import sys

import pytest
import torch
import yaml
from PIL import Image

from gankit.config import ConfigError
from gankit.recipes.load import load_recipe
from gankit.runlog import RunLog, read_metrics
from gankit.runlog import checkpoint as ck
from gankit.training.run import resume_run, start_run
from gankit.training.trainer import NonFiniteLoss, Trainer

GRID_FAST = [
    "generator.hidden=[32, 32]",
    "discriminator.hidden=[32, 32]",
    "schedule.batch_size=32",
    "log.tensorboard=false",
]
DIGITS_FAST = ["generator.width=8", "discriminator.width=8", "schedule.batch_size=16", "log.tensorboard=false"]


def weights(run_dir):
    tensors, _ = ck.load_weights(ck.find_checkpoint(run_dir))
    return tensors


def test_run_directory_layout(tmp_path):
    r = load_recipe(
        "gan-grid",
        GRID_FAST[:-1]
        + [
            "schedule.steps=40",
            "log.every=10",
            "log.sample_every=20",
            "log.checkpoint_every=20",
            "eval.every=20",
            "log.keep_checkpoints=1",
        ],
    )
    res = start_run(r, out=tmp_path / "run")
    run = tmp_path / "run"
    assert res["finished"] and res["step"] == 40
    assert yaml.safe_load((run / "config.yaml").read_text()) == r.model_dump(mode="json")
    rows = read_metrics(run)
    train_rows = [x for x in rows if "d/loss" in x]
    assert (run / "report.html").is_file() and (run / "environment.json").is_file()
    assert [x["step"] for x in train_rows] == [10, 20, 30, 40]
    for key in ("d/loss", "g/loss", "d/real", "d/fake", "d/grad_norm", "g/grad_norm", "d/adv", "g/adv"):
        assert all(isinstance(x[key], float) for x in train_rows), key
    evals = [x for x in rows if "eval/modes" in x]
    assert [x["step"] for x in evals] == [20, 40] and 0 <= evals[-1]["eval/modes"] <= 25
    assert list(run.glob("events.out.tfevents.*")), "TensorBoard events missing"
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["density.png", "step-000020.png", "step-000040.png"]
    assert Image.open(run / "samples" / "step-000040.png").size[0] > 100
    assert [p.name for p in ck.list_checkpoints(run / "checkpoints")] == ["step-0000040"]  # keep=1
    assert res["eval"]["modes"] == evals[-1]["eval/modes"]
    with pytest.raises(ConfigError, match="already holds a run"):
        start_run(r, out=run)


@pytest.mark.parametrize(
    "name,extra",
    [
        (
            "gan-grid",
            GRID_FAST
            + [
                "schedule.n_critic=2",
                "penalties=[{name: wgan-gp}]",
                "ema.enabled=true",
                "log.every=3",
                "eval.every=4",
                "log.sample_every=5",
            ],
        ),
        ("dcgan-digits", DIGITS_FAST + ["ema.start=2", "log.every=2", "log.sample_every=3"]),
        ("dcgan-digits", DIGITS_FAST + ["ema.start=2", "ema.bn_batches=2", "log.every=2", "log.sample_every=3"]),
    ],
)
def test_resume_is_bit_identical(tmp_path, name, extra):
    n = 6
    full = load_recipe(name, extra + [f"schedule.steps={2 * n}", f"log.checkpoint_every={n}"])
    start_run(full, out=tmp_path / "full")
    half = load_recipe(name, extra + [f"schedule.steps={n}", f"log.checkpoint_every={n}"])
    start_run(half, out=tmp_path / "half")
    res = resume_run(tmp_path / "half", [f"schedule.steps={2 * n}"])
    assert res["step"] == 2 * n
    a, b = weights(tmp_path / "full"), weights(tmp_path / "half")
    assert a.keys() == b.keys() and any(k.startswith("G_ema.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    # The stopped run also evaluated at its end (step n); the training scalars must match exactly.
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows if "d/loss" in r]  # noqa: E731
    assert strip(read_metrics(tmp_path / "full")) == strip(read_metrics(tmp_path / "half"))


def test_resume_refuses_other_changes(tmp_path):
    r = load_recipe("gan-grid", GRID_FAST + ["schedule.steps=4", "log.checkpoint_every=2"])
    start_run(r, out=tmp_path / "run")
    with pytest.raises(ConfigError, match=r"would change optim\.d\.lr, seed"):
        resume_run(tmp_path / "run", ["optim.d.lr=0.1", "seed=3", "schedule.steps=8"])
    with pytest.raises(ConfigError, match=r"schedule\.steps"):
        resume_run(tmp_path / "run", ["schedule.steps=3"])
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["optim"]["d"]["lr"] == r.optim.d.lr
    res = resume_run(tmp_path / "run", ["optim.d.lr=0.1", "schedule.steps=6"], force=True)
    assert res["step"] == 6
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["optim"]["d"]["lr"] == 0.1
    with pytest.raises(ConfigError, match="not a gankit run directory"):
        resume_run(tmp_path)


KILL_MID_WRITE = r"""
import os, sys, torch
from pathlib import Path
from gankit.runlog import checkpoint as ck
root = Path(sys.argv[1])
real_save = torch.save
def dying_save(obj, fh, *a, **k):
    fh.write(b"half a state file")
    fh.flush()
    os._exit(9)  # the process is killed in the middle of writing the checkpoint
torch.save = dying_save
ck.save_checkpoint(root, 2, {"G.w": torch.full((3,), 2.0)}, {"step": 2}, {"recipe": "{}"})
"""


def test_killed_checkpoint_write_keeps_previous(tmp_path):
    root = tmp_path / "checkpoints"
    ck.save_checkpoint(root, 1, {"G.w": torch.ones(3)}, {"step": 1}, {"recipe": "{}"})
    proc = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, str(root)], capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    assert any(p.name.startswith(".tmp-") for p in root.iterdir()), "the killed write should leave only a temp folder"
    ckpts = ck.list_checkpoints(root)
    assert [p.name for p in ckpts] == ["step-0000001"]
    latest = ck.find_checkpoint(tmp_path / "checkpoints" / "..")
    tensors, _ = ck.load_weights(latest)
    assert torch.equal(tensors["G.w"], torch.ones(3)) and ck.load_state(latest)["step"] == 1


def test_nan_loss_stops_run_and_keeps_last_good_checkpoint(tmp_path):
    r = load_recipe("gan-grid", GRID_FAST + ["schedule.steps=20", "log.every=1", "log.checkpoint_every=5"])
    run = tmp_path / "run"
    trainer = Trainer(r, run)
    run.mkdir()
    calls = {"n": 0}
    real_d_loss = trainer.objective.d_loss

    def poisoned(real, fake):
        calls["n"] += 1
        out = real_d_loss(real, fake)
        return out * float("nan") if calls["n"] >= 7 else out

    trainer.objective.d_loss = poisoned
    log = RunLog(run, tensorboard=False)
    with pytest.raises(NonFiniteLoss, match=r"d/adv became NaN/Inf at step 7.*step-0000005"):
        trainer.train(log)
    log.close()
    assert [p.name for p in ck.list_checkpoints(run / "checkpoints")] == ["step-0000005"]
    assert all(torch.isfinite(v).all() for v in weights(run).values() if v.is_floating_point())


def test_checkpoint_state_loads_with_weights_only(tmp_path):
    r = load_recipe("dcgan-digits", DIGITS_FAST + ["schedule.steps=2", "objective.name=hinge"])
    start_run(r, out=tmp_path / "run")
    ckpt = ck.find_checkpoint(tmp_path / "run")
    state = torch.load(ckpt / ck.STATE, weights_only=True)
    assert state["step"] == 2 and set(state["optim"]) == {"g", "d"}
    _, meta = ck.load_weights(ckpt)
    assert json.loads(meta["recipe"])["objective"]["name"] == "hinge"


def test_before_ema_start_samples_and_checkpoints_come_from_g():
    """Until averaging begins the EMA is the untrained initial copy: grids, evaluations and checkpoints
    must use G itself, and the EMA afterwards."""
    t = Trainer(
        load_recipe(
            "dcgan-digits",
            [
                "log.tensorboard=false",
                "schedule.steps=4",
                "eval.metrics=[]",
                "eval.best=null",
                "ema={enabled: true, decay: 0.9, start: 2}",
            ],
        ),
        "/nonexistent",
    )
    for _ in range(2):
        t.train_step(want_log=False)
    assert t.sampling_generator() is t.G
    assert not any(k.startswith("G_ema.") for k in t.checkpoint_tensors())
    t.train_step(want_log=False)
    assert t.sampling_generator() is t.ema.module
    assert any(k.startswith("G_ema.") for k in t.checkpoint_tensors())


def test_linear_learning_rate_decay(tmp_path):
    r = load_recipe(
        "gan-grid", GRID_FAST + ["schedule.steps=10", "schedule.decay_start=6", "optim.g.lr=0.001", "optim.d.lr=0.002"]
    )
    assert [r.schedule.lr_factor(s) for s in (0, 5, 6, 8, 10)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    t = Trainer(r, tmp_path / "run")
    seen = []
    for _ in range(10):
        t.train_step(want_log=False)
        seen.append((t.opt_g.param_groups[0]["lr"], t.opt_d.param_groups[0]["lr"]))
    assert seen[5] == (0.001, 0.002) and seen[8] == pytest.approx((0.001 * 2 / 4, 0.002 * 2 / 4))
    with pytest.raises(ConfigError, match="decay_start=10 must be below"):
        load_recipe("gan-grid", ["schedule.steps=10", "schedule.decay_start=10"])


def test_resume_inside_the_decay_is_bit_identical(tmp_path):
    extra = GRID_FAST + ["schedule.decay_start=3", "log.checkpoint_every=4"]
    start_run(load_recipe("gan-grid", extra + ["schedule.steps=8"]), out=tmp_path / "full")
    half = load_recipe("gan-grid", extra + ["schedule.steps=8"])
    t = Trainer(half, tmp_path / "half")
    (tmp_path / "half").mkdir()
    log = RunLog(tmp_path / "half", tensorboard=False)
    for _ in range(4):
        t.train_step(want_log=False)
    t.save_checkpoint()
    t2 = Trainer(half, tmp_path / "half")
    t2.load_checkpoint(t.last_checkpoint)
    for _ in range(4):
        t2.train_step(want_log=False)
    log.close()
    a = weights(tmp_path / "full")
    for k, v in ck.split_prefix(a, "G").items():
        assert torch.equal(v, t2.G.state_dict()[k]), k
