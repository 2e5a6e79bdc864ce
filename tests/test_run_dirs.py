"""A run directory is never lost or mixed: the weights are written before an evaluation that may fail,
one process writes a run at a time (a lock that a killed owner leaves free), --resume never writes
elsewhere, --out never mixes a run into other files, forced changes are recorded, and status.json says
how the run ended."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from gankit.cli import main
from gankit.config import ConfigError
from gankit.metrics.evaluate import Evaluator
from gankit.recipes.load import load_recipe
from gankit.runlog import checkpoint as ck
from gankit.runlog import read_metrics
from gankit.training.lock import LOCK, RunLock, RunLocked, read_owner
from gankit.training.run import resume_run, start_run

FAST = [
    "generator.hidden=[16]",
    "discriminator.hidden=[16]",
    "schedule.batch_size=16",
    "log.tensorboard=false",
    "log.sample_every=0",
]


def _status(run):
    return json.loads((run / "status.json").read_text())


def test_a_failed_evaluation_keeps_the_weights_and_samples(tmp_path, monkeypatch, capsys):
    def broken(self, generate):
        raise RuntimeError("extractor exploded")

    monkeypatch.setattr(Evaluator, "evaluate", broken)
    run = tmp_path / "run"
    rc = main(["train", "gan-ring", *FAST, "schedule.steps=6", "log.every=3", "--out", str(run)])
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines at the terminal's width
    assert rc == 1, out
    assert "evaluation failed" in out and "extractor exploded" in out and f"gankit eval {run}" in out
    ckpt = ck.find_checkpoint(run)
    assert ck.load_state(ckpt)["step"] == 6  # the final weights were written before the evaluation
    assert (run / "samples" / "step-000006.png").is_file()
    assert any("extractor exploded" in str(r.get("eval/error", "")) for r in read_metrics(run))
    status = _status(run)
    assert status["state"] == "finished" and "extractor exploded" in status["message"]


def test_a_failed_evaluation_mid_run_does_not_stop_training(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = Evaluator.evaluate

    def flaky(self, generate):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("first evaluation failed")
        return real(self, generate)

    monkeypatch.setattr(Evaluator, "evaluate", flaky)
    r = load_recipe("gan-ring", FAST + ["schedule.steps=6", "eval.every=3", "log.every=3"])
    res = start_run(r, out=tmp_path / "run")
    assert res["finished"] and res["step"] == 6 and res["eval_error"] is None and "modes" in res["eval"]
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows if "eval/error" in r] == [3]


def test_a_second_writer_is_refused_while_the_first_holds_the_run(tmp_path):
    r = load_recipe("gan-ring", FAST + ["schedule.steps=2", "eval.metrics=[]", "eval.best=null"])
    start_run(r, out=tmp_path / "run")
    before = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLocked, match=rf"in use by process {os.getpid()}"):
            resume_run(tmp_path / "run", ["schedule.steps=4"])
        (tmp_path / "new").mkdir()
        with RunLock(tmp_path / "new"), pytest.raises(RunLocked, match="in use"):
            start_run(r, out=tmp_path / "new")  # `train --out` twice into one folder
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == before
    assert not (tmp_path / "new" / "config.yaml").exists()
    # Released: the same resume now runs.
    assert resume_run(tmp_path / "run", ["schedule.steps=4"])["step"] == 4


def _cli(args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "gankit.cli", "train", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _wait(predicate, proc, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        assert proc.poll() is None, proc.communicate()[0].decode()
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the training process")


def test_a_live_writer_refuses_a_resume_and_a_killed_one_leaves_the_run_free(tmp_path, capsys):
    run = tmp_path / "run"
    proc = _cli(
        [
            "gan-ring",
            *FAST,
            "eval.metrics=[]",
            "eval.best=null",
            "schedule.steps=100000",
            "log.every=5",
            "log.checkpoint_every=20",
            "--out",
            str(run),
        ]
    )
    try:
        _wait(lambda: ck.list_checkpoints(run / "checkpoints") != [], proc)
        assert read_owner(run)["pid"] == proc.pid
        rc = main(["train", "--resume", str(run)])
        out = " ".join(capsys.readouterr().out.split())
        assert rc == 2 and f"in use by process {proc.pid}" in out, out
        assert _status(run)["state"] == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert (run / LOCK).exists()  # the killed owner's lock file stays; the kernel dropped its hold
    step = ck.load_state(ck.list_checkpoints(run / "checkpoints")[-1])["step"]
    res = resume_run(run, [f"schedule.steps={step + 3}"], force=True)
    assert res["finished"] and res["step"] == step + 3
    assert _status(run)["state"] == "finished"


def test_resume_with_out_elsewhere_is_refused(tmp_path, capsys):
    r = load_recipe("gan-ring", FAST + ["schedule.steps=2", "eval.metrics=[]", "eval.best=null"])
    start_run(r, out=tmp_path / "run")
    rc = main(["train", "--resume", str(tmp_path / "run"), "--out", str(tmp_path / "other"), "schedule.steps=4"])
    out = " ".join(capsys.readouterr().out.split())
    assert rc == 2 and "cannot write to --out" in out and "cp -r" in out
    assert not (tmp_path / "other").exists()
    assert ck.load_state(ck.find_checkpoint(tmp_path / "run"))["step"] == 2
    # --out naming the run itself is the same run, not a fork.
    assert main(["train", "--resume", str(tmp_path / "run"), "--out", str(tmp_path / "run"), "schedule.steps=4"]) == 0


def test_forced_changes_are_recorded_with_old_and_new_values(tmp_path):
    r = load_recipe("gan-ring", FAST + ["schedule.steps=2", "eval.metrics=[]", "eval.best=null"])
    start_run(r, out=tmp_path / "run")
    resume_run(tmp_path / "run", ["schedule.steps=4"])  # more steps only: recorded, not forced
    resume_run(tmp_path / "run", ["optim.d.lr=0.05", "schedule.steps=6"], force=True)
    history = json.loads((tmp_path / "run" / "config_history.json").read_text())
    assert history[0] == {
        **history[0],
        "from_step": 2,
        "forced": False,
        "changes": {"schedule.steps": {"old": 2, "new": 4}},
    }
    assert history[1]["from_step"] == 4 and history[1]["forced"] is True
    assert history[1]["changes"] == {
        "optim.d.lr": {"old": r.optim.d.lr, "new": 0.05},
        "schedule.steps": {"old": 4, "new": 6},
    }


def test_out_into_a_folder_of_other_files_is_refused(tmp_path, capsys):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"not ours")
    rc = main(["train", "gan-ring", *FAST, "schedule.steps=2", "--out", str(mine)])
    out = " ".join(capsys.readouterr().out.split())
    assert rc == 2 and "not empty and is not a gankit run directory" in out
    assert sorted(p.name for p in mine.iterdir()) == ["holiday.jpg"]
    with pytest.raises(ConfigError, match="is a file"):
        start_run(load_recipe("gan-ring", FAST), out=mine / "holiday.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "gan-ring", *FAST, "schedule.steps=2", "eval.metrics=[]", "--out", str(empty)]) == 0
    assert yaml.safe_load((empty / "config.yaml").read_text())["name"] == "gan-ring"


def test_a_run_from_a_recipe_with_a_base_keeps_the_merged_recipe_and_resumes_without_the_file(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "base: gan-ring\n"
        "generator: {hidden: [16]}\n"
        "discriminator: {hidden: [16]}\n"
        "schedule: {steps: 2, batch_size: 16}\n"
        "log: {tensorboard: false, sample_every: 0}\n"
        "eval: {metrics: [], best: null}\n"
    )
    run = tmp_path / "run"
    assert main(["train", str(mine), "--out", str(run)]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert "base" not in saved and saved["name"] == "mine"
    assert saved["objective"] == load_recipe("gan-ring").model_dump(mode="json")["objective"]
    assert saved["generator"]["hidden"] == [16] and saved["schedule"]["steps"] == 2
    mine.unlink()  # the run directory alone is enough to go on
    assert main(["train", "--resume", str(run), "schedule.steps=4"]) == 0
    assert _status(run)["state"] == "finished"
    assert ck.load_state(ck.list_checkpoints(run / "checkpoints")[-1])["step"] == 4
