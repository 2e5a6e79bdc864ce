"""torchrun + DDP on CPU (gloo, 2 processes): 2 ranks x batch b train the same weights as 1 rank x 2b
(with an R1 penalty and an EMA of G too, and evaluations shared out), rank 0 alone writes the run directory,
a resumed 2-rank run continues
exactly, and what cannot work (an indivisible global batch, SyncBatchNorm on CPU) is refused."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gankit.runlog import checkpoint as ck
from gankit.runlog import read_metrics

TORCHRUN = Path(sys.executable).with_name("torchrun")
GRID = [
    "generator.hidden=[32, 32]",
    "discriminator.hidden=[32, 32]",
    "schedule.batch_size=64",
    "log.every=5",
    "log.tensorboard=false",
    "eval.metrics=[]",
    "eval.every=0",
    "eval.best=null",
    "log.sample_every=0",
]
DIGITS = [
    "generator.width=8",
    "discriminator.width=8",
    "schedule.batch_size=32",
    "log.every=5",
    "log.tensorboard=false",
    "eval.metrics=[]",
    "eval.best=null",
    "log.sample_every=0",
]

pytestmark = pytest.mark.skipif(
    not TORCHRUN.exists() or not torch.distributed.is_available(), reason="needs torchrun and torch.distributed"
)


def torchrun(nproc: int, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "COLUMNS": "120"}
    proc = subprocess.run(
        [str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", "-m", "gankit.cli", "train", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def weights(run):
    return ck.load_weights(ck.find_checkpoint(run))[0]


def assert_same(a, b, atol):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


EVAL = [
    "eval.metrics=[{name: fid, features: pixels, num_samples: 1001, num_real: 1001}]",
    "eval.every=15",
    "eval.best=fid",
]  # an odd count: the two ranks' shares differ by one row


@pytest.mark.parametrize(
    "extra", [EVAL, ["penalties=[{name: r1, gamma: 1.0}]", "ema.enabled=true"]], ids=["plain+eval", "r1+ema"]
)
def test_two_ranks_train_the_weights_of_one_rank_with_the_global_batch(tmp_path, extra):
    args = ["gan-grid", *[a for a in GRID if not a.startswith("eval.")], "schedule.steps=30", *extra]
    args += [] if extra is EVAL else ["eval.metrics=[]", "eval.every=0", "eval.best=null"]
    torchrun(1, *args, "--out", str(tmp_path / "one"))
    out = torchrun(2, *args, "--out", str(tmp_path / "two"))
    assert out.count("finished at step 30") == 1  # rank 0 speaks for both
    w = weights(tmp_path / "two")
    assert any(k.startswith("G_ema.") for k in w) == ("ema.enabled=true" in extra)  # the EMA agrees as well
    assert_same(weights(tmp_path / "one"), w, atol=2e-5)
    # the logged losses are the means over ranks, i.e. the global batch's
    one = [r["d/loss"] for r in read_metrics(tmp_path / "one") if "d/loss" in r]
    two = [r["d/loss"] for r in read_metrics(tmp_path / "two") if "d/loss" in r]
    assert len(two) == 6 and two == pytest.approx(one, abs=1e-4)
    names = sorted(p.name for p in (tmp_path / "two").iterdir() if not p.name.startswith("."))
    assert names == sorted(
        ["checkpoints", "config.yaml", "environment.json", "metrics.jsonl", "report.html", "samples", "status.json"]
        + (["best"] if extra is EVAL else [])
    )
    if extra is EVAL:  # features extracted half per rank and gathered: the same scores as one process
        fid = [[r["eval/fid"] for r in read_metrics(tmp_path / run) if "eval/fid" in r] for run in ("one", "two")]
        assert len(fid[1]) == 2 and fid[1] == pytest.approx(fid[0], rel=1e-4)


def _fails(nproc, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", "-m", "gankit.cli", "train", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    return proc.stdout


def test_sync_batchnorm_on_cpu_says_it_needs_cuda(tmp_path):
    out = _fails(2, "dcgan-digits", *DIGITS, "perf.sync_batchnorm=true", "--out", str(tmp_path / "r"))
    assert "perf.sync_batchnorm needs CUDA devices" in out and not (tmp_path / "r" / "config.yaml").exists()


def test_a_two_rank_run_resumes_exactly(tmp_path):
    args = ["gan-grid", *GRID, "log.checkpoint_every=10"]
    torchrun(2, *args, "schedule.steps=20", "--out", str(tmp_path / "full"))
    torchrun(2, *args, "schedule.steps=10", "--out", str(tmp_path / "half"))
    state = ck.load_state(ck.find_checkpoint(tmp_path / "half"))
    assert len(state["rng"]["ranks"]) == 2 and "sharding" in state
    torchrun(2, "--resume", str(tmp_path / "half"), "schedule.steps=20")
    assert_same(weights(tmp_path / "full"), weights(tmp_path / "half"), atol=0)


def test_the_global_batch_must_split_over_the_ranks(tmp_path):
    out = _fails(2, "gan-grid", *GRID, "schedule.batch_size=63", "--out", str(tmp_path / "r"))
    assert "batch_size=63 is the global batch: it must divide into 2 ranks" in out
    assert not (tmp_path / "r" / "config.yaml").exists()


def test_torchrun_refuses_a_family_without_ddp_and_a_batch_that_does_not_split():
    from gankit.config import ConfigError
    from gankit.recipes.load import load_recipe
    from gankit.training.build import check_distributed, family_of

    recipe = load_recipe("bigan-ring")
    with pytest.raises(ConfigError, match="family 'bigan' does not run under torchrun yet.*train it in one process"):
        check_distributed(recipe, family_of(recipe), enabled=True, world=2)
    check_distributed(recipe, family_of(recipe), enabled=False, world=1)  # one process: nothing to refuse
    plain = load_recipe("gan-grid")
    check_distributed(plain, family_of(plain), enabled=True, world=2)  # a DDP family, 256 over 2 ranks
    with pytest.raises(ConfigError, match="batch_size=256 is the global batch: it must divide into 3 ranks"):
        check_distributed(plain, family_of(plain), enabled=True, world=3)


def _one_process_group(rendezvous: Path) -> None:
    import datetime

    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{rendezvous}", rank=0, world_size=1, timeout=datetime.timedelta(seconds=30)
    )


def test_a_training_command_closes_the_group_it_made_and_leaves_the_callers(tmp_path):
    import torch.distributed as dist

    from gankit.training.distributed import closing_group

    with closing_group():  # the body starts the group, as a run under torchrun does
        _one_process_group(tmp_path / "a")
        assert dist.is_initialized()
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="boom"), closing_group():  # and on an error too
        _one_process_group(tmp_path / "b")
        raise RuntimeError("boom")
    assert not dist.is_initialized()
    _one_process_group(tmp_path / "c")  # the caller's own group (gankit.train inside a user's torchrun script)
    try:
        with closing_group():
            pass
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()
