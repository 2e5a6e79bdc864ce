"""report.html: self-contained (every picture inlined), complete (curves, samples over time, density,
diagnostics, recipe, environment), and every plot renders in headless Chromium."""

import base64
import io
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml
from PIL import Image

from gankit.cli import main
from gankit.recipes.load import load_recipe
from gankit.training.run import resume_run, start_run
from gankit.viz.report import build_report

FAST = ["log.tensorboard=false", "log.every=5", "log.sample_every=10", "log.checkpoint_every=20"]


def _images(page: str) -> list[Image.Image]:
    srcs = re.findall(r"<img src='([^']*)'", page)
    assert all(s.startswith("data:image/png;base64,") for s in srcs), "every picture must be inlined"
    return [Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))) for s in srcs]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    ring = start_run(
        load_recipe(
            "gan-ring",
            FAST + ["generator.hidden=[32, 32]", "discriminator.hidden=[32, 32]", "schedule.steps=40", "eval.every=20"],
        ),
        out=root / "ring",
    )
    digits = start_run(
        load_recipe(
            "dcgan-digits",
            FAST
            + [
                "generator.width=8",
                "discriminator.width=8",
                "schedule.batch_size=16",
                "schedule.steps=20",
                "eval.metrics=[]",
                "eval.best=null",
            ],
        ),
        out=root / "digits",
    )
    return ring, digits


def test_every_run_writes_a_complete_self_contained_report(runs):
    ring, digits = runs
    assert ring["report"] == ring["run_dir"] / "report.html"
    page = ring["report"].read_text()
    for section in (
        "Evaluation at step 40",
        "Diagnostics",
        "Curves",
        "Samples over time",
        "Recipe (resolved)",
        "Environment",
    ):
        assert section in page, section
    assert "src='samples/" not in page and "http" not in page.split("<h2>Recipe")[0]
    images = _images(page)
    # training curves, evaluation curves, grids at steps 10/20/30/40 and the density figure
    assert len(images) == 2 + 4 + 1 and all(im.size[0] > 200 for im in images)
    assert "samples at step 40" in page and "final samples and their density" in page
    assert yaml.safe_load(
        re.search(r"<pre>(.*?)</pre>", page, re.S)
        .group(1)
        .replace("&#x27;", "'")
        .replace("&quot;", '"')
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
    ) == yaml.safe_load((ring["run_dir"] / "config.yaml").read_text())
    env = json.loads((ring["run_dir"] / "environment.json").read_text())
    assert env[0]["from_step"] == 0 and env[0]["torch"] in page

    page = digits["report"].read_text()
    assert len(_images(page)) == 1 + 1 + 2  # no eval metrics, but the diversity curve; grids at 10 and 20
    assert "density" not in page


def test_resume_adds_an_environment_column_and_the_report_follows(runs, tmp_path):
    run = tmp_path / "ring"
    shutil.copytree(runs[0]["run_dir"], run)
    res = resume_run(run, ["schedule.steps=60"])
    assert [e["from_step"] for e in json.loads((run / "environment.json").read_text())] == [0, 40]
    page = res["report"].read_text()
    assert "run from step 40" in page and "samples at step 60" in page


def test_the_report_shows_the_health_warnings(runs, tmp_path):
    run = tmp_path / "ring"
    shutil.copytree(runs[0]["run_dir"], run)
    with open(run / "metrics.jsonl", "a") as fh:
        for k in range(10):
            fh.write(json.dumps({"step": 41 + k, "d/loss": 0.01, "g/loss": 6.0, "d/acc": 1.0}) + "\n")
    page = build_report(run)
    assert "class='warn'><b>step 50, d overpowering:</b>" in page
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text() == page


def _with_status(runs, tmp_path, name="ring", **status):
    """A copy of the ring run whose status.json says ``status`` (as gankit/training/run.py writes it)."""
    run = tmp_path / name
    shutil.copytree(runs[0]["run_dir"], run)
    (run / "status.json").unlink(missing_ok=True)
    if status:
        (run / "status.json").write_text(
            json.dumps(
                {"total": 40, "message": "", "pid": os.getpid(), "updated": "2025-01-01T00:00:00+0000", **status}
            )
        )
    return run


