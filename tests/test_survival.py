"""Runs survive: NaN/Inf stops that name the culprit, SIGTERM/SIGINT checkpoints, and SIGKILL at random
moments (checkpoint writes included) never leaving a run unreadable or changing the final weights."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from gankit.recipes.load import load_recipe
from gankit.runlog import RunLog, read_metrics
from gankit.runlog import checkpoint as ck
from gankit.training.run import resume_run
from gankit.training.trainer import NonFiniteLoss, Trainer

GRID_FAST = [
    "generator.hidden=[32, 32]",
    "discriminator.hidden=[32, 32]",
    "schedule.batch_size=32",
    "log.tensorboard=false",
    "eval.metrics=[]",
    "eval.every=0",
    "eval.best=null",
]


def _poisoned_run(tmp_path, poison, steps=20):
    r = load_recipe(
        "gan-grid",
        GRID_FAST
        + [
            f"schedule.steps={steps}",
            "log.every=1",
            "log.checkpoint_every=5",
            "optim.g.lr=0.0004",
            "optim.d.lr=0.0008",
        ],
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(r.model_dump(mode="json")))
    trainer = Trainer(r, run)
    poison(trainer)
    log = RunLog(run, tensorboard=False)
    with pytest.raises(NonFiniteLoss) as err:
        trainer.train(log)
    log.close()
    return run, str(err.value)


def test_nan_stop_names_the_term_and_the_resume_command(tmp_path):
    def poison(trainer):
        calls = {"n": 0}
        real_g_loss = trainer.objective.g_loss

        def g_loss(fake, real=None):
            calls["n"] += 1
            out = real_g_loss(fake, real)
            return out + float("inf") if calls["n"] >= 8 else out

        trainer.objective.g_loss = g_loss

    run, msg = _poisoned_run(tmp_path, poison)
    assert "loss term g/adv became NaN/Inf at step 8" in msg, msg
    assert "step-0000005" in msg
    assert f"gankit train --resume {run} --force optim.g.lr=0.0002 optim.d.lr=0.0004" in msg
    assert [p.name for p in ck.list_checkpoints(run / "checkpoints")] == ["step-0000005"]

    # The suggested resume really runs with the lower rates (the optimiser state would restore the old).
    res = resume_run(run, ["optim.g.lr=0.0002", "optim.d.lr=0.0004"], force=True)
    assert res["finished"] and res["step"] == 20
    t = Trainer(
        load_recipe("gan-grid", GRID_FAST + ["schedule.steps=20", "optim.g.lr=0.0002", "optim.d.lr=0.0004"]), run
    )
    t.load_checkpoint(ck.find_checkpoint(run))
    assert t.opt_g.param_groups[0]["lr"] == 0.0002 and t.opt_d.param_groups[0]["lr"] == 0.0004
    assert all(torch.isfinite(v).all() for v in t.G.state_dict().values())


def test_nan_gradient_with_a_finite_loss_is_caught(tmp_path):
    def poison(trainer):
        first = next(trainer.D.parameters())
        calls = {"n": 0}

        def hook(grad):
            calls["n"] += 1
            return grad * float("nan") if calls["n"] == 12 else grad

        first.register_hook(hook)

    run, msg = _poisoned_run(tmp_path, poison)
    # The hook fires in D's own step (and in G's backward through D, whose gradient is frozen away).
    assert "the gradient of D became NaN/Inf" in msg, msg
    assert all(torch.isfinite(v).all() for v in ck.load_weights(ck.find_checkpoint(run))[0].values())


def test_a_run_with_no_checkpoint_resumes_from_step_zero(tmp_path):
    r = load_recipe("gan-grid", GRID_FAST + ["schedule.steps=6", "log.checkpoint_every=0", "log.every=2"])
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(r.model_dump(mode="json")))
    (run / "metrics.jsonl").write_text('{"step": 2, "d/loss": 1.0}\n{"step": 4, "d/lo')  # killed mid-line
    res = resume_run(run)
    assert res["finished"] and res["step"] == 6
    assert [row["step"] for row in read_metrics(run) if "d/loss" in row] == [2, 4, 6]


def _cli(args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "COLUMNS": "120"}
    return subprocess.Popen(
        [sys.executable, "-m", "gankit.cli", "train", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kw,
    )


def _wait_for(predicate, proc, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the training process")


def _logged_steps(run):
    return [row["step"] for row in read_metrics(run) if "d/loss" in row]


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    run = tmp_path / "run"
    proc = _cli(
        [
            "gan-grid",
            *GRID_FAST,
            "schedule.steps=100000",
            "log.every=5",
            "log.checkpoint_every=0",
            "log.sample_every=0",
            "--out",
            str(run),
        ]
    )
    assert _wait_for(lambda: len(_logged_steps(run)) >= 2, proc), proc.communicate()[0].decode()
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "stopped by SIGTERM" in out and "Traceback" not in out
    ckpts = ck.list_checkpoints(run / "checkpoints")
    assert len(ckpts) == 1
    step = ck.load_state(ckpts[0])["step"]
    assert step >= 10 and ckpts[0].name == f"step-{step:07d}"
    res = resume_run(run, [f"schedule.steps={step + 4}"], force=True)  # fewer than the 100000 asked
    assert res["finished"] and res["step"] == step + 4


def _assert_readable(run: Path) -> None:
    """Everything a user (or `gankit` itself) would open in a run directory opens."""
    assert yaml.safe_load((run / "config.yaml").read_text())["name"] == "gan-grid"
    read_metrics(run)
    for ckpt in ck.list_checkpoints(run / "checkpoints"):
        tensors, meta = ck.load_weights(ckpt)
        assert ck.load_state(ckpt)["step"] == int(meta["step"]) and tensors
    for png in (run / "samples").glob("step-*.png") if (run / "samples").exists() else []:
        Image.open(png).load()


def test_sigkill_at_random_moments_never_loses_the_run(tmp_path):
    """Kill -9 while training, sampling and writing checkpoints (one every other step), resume, repeat:
    the run stays readable and ends with exactly the weights of a run that was never interrupted."""
    common = [
        "gan-grid",
        *GRID_FAST,
        "schedule.steps=240",
        "log.every=1",
        "log.sample_every=7",
        "log.checkpoint_every=2",
        "log.keep_checkpoints=2",
    ]
    ref = _cli([*common, "--out", str(tmp_path / "ref")])
    assert ref.wait(timeout=300) == 0, ref.communicate()[0].decode()

    run, rng, kills, mid_write = tmp_path / "run", random.Random(0), 0, 0
    ckpts = run / "checkpoints"
    proc = _cli([*common, "--out", str(run)])

    def writing() -> bool:  # this process's temporary checkpoint folder (not one a killed writer left)
        return ckpts.is_dir() and any(
            p.name.startswith(".tmp-") and p.name.endswith(f"-{proc.pid}") for p in ckpts.iterdir()
        )

    while True:
        start = len(_logged_steps(run)) if (run / "metrics.jsonl").exists() else 0
        if kills % 2:  # every other kill lands inside a checkpoint write
            alive = _wait_for(lambda: len(_logged_steps(run)) >= start + 3 and writing(), proc)
        else:  # the others at a random moment: a step, a sample grid, a log line, a write
            alive = _wait_for(lambda: len(_logged_steps(run)) >= start + 3, proc)
            time.sleep(rng.uniform(0.0, 0.15))
        if kills < 6 and alive:
            was_writing = writing()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            if proc.returncode == -signal.SIGKILL:
                kills += 1
                mid_write += was_writing and writing()
                _assert_readable(run)
                proc = _cli(["--resume", str(run)])
                continue
        out = proc.communicate(timeout=300)[0].decode()
        assert proc.returncode == 0, out
        break
    assert mid_write >= 1, "no kill landed inside a checkpoint write"
    assert kills >= 3
    _assert_readable(run)
    a = ck.load_weights(ck.find_checkpoint(tmp_path / "ref"))[0]
    b = ck.load_weights(ck.find_checkpoint(run))[0]
    assert ck.load_state(ck.find_checkpoint(run))["step"] == 240 and a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after {kills} kills"
    assert _logged_steps(run) == list(range(1, 241))
