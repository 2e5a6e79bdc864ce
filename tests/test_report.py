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
from gankit.config import load_recipe
from gankit.train.run import resume_run, start_run
from gankit.viz.report import build_report

FAST = ["log.tensorboard=false", "log.every=5", "log.sample_every=10", "log.checkpoint_every=20"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _images(page: str) -> list[Image.Image]:
    srcs = re.findall(r"<img src='([^']*)'", page)
    assert all(s.startswith("data:image/png;base64,") for s in srcs), "every picture must be inlined"
    return [Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))) for s in srcs]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    ring = start_run(load_recipe("gan-ring", FAST + ["generator.hidden=[32, 32]", "discriminator.hidden=[32, 32]",
                                                     "schedule.steps=40", "eval.every=20"]), out=root / "ring")
    digits = start_run(load_recipe("dcgan-digits", FAST + ["generator.width=8", "discriminator.width=8",
                                                           "schedule.batch_size=16", "schedule.steps=20",
                                                           "eval.metrics=[]", "eval.best=null"]), out=root / "digits")
    return ring, digits


def test_every_run_writes_a_complete_self_contained_report(runs):
    ring, digits = runs
    assert ring["report"] == ring["run_dir"] / "report.html"
    page = ring["report"].read_text()
    for section in ("Evaluation at step 40", "Diagnostics", "Curves", "Samples over time", "Recipe (resolved)",
                    "Environment"):
        assert section in page, section
    assert "src='samples/" not in page and "http" not in page.split("<h2>Recipe")[0]
    images = _images(page)
    # training curves, evaluation curves, grids at steps 10/20/30/40 and the density figure
    assert len(images) == 2 + 4 + 1 and all(im.size[0] > 200 for im in images)
    assert "samples at step 40" in page and "final samples and their density" in page
    assert yaml.safe_load(re.search(r"<pre>(.*?)</pre>", page, re.S).group(1).replace("&#x27;", "'")
                          .replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
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


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_every_plot_renders_in_headless_chromium(runs, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("GANKIT_REQUIRE_CHROMIUM"):
            pytest.fail("GANKIT_REQUIRE_CHROMIUM is set but no chromium is installed")
        pytest.skip("no chromium: install Debian's chromium package to run this check")
    for res in runs:
        page = res["report"].read_text()
        n = page.count("<img ")
        dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                              "--virtual-time-budget=10000", "--dump-dom", res["report"].resolve().as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
        # the page's own check marks <body data-images="decoded/total"> once everything has loaded
        assert f'data-images="{n}/{n}"' in dom, re.findall(r"<body[^>]*>", dom) or dom[:500]
        assert not re.search(r"did not render: \w", dom)  # the script's own text is followed by a quote
    # and the check can fail: a broken picture is counted and named
    broken = tmp_path / "broken.html"
    broken.write_text(runs[1]["report"].read_text().replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1))
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--virtual-time-budget=10000", "--dump-dom", broken.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    n = broken.read_text().count("<img ")
    assert f'data-images="{n - 1}/{n}"' in dom and re.search(r"did not render: \w", dom)