def _banner(page: str) -> str:
    """The banner, if any: everything in <body> before the title."""
    return page.split("<body>", 1)[1].split("<h1>", 1)[0]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_run_that_did_not_finish_says_so_first(runs, tmp_path):
    nan = (
        "the loss term d/loss became NaN/Inf at step 37; training stopped and the last good checkpoint is "
        "RUN/checkpoints/step-0000020. Resume from it with lower learning rates:\n  gankit train --resume RUN "
        "--force optim.g.lr=0.00025 optim.d.lr=0.00025\nor start again with a gradient penalty or another objective."
    )
    run = _with_status(runs, tmp_path, "nan", state="nan", step=37, message=nan)
    top = _banner(build_report(run))
    assert "Stopped at step 37 of 40: a loss became NaN/Inf" in top and "d/loss became NaN/Inf at step 37" in top
    assert "--force optim.g.lr=0.00025 optim.d.lr=0.00025" in top

    run = _with_status(runs, tmp_path, "sig", state="signalled", step=30, message="stopped by SIGTERM")
    top = _banner(build_report(run))
    assert "Stopped by a signal at step 30 of 40" in top and "SIGTERM" in top
    assert f"gankit train --resume {run}" in top and "last checkpoint is at step 40" in top

    run = _with_status(
        runs, tmp_path, "crash", state="crashed", step=12, message="RuntimeError: CUDA error: out of memory"
    )
    top = _banner(build_report(run))
    assert "Crashed at step 12 of 40" in top and "RuntimeError: CUDA error: out of memory" in top
    assert "After fixing the cause" in top and f"gankit train --resume {run}" in top

    # "running" from a process that is gone: killed (SIGKILL, power loss) without a stop record.
    run = _with_status(runs, tmp_path, "killed", state="running", step=0, pid=_dead_pid())
    top = _banner(build_report(run))
    assert "ended without a stop record at step 40 of 40 (killed?)" in top and f"gankit train --resume {run}" in top
    # "running" from a live process (the trainer itself, or `gankit report` during training): in progress.
    run = _with_status(runs, tmp_path, "live", state="running", step=0, pid=os.getpid())
    top = _banner(build_report(run))
    assert "In progress" in top and "killed" not in top and "--resume" not in top


def test_a_finished_or_older_run_has_no_banner_and_a_bad_status_does_not_fail(runs, tmp_path):
    page = build_report(_with_status(runs, tmp_path, "done", state="finished", step=40))
    assert _banner(page) == "" and "finished at step 40 of 40" in page
    assert _banner(build_report(_with_status(runs, tmp_path, "old"))) == ""  # before status.json existed
    run = _with_status(runs, tmp_path, "bad")
    (run / "status.json").write_text('{"state": "runn')
    page = build_report(run)
    assert _banner(page) == "" and "status.json could not be read" in page and "Diagnostics" in page
    (run / "status.json").write_text("[1, 2]")
    assert "status.json holds no run state" in build_report(run)


def test_low_coverage_is_never_called_no_sign_of_mode_collapse(runs, tmp_path):
    # The 40-step ring run ends covering few of the 8 modes: too early for a verdict, but not "no sign".
    page = build_report(runs[0]["run_dir"])
    modes = [
        r["eval/modes"]
        for r in map(json.loads, (runs[0]["run_dir"] / "metrics.jsonl").read_text().splitlines())
        if "eval/modes" in r
    ]
    assert modes[-1] <= 4, modes
    assert "mode collapse in the logged values" not in page
    assert f"covers {modes[-1]:g} of 8 modes" in page and "too early to judge" in page
    # Past the warm-up, an evaluation covering 1 of 10 classes is a mode-collapse warning.
    run = _with_status(runs, tmp_path)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 1000, "eval/classes_covered": 1.0, "eval/class_coverage": 0.1}) + "\n")
    page = build_report(run)
    assert "step 1000, mode collapse:</b> mode collapse: the evaluation covers 1 of 10 classes" in page
    assert "no sign of" not in page


def test_every_plot_renders_in_headless_chromium(runs, tmp_path, chromium):
    for res in runs:
        page = res["report"].read_text()
        n = page.count("<img ")
        dom = subprocess.run(
            [
                *chromium,
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                res["report"].resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        # the page's own check marks <body data-images="decoded/total"> once everything has loaded
        assert f'data-images="{n}/{n}"' in dom, re.findall(r"<body[^>]*>", dom) or dom[:500]
        assert not re.search(r"did not render: \w", dom)  # the script's own text is followed by a quote
    # and the check can fail: a broken picture is counted and named
    broken = tmp_path / "broken.html"
    broken.write_text(
        runs[1]["report"].read_text().replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1)
    )
    dom = subprocess.run(
        [
            *chromium,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            broken.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    n = broken.read_text().count("<img ")
    assert f'data-images="{n - 1}/{n}"' in dom and re.search(r"did not render: \w", dom)


def test_curves_of_chosen_series_as_a_png(runs, tmp_path, capsys):
    """`gankit report RUN --curves KEYS --out F.png`: a panel per key (a prefix ending in / is one panel of
    every series under it); an unknown key is refused with the keys the run has, and no file is written."""
    ring, _ = runs
    out = tmp_path / "c.png"
    assert main(["report", str(ring["run_dir"]), "--curves", "d/loss,eval/", "--out", str(out)]) == 0
    one = Image.open(out)
    assert main(["report", str(ring["run_dir"]), "--curves", "d/loss", "--out", str(out)]) == 0
    assert one.size[0] > Image.open(out).size[0]  # two panels side by side are wider than one
    bad = tmp_path / "bad.png"
    assert main(["report", str(ring["run_dir"]), "--curves", "tricks/ada/p", "--out", str(bad)]) == 2
    msg = " ".join(capsys.readouterr().out.split())  # rich folds long lines
    assert "no values for tricks/ada/p" in msg and "d/loss" in msg and not bad.exists()
    assert main(["report", str(ring["run_dir"]), "--curves", "d/loss"]) == 2  # --out is needed
